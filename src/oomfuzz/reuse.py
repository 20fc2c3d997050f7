"""Module reuse across the runs of one sweep unit: decode and validate once, sweep them still.

A run builds each of its modules through :meth:`ModuleReuse.module` (the WAST
adapter's module commands, program scenarios). Fault-free recording runs (the
dry runs) build for real and keep the decoded, validated module and the
build's allocation records. Once two consecutive recorded builds of the same
source made the same allocations, a later run whose fault plan refuses none of
them (:meth:`~oomfuzz.inject.Injector.refuses_within`) is handed a module
renewed from the kept one (:func:`wasmrt.runtime.module.renewed`: the same IR
on the run's engine, with compiled-code state of its own, so its functions
still ask for their ``CODE`` allocations on their first calls, and their code
comes from wasmrt's per-process cache), while the injector counts the kept
records as if the build had made them (:meth:`~oomfuzz.inject.Injector.replay`).
A run whose plan refuses inside the build builds for real: every injection
point inside text reading, decoding, validation and compilation is still
swept, and fails there as it always did.

Invariants:
- Reuse never changes what a run's hook sees: the same allocation indices,
  sizes, kinds, sites and target points, in the same order, as a real build
  (checked: a build is reused only after two recorded builds agreed on them).
- A build that raises is never kept; a build made under an injection is never
  recorded.
- With another hook than an :class:`~oomfuzz.inject.Injector`, one that asks
  for ``real_builds`` (the tracemalloc check's re-runs: renewed modules share
  state that settles over several runs, which that check would take for
  growth), or when the scenario says ``reuse=false``, every build is real.
- The kept module is held per unit (the runner's ``ModuleReuse``), together
  with the object its key names, and outlives the runs (``long_lived``): what
  it keeps alive is no leak of a run.
- Python scenarios opt in with ``ctx.module(engine, wasm)`` instead of
  ``Module(engine, wasm)``; builds of equal text or bytes share one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import wasmrt
from oomfuzz.inject import AllocRecord, Injector
from oomfuzz.runstate import long_lived
from wasmrt.alloc import current_hook
from wasmrt.runtime.module import renewed

__all__ = ["ModuleReuse", "source_key"]


def _same(a: list[AllocRecord], b: list[AllocRecord]) -> bool:
    return len(a) == len(b) and all(
        (x.size, x.kind, x.absorbing, x.site, x.stack)
        == (y.size, y.kind, y.absorbing, y.site, y.stack)
        for x, y in zip(a, b, strict=True)
    )


@dataclass(slots=True)
class _Kept:
    """One source's last recorded build: its module, its allocations, and whether
    the build before it made the same ones."""

    owner: object
    module: Any
    records: list[AllocRecord]
    stable: bool = False


class ModuleReuse:
    """The modules of one unit's runs, built once and renewed per run (module docstring)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._kept: dict[Hashable, _Kept] = {}
        #: Builds served from a kept module / built for real (for measurements).
        self.reused = 0
        self.built = 0

    def module(self, engine: Any, owner: object, source: Callable[[], bytes | str]) -> Any:
        """``wasmrt.Module(engine, source())`` for this run; ``owner`` names the source:
        equal hashable owners (the module's text or bytes) or the same object in every
        run of the unit (a script's module command, a program)."""
        hook = current_hook()
        if not self.enabled or not isinstance(hook, Injector) or hook.real_builds:
            return wasmrt.Module(engine, source())
        kept = self._kept.get(source_key(owner))
        if kept is not None and kept.stable:
            if not hook.refuses_within(kept.records):
                hook.replay(kept.records)
                self.reused += 1
                return renewed(kept.module, engine)
        start = hook.count
        module = wasmrt.Module(engine, source())
        self.built += 1
        if hook.record_all and not hook.injected:
            self._remember(owner, module, hook.records[len(hook.records) - (hook.count - start) :])
        return module

    def _remember(self, owner: object, module: Any, records: list[AllocRecord]) -> None:
        key = source_key(owner)
        kept = self._kept.get(key)
        if kept is not None:
            kept.stable = _same(kept.records, records)
            kept.records = records
            return
        long_lived(module)
        self._kept[key] = _Kept(owner, module, records)


def source_key(owner: object) -> Hashable:
    """An owner's key: itself when hashable by value, else its identity (the entry
    keeps the owner alive, so the identity is not reused meanwhile)."""
    if isinstance(owner, (bytes, str, tuple)):
        return owner
    return ("id", id(owner))
