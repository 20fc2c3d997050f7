"""Helpers of the plugin-host tests: the host they build and a Probe over its store pool.

``PLUGIN_HOST_BUGS`` (comma-separated names from ``plugin_host.BUGS``) switches
seeded bugs on: ``tests/examples/test_plugin_host_bugs.py`` runs this suite
with each bug and checks that the right finding comes out. Unset, the host is
the clean one and every test must pass.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

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
