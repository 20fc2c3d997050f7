"""The ``InstanceAllocator`` protocol the vm calls (``strategy.py`` picks the implementation).

Models Wasmtime's ``vm/instance/allocator.rs`` (WASMTIME-REFERENCE.md 2.4-2.5);
the contract with the vm is in docs/internals.md ("Allocator protocol").

Invariants:
- ``validate_module`` runs when a Module is created (compiled or
  deserialised); a module it accepts never fails at instantiation for a
  *static* reason, only for concurrency (``PoolConcurrencyLimitError``), the
  limiter, or OOM.
- Every successful ``increment_core_instance_count`` / ``allocate_memory`` /
  ``allocate_table`` is paired with exactly one ``decrement_*`` /
  ``deallocate_*``: the vm's ``DeallocateOnDrop`` guard does it on failure,
  ``StoreCore.close()`` on teardown. A failed ``allocate_*`` leaves nothing
  behind (no slot, no count), so the caller must not deallocate it.
- ``deallocate_*`` never raises for a slot it handed out; after it returns,
  the slot holds nothing of the previous tenant.
- ``NO_SLOT`` (-1) is the slot index of allocators without slots (Wasmtime's
  ``MemoryAllocationIndex::default()``).
- ``module_key`` is any hashable identity of a compiled module; the pooling
  allocator keys slot affinity on ``(module_key, defined index)``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from wasmrt import ir

if TYPE_CHECKING:
    from wasmrt.vm.allocator.pooling import PoolingInstanceAllocator

__all__ = ["NO_SLOT", "InstanceAllocator"]

#: Slot index reported by allocators that do not use slots.
NO_SLOT = -1


@runtime_checkable
class InstanceAllocator(Protocol):
    """What the vm calls to obtain and release an instance's memories, tables and count."""

    def validate_module(self, module: ir.Module) -> None:
        """Raise ``WasmtimeError`` if this allocator can never host ``module``."""
        ...

    def increment_core_instance_count(self) -> None:
        """Count one more live instance; ``PoolConcurrencyLimitError`` when full."""
        ...

    def decrement_core_instance_count(self) -> None: ...

    def allocate_memory(
        self, store: Any, ty: ir.MemoryType, module_key: Hashable, index: int
    ) -> tuple[int, Any]:
        """Create defined memory ``index`` of a module; returns ``(slot, LinearMemory)``."""
        ...

    def deallocate_memory(self, slot: int, memory: Any) -> None: ...

    def allocate_table(
        self, store: Any, ty: ir.TableType, module_key: Hashable, index: int
    ) -> tuple[int, Any]:
        """Create defined table ``index`` of a module; returns ``(slot, TableInstance)``."""
        ...

    def deallocate_table(self, slot: int, table: Any) -> None: ...

    def purge_module(self, module_key: Hashable) -> None:
        """Forget any per-module state (slot affinity) for ``module_key``."""
        ...

    def as_pooling(self) -> PoolingInstanceAllocator | None: ...
