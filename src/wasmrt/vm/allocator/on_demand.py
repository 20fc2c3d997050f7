"""``OnDemandInstanceAllocator``: Wasmtime's default allocation strategy.

Invariants:
- Stateless apart from the engine's explicit ``memory_reservation``, which
  every memory it creates gets as its reservation cap. Every module validates, instance counts are not tracked (the
  store's own counters and limiter are the only limits), and memories and
  tables are created fresh per instance and simply dropped on deallocation.
- Creation goes through the vm constructors, which consult the store's
  limiter and ask ``try_alloc`` for the bytes/elements; nothing is
  allocated here before they succeed, so a failure leaves nothing behind.
- Slot indices are always ``NO_SLOT``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from wasmrt import ir
from wasmrt.vm.allocator.base import NO_SLOT
from wasmrt.vm.memory import LinearMemory
from wasmrt.vm.table import TableInstance

if TYPE_CHECKING:
    from wasmrt.vm.allocator.pooling import PoolingInstanceAllocator

__all__ = ["OnDemandInstanceAllocator"]


class OnDemandInstanceAllocator:
    """Allocates each memory and table when an instance is created."""

    __slots__ = ("_reservation",)

    def __init__(self, *, memory_reservation: int | None = None) -> None:
        self._reservation = memory_reservation

    def validate_module(self, module: ir.Module) -> None:
        return None

    def increment_core_instance_count(self) -> None:
        return None

    def decrement_core_instance_count(self) -> None:
        return None

    def allocate_memory(
        self, store: Any, ty: ir.MemoryType, module_key: Hashable, index: int
    ) -> tuple[int, Any]:
        return NO_SLOT, LinearMemory(store, ty, reservation_cap=self._reservation)

    def deallocate_memory(self, slot: int, memory: Any) -> None:
        return None

    def allocate_table(
        self, store: Any, ty: ir.TableType, module_key: Hashable, index: int
    ) -> tuple[int, Any]:
        return NO_SLOT, TableInstance(store, ty, None)

    def deallocate_table(self, slot: int, table: Any) -> None:
        return None

    def purge_module(self, module_key: Hashable) -> None:
        return None

    def as_pooling(self) -> PoolingInstanceAllocator | None:
        return None

    def __repr__(self) -> str:
        if self._reservation is None:
            return "OnDemandInstanceAllocator()"
        return f"OnDemandInstanceAllocator(memory_reservation={self._reservation})"
