"""The walkthrough's scenario: the plugin host with its real OOM bug (``buggy_host.py``).

``oomfuzz sweep examples/plugin_host/scenario_buggy_host.py`` finds it; see
``examples/README.md``.
"""

from __future__ import annotations

from typing import Any

from buggy_host import BuggyPluginHost
from plugins import COUNTER, KV

import oomfuzz


def setup(ctx: Any) -> BuggyPluginHost:
    host = BuggyPluginHost(ctx.engine(), benign=oomfuzz.cleanup)
    return oomfuzz.track(host, "BuggyPluginHost")


def load_counter(host: BuggyPluginHost) -> None:
    host.load("counter", COUNTER)


def bump(host: BuggyPluginHost) -> object:
    return host.call_with_rollback("counter", "bump")


def load_kv(host: BuggyPluginHost) -> None:
    host.load("kv", KV)


def put(host: BuggyPluginHost) -> None:
    host.call("kv", "put", 9)


def get(host: BuggyPluginHost) -> object:
    return host.call("kv", "get", 9)


steps = [load_counter, bump, load_kv, put, get]


def teardown(host: BuggyPluginHost) -> None:
    host.close()
