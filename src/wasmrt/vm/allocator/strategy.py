"""``InstanceAllocationStrategy``: which instance allocator an engine builds.

Models Wasmtime's ``InstanceAllocationStrategy`` (WASMTIME-REFERENCE.md 2.4).

Invariants:
- A strategy is a value: on-demand (no config) or pooling with its own copy
  of a ``PoolingAllocationConfig``; equal strategies build equal allocators.
- ``build_allocator`` is the one place an engine's allocator is constructed.
"""

from __future__ import annotations

from wasmrt.errors import WasmtimeError
from wasmrt.vm.allocator.base import InstanceAllocator
from wasmrt.vm.allocator.on_demand import OnDemandInstanceAllocator
from wasmrt.vm.allocator.pooling import PoolingAllocationConfig, PoolingInstanceAllocator

__all__ = ["InstanceAllocationStrategy"]


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
            return OnDemandInstanceAllocator(memory_reservation=memory_reservation)
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
