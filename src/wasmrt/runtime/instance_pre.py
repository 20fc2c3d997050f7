"""``InstancePre``: a module whose imports a ``Linker`` already resolved.

Invariants:
- Created only by ``Linker.instantiate_pre``; it keeps the module and the
  resolved definitions (a snapshot: later linker changes do not affect it).
- ``instantiate(store)`` materialises the definitions in that store, checks
  types and instantiates exactly like ``Linker.instantiate``;
  ``instantiate_async`` is the variant for a store with an async limiter.
- Like other managed objects it supports ``close()``/``with``; afterwards
  every use raises ``ValueError('already closed')``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.runtime._managed import Managed
from wasmrt.runtime.instance import Instance
from wasmrt.runtime.limits import require_sync, run_async

if TYPE_CHECKING:
    from wasmrt.runtime.instance import Instance
    from wasmrt.runtime.module import Module

__all__ = ["InstancePre"]


class _Pre:
    __slots__ = ("defs", "instantiate", "module")

    def __init__(self, module: Module, defs: list[Any], instantiate: Callable[..., Any]) -> None:
        self.module = module
        self.defs = defs
        self.instantiate = instantiate


class InstancePre(Managed[_Pre]):
    """A pre-linked module: ``linker.instantiate_pre(module).instantiate(store)``."""

    @classmethod
    def _new(cls, module: Module, defs: list[Any], instantiate: Callable[..., Any]) -> InstancePre:
        try_alloc(SLOT_SIZE * (len(defs) + 4), AllocKind.LINKER)
        out: InstancePre = cls.__new__(cls)
        out._set_ptr(_Pre(module, list(defs), instantiate))
        return out

    def instantiate(self, store: Any) -> Instance:
        pre = self.ptr()
        core = store._context()
        require_sync(core, "InstancePre.instantiate")
        return Instance._from_core(core, pre.instantiate(core, pre.module.ptr(), pre.defs))

    async def instantiate_async(self, store: Any) -> Instance:
        """``instantiate`` for a store with a ``ResourceLimiterAsync`` (see ``Func.call_async``)."""
        pre = self.ptr()
        core = store._context()
        mcore = pre.module.ptr()
        instance = await run_async(
            core, lambda: pre.instantiate(core, mcore, pre.defs), worker=True
        )
        return Instance._from_core(core, instance)

    @property
    def module(self) -> Module:
        return self.ptr().module
