"""The plugin host as a lifecycle ``.py`` scenario: ``oomfuzz sweep`` runs it.

``setup_unit`` builds the engine once per work unit (never failed); ``setup``
builds a fresh host inside every run, so its one-time setup (the shared
linker, the first store) is failed too; the steps run on that host and a
failed step is retried on the same host, fault-free, then the rest run and
``teardown`` closes it (the long-lived form, ``oomfuzz.Lifecycle``).
"""

from __future__ import annotations

from typing import Any

from plugin_host import PluginHost
from plugins import COUNTER, KV

import oomfuzz


def setup_unit(ctx: Any) -> Any:
    """Once per unit (scenario x mode x allocator): the engine, with the unit's allocator."""
    return ctx.engine()


def setup(ctx: Any) -> PluginHost:
    host = PluginHost(ctx.unit, benign=oomfuzz.cleanup)
    oomfuzz.state(host.snapshot, "host")  # a failed step must leave this unchanged
    return oomfuzz.track(host, "PluginHost")  # and the host must be gone after the run


def load_counter(host: PluginHost) -> None:
    host.load("counter", COUNTER)


def load_kv(host: PluginHost) -> None:
    host.load("kv", KV)


def bump(host: PluginHost) -> object:
    return host.call_with_rollback("counter", "bump")


def put(host: PluginHost) -> None:
    host.call("kv", "put", 9)


def get(host: PluginHost) -> object:
    return host.call("kv", "get", 9)


def write(host: PluginHost) -> bytes:
    host.write_result("counter", 65530, b"result")
    return host.read_guest("counter", 65534, 6)


steps = [load_counter, load_kv, bump, put, get, write]


def teardown(host: PluginHost) -> None:
    host.close()
