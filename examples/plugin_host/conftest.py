"""Fixtures of the plugin-host tests: a host (tracked, its state registered) and its probe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from host_support import PoolProbe, new_host
from plugin_host import PluginHost

import oomfuzz


@pytest.fixture
def host() -> Iterator[PluginHost]:
    h = new_host()
    oomfuzz.track(h, "PluginHost")  # it must be gone after each run (leak check)
    with oomfuzz.state(h.snapshot, "host"):  # what a failed operation must leave unchanged
        yield h
    h.close()


@pytest.fixture
def pool_probe(host: PluginHost) -> PoolProbe:
    return PoolProbe(host)
