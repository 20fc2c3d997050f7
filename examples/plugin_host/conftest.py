"""Fixtures of the plugin-host tests: a host, its probe, the plugins.

``PLUGIN_HOST_BUGS`` (comma-separated names from ``plugin_host.BUGS``) switches
seeded bugs on: ``tests/examples/test_plugin_host_bugs.py`` runs this same
suite with each bug and checks that the right finding comes out. Unset, the
host is the clean one and every test here must pass.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from plugin_host import PluginHost

import oomfuzz


def seeded_bugs() -> list[str]:
    return [b for b in os.environ.get("PLUGIN_HOST_BUGS", "").split(",") if b]


def new_host(**kw: Any) -> PluginHost:
    return PluginHost(bugs=seeded_bugs(), benign=oomfuzz.cleanup, **kw)


class PoolProbe:
    """An ``oomfuzz.Probe`` over the host's store pool: every store accounted for."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    def before_run(self) -> None:
        pass

    def resources(self) -> dict[str, object]:
        return self.host.stats()

    def refs(self) -> list[tuple[str, weakref.ref[Any]]]:
        return []


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
