"""The ``InstanceAllocator`` protocol and ``InstanceAllocationStrategy``.

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
from wasmrt.errors import WasmtimeError

if TYPE_CHECKING:
    from wasmrt.runtime.allocator.pooling import PoolingAllocationConfig, PoolingInstanceAllocator

__all__ = ["NO_SLOT", "InstanceAllocationStrategy", "InstanceAllocator"]

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


class InstanceAllocationStrategy:
    """Which instance allocator an engine uses: ``on_demand()`` (default) or ``pooling(config)``.

    ``Config.allocation_strategy`` accepts one of these (or a
    ``PoolingAllocationConfig``, meaning ``pooling(config)``, as in Rust's
    ``impl From<PoolingAllocationConfig>``). The Engine calls
    ``build_allocator`` once, when it is created.
    """

    __slots__ = ("_pooling",)

    def __init__(self, pooling: PoolingAllocationConfig | None = None) -> None:
        self._pooling = pooling

    @classmethod
    def on_demand(cls) -> InstanceAllocationStrategy:
        return cls(None)

    @classmethod
    def pooling(cls, config: PoolingAllocationConfig | None = None) -> InstanceAllocationStrategy:
        from wasmrt.runtime.allocator.pooling import PoolingAllocationConfig

        if config is None:
            config = PoolingAllocationConfig()
        elif not isinstance(config, PoolingAllocationConfig):
            raise TypeError("expected a PoolingAllocationConfig")
        return cls(config.copy())

    @classmethod
    def coerce(cls, value: object) -> InstanceAllocationStrategy:
        """Accept a strategy, a ``PoolingAllocationConfig``, ``"on-demand"``/``"pooling"`` or None.

        ``None`` means the default (on-demand).
        """
        from wasmrt.runtime.allocator.pooling import PoolingAllocationConfig

        if value is None:
            return cls.on_demand()
        if isinstance(value, InstanceAllocationStrategy):
            return value
        if isinstance(value, PoolingAllocationConfig):
            return cls.pooling(value)
        if isinstance(value, str):
            if value in ("on-demand", "on_demand", "ondemand"):
                return cls.on_demand()
            if value == "pooling":
                return cls.pooling()
            raise WasmtimeError(f"unknown allocation strategy: {value!r}")
        raise TypeError("expected an InstanceAllocationStrategy or a PoolingAllocationConfig")

    @property
    def is_pooling(self) -> bool:
        return self._pooling is not None

    @property
    def pooling_config(self) -> PoolingAllocationConfig | None:
        return self._pooling

    def build_allocator(self, memory_reservation: int | None = None) -> InstanceAllocator:
        """Create the engine's allocator.

        ``memory_reservation`` is the engine's ``Config.memory_reservation``
        when the embedder set it; both allocators give it to every memory they
        create as its reservation cap, and pooling refuses a ``max_memory_size`` above it
        ("maximum memory size of 0x… bytes exceeds the configured memory
        reservation of 0x… bytes").
        """
        if self._pooling is None:
            from wasmrt.runtime.allocator.on_demand import OnDemandInstanceAllocator

            return OnDemandInstanceAllocator(memory_reservation=memory_reservation)
        from wasmrt.runtime.allocator.pooling import PoolingInstanceAllocator

        return PoolingInstanceAllocator(self._pooling, memory_reservation=memory_reservation)

    def __repr__(self) -> str:
        if self._pooling is None:
            return "InstanceAllocationStrategy.on_demand()"
        return f"InstanceAllocationStrategy.pooling({self._pooling!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstanceAllocationStrategy):
            return NotImplemented
        return self._pooling == other._pooling

    def __hash__(self) -> int:
        return hash(("strategy", self._pooling is None))
