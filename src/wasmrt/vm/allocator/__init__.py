"""Instance allocators: on-demand (default) and pooling, behind one protocol.

Invariants:
- The vm talks to allocators only through ``InstanceAllocator`` (base.py);
  docs/internals.md documents the protocol.
- Allocators construct the vm's ``LinearMemory``/``TableInstance`` and import
  nothing above the vm (Wasmtime keeps them in ``runtime/vm/instance/allocator*``);
  ``wasmrt`` and ``wasmrt.runtime`` re-export the public names.
"""

from wasmrt.errors import PoolConcurrencyLimitError
from wasmrt.vm.allocator.base import NO_SLOT, InstanceAllocator
from wasmrt.vm.allocator.index_allocator import (
    ModuleAffinityIndexAllocator,
    SimpleIndexAllocator,
)
from wasmrt.vm.allocator.on_demand import OnDemandInstanceAllocator
from wasmrt.vm.allocator.pooling import (
    Enabled,
    MpkEnabled,
    PoolingAllocationConfig,
    PoolingAllocatorMetrics,
    PoolingInstanceAllocator,
)
from wasmrt.vm.allocator.strategy import InstanceAllocationStrategy

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
