"""``wasmrt.runtime``: the public, wasmtime-py compatible API over the vm core.

Invariants:
- The names and behaviour follow wasmtime-py's core API (see
  WASMTIME-REFERENCE.md section 1); wasmrt additions use Wasmtime's Rust
  names (``Store.limiter``, ``Config.allocation_strategy``,
  ``Engine.pooling_allocator_metrics``).
- Every allocation made on the embedder's behalf asks
  ``wasmrt.alloc.try_alloc`` first; ``OutOfMemory`` propagates unchanged and
  leaves the objects involved usable.
- Only the standard library and lower wasmrt layers are imported; the
  instance allocators live in ``wasmrt.vm.allocator`` and are re-exported here.
"""

from wasmrt.runtime._managed import Managed
from wasmrt.runtime.caller import Caller
from wasmrt.runtime.config import Config
from wasmrt.runtime.engine import Engine
from wasmrt.runtime.exit_trap import ExitTrap
from wasmrt.runtime.func import Func
from wasmrt.runtime.global_ import Global
from wasmrt.runtime.instance import Instance, InstanceExports
from wasmrt.runtime.instance_pre import InstancePre
from wasmrt.runtime.linker import Linker
from wasmrt.runtime.memory import Memory
from wasmrt.runtime.module import Module
from wasmrt.runtime.store import Store, StoreContext, Storelike
from wasmrt.runtime.table import Table
from wasmrt.runtime.tag import Tag
from wasmrt.runtime.types import (
    ExportType,
    FuncType,
    GlobalType,
    ImportType,
    Limits,
    MemoryType,
    TableType,
    TagType,
    ValType,
)
from wasmrt.runtime.val import Val
from wasmrt.runtime.wat import wat2wasm
from wasmrt.vm.allocator import (
    NO_SLOT,
    Enabled,
    InstanceAllocationStrategy,
    InstanceAllocator,
    MpkEnabled,
    OnDemandInstanceAllocator,
    PoolConcurrencyLimitError,
    PoolingAllocationConfig,
    PoolingAllocatorMetrics,
    PoolingInstanceAllocator,
)

__all__ = [
    "NO_SLOT",
    "Caller",
    "Config",
    "Engine",
    "Enabled",
    "ExitTrap",
    "ExportType",
    "Func",
    "FuncType",
    "Global",
    "GlobalType",
    "ImportType",
    "InstanceAllocationStrategy",
    "InstanceAllocator",
    "Instance",
    "InstanceExports",
    "InstancePre",
    "Limits",
    "Linker",
    "Managed",
    "Memory",
    "MemoryType",
    "MpkEnabled",
    "OnDemandInstanceAllocator",
    "PoolConcurrencyLimitError",
    "PoolingAllocationConfig",
    "PoolingAllocatorMetrics",
    "PoolingInstanceAllocator",
    "Module",
    "Store",
    "StoreContext",
    "Storelike",
    "Table",
    "TableType",
    "Tag",
    "TagType",
    "Val",
    "ValType",
    "wat2wasm",
]
