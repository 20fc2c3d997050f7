"""Instance allocators: on-demand (default) and pooling, behind one protocol.

Invariants:
- The vm talks to allocators only through ``InstanceAllocator`` (base.py);
  docs/internals.md documents the protocol.
- Importing this package imports neither ``wasmrt.vm`` nor the public API:
  vm classes are constructed lazily (``_vm.py``), so there is no import cycle.
"""

from wasmrt.errors import PoolConcurrencyLimitError
from wasmrt.runtime.allocator.base import NO_SLOT, InstanceAllocationStrategy, InstanceAllocator
from wasmrt.runtime.allocator.index_allocator import (
    ModuleAffinityIndexAllocator,
    SimpleIndexAllocator,
)
from wasmrt.runtime.allocator.on_demand import OnDemandInstanceAllocator
from wasmrt.runtime.allocator.pooling import (
    Enabled,
    MpkEnabled,
    PoolingAllocationConfig,
    PoolingAllocatorMetrics,
    PoolingInstanceAllocator,
)

__all__ = [
    "NO_SLOT",
    "Enabled",
    "InstanceAllocationStrategy",
    "InstanceAllocator",
    "ModuleAffinityIndexAllocator",
    "MpkEnabled",
    "OnDemandInstanceAllocator",
    "PoolConcurrencyLimitError",
    "PoolingAllocationConfig",
    "PoolingAllocatorMetrics",
    "PoolingInstanceAllocator",
    "SimpleIndexAllocator",
]
