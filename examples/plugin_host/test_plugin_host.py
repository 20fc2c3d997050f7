"""The plugin host's OOM tests, written the way a user of oomfuzz writes them.

Each public entry point once:
- ``@pytest.mark.oom`` with fixtures: the long-lived form by default (the
  ``host`` fixture is rebuilt inside every run, the body is retried on the
  same host after a failure), ``oomfuzz.track``/``oomfuzz.state`` from the
  fixture, ``oomfuzz.operation`` around one host call, ``probe="pool_probe"``
  (a ``Probe`` from a fixture), ``oomfuzz.cleanup`` (the host's rollback);
- ``OomTest(...).test(oomfuzz.Lifecycle(setup, steps, teardown))``;
- ``scenario_plugin_host.py``: the same lifecycle as a ``.py`` scenario, with
  per-unit setup (``oomfuzz sweep examples/plugin_host/scenario_plugin_host.py``).
"""

from __future__ import annotations

import pytest
from host_support import new_host
from plugin_host import PluginHost
from plugins import COUNTER, KV

import oomfuzz

PLUGINS = {"a": COUNTER, "kv": KV, "b": COUNTER}


def ensure_loaded(host: PluginHost) -> None:
    for name, wat in PLUGINS.items():
        if name not in host.plugins:
            host.load(name, wat)


@pytest.mark.oom
def test_load_call_and_store(host: PluginHost) -> None:
    ensure_loaded(host)
    assert host.call("a", "bump") >= 1
    host.call("kv", "put", 7)
    assert host.call("kv", "get", 7) == 5
    assert host.read_guest("kv", 64, 5) == b"v\x07\x00\x00\x00"


@pytest.mark.oom
def test_write_result_is_all_or_nothing(host: PluginHost) -> None:
    ensure_loaded(host)
    oomfuzz.track(host.plugins["a"].store, "plugin a's store")  # its memory is state too
    with oomfuzz.operation("write_result"):
        host.write_result("a", 65530, b"0123456789")
    assert host.read_guest("a", 65534, 10) == b"0123456789"


@pytest.mark.oom(probe="pool_probe")
def test_pool_accounts_for_every_store(host: PluginHost) -> None:
    ensure_loaded(host)
    host.unload("b")
    host.load("b", COUNTER)


@pytest.mark.oom
def test_failed_call_rolls_back(host: PluginHost) -> None:
    ensure_loaded(host)
    host.call("a", "reset")
    assert host.call_with_rollback("a", "bump") == 1


def test_lifecycle_with_oomtest() -> None:
    """The long-lived form through OomTest: one fresh host per injection, explicit steps."""

    def setup() -> PluginHost:
        h = new_host(quota=2)
        oomfuzz.state(h.snapshot, "host")
        return oomfuzz.track(h, "PluginHost")

    steps = [
        oomfuzz.Step("load a", lambda h: h.load("a", COUNTER)),
        oomfuzz.Step("load kv", lambda h: h.load("kv", KV)),
        oomfuzz.Step("bump", lambda h: h.call_with_rollback("a", "bump")),
        oomfuzz.Step("put", lambda h: h.call("kv", "put", 3)),
        oomfuzz.Step("get", lambda h: h.call("kv", "get", 3)),
    ]
    result = oomfuzz.OomTest().test(oomfuzz.Lifecycle(setup, steps, PluginHost.close))
    assert result.passed
    assert result.total > 0
