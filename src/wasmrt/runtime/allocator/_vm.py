"""The allocators' only contact points with ``wasmrt.vm`` object construction.

Invariants:
- ``wasmrt.vm`` is imported lazily, inside the functions, so the allocator
  package can be imported by the vm itself and by ``runtime.config`` without
  an import cycle.
- The vm constructors consult the store's limiter and ``try_alloc``; if they
  raise, nothing has been created and the exception propagates unchanged.
"""

from __future__ import annotations

from typing import Any

from wasmrt import ir

__all__ = ["new_linear_memory", "new_table_instance"]


def new_linear_memory(
    store: Any,
    ty: ir.MemoryType,
    max_pages: int | None = None,
    reservation: int | None = None,
) -> Any:
    """A fresh ``LinearMemory`` for ``ty``.

    ``max_pages`` caps its maximum (pooling clamp); ``reservation`` is the
    engine's explicit ``Config.memory_reservation`` (``None``: the vm's default).
    """
    from wasmrt.vm.memory import LinearMemory

    kwargs: dict[str, int] = {}
    if max_pages is not None:
        kwargs["max_pages_cap"] = max_pages
    if reservation is not None:
        kwargs["reservation_cap"] = reservation
    return LinearMemory(store, ty, **kwargs)


def new_table_instance(store: Any, ty: ir.TableType, max_elements: int | None = None) -> Any:
    """A fresh ``TableInstance`` for ``ty`` filled with null; ``max_elements`` caps its maximum."""
    from wasmrt.vm.table import TableInstance

    if max_elements is None:
        return TableInstance(store, ty, None)
    return TableInstance(store, ty, None, max_cap=max_elements)
