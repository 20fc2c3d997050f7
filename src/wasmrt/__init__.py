"""wasmrt: a pure-Python WebAssembly runtime whose every allocation goes through
``wasmrt.alloc.try_alloc``; its public API is a drop-in for wasmtime-py's core.

``import wasmrt as wasmtime`` keeps code written for wasmtime-py working: the
names below are wasmtime-py's core names, plus Wasmtime's resource machinery
(``ResourceLimiter``, ``StoreLimits``, pooling) and ``OutOfMemory``.
"""

from wasmrt.alloc import AllocKind, install_hook, try_alloc
from wasmrt.errors import (
    InvalidModuleError,
    LinkError,
    MalformedError,
    OutOfMemory,
    PoolConcurrencyLimitError,
    WasmtimeError,
    WatParseError,
)
from wasmrt.runtime import (
    Caller,
    Config,
    Engine,
    ExitTrap,
    ExportType,
    Func,
    FuncType,
    Global,
    GlobalType,
    ImportType,
    Instance,
    InstanceAllocationStrategy,
    InstanceExports,
    InstancePre,
    Limits,
    Linker,
    Managed,
    Memory,
    MemoryType,
    Module,
    PoolingAllocationConfig,
    PoolingAllocatorMetrics,
    Store,
    StoreContext,
    Storelike,
    Table,
    TableType,
    Tag,
    TagType,
    Val,
    ValType,
    wat2wasm,
)
from wasmrt.runtime.limits import (
    ResourceLimiter,
    ResourceLimiterAsync,
    StoreLimits,
    StoreLimitsBuilder,
)
from wasmrt.trap import Frame, Trap, TrapCode
from wasmrt.wasi import DirPerms, FilePerms, WasiConfig

__all__ = [
    "AllocKind",
    "Caller",
    "Config",
    "DirPerms",
    "Engine",
    "ExitTrap",
    "ExportType",
    "FilePerms",
    "Frame",
    "Func",
    "FuncType",
    "Global",
    "GlobalType",
    "ImportType",
    "Instance",
    "InstanceAllocationStrategy",
    "InstanceExports",
    "InstancePre",
    "InvalidModuleError",
    "Limits",
    "LinkError",
    "Linker",
    "MalformedError",
    "Memory",
    "MemoryType",
    "Module",
    "OutOfMemory",
    "PoolConcurrencyLimitError",
    "PoolingAllocationConfig",
    "PoolingAllocatorMetrics",
    "ResourceLimiter",
    "ResourceLimiterAsync",
    "Store",
    "StoreContext",
    "StoreLimits",
    "StoreLimitsBuilder",
    "Table",
    "TableType",
    "Tag",
    "TagType",
    "Trap",
    "TrapCode",
    "Val",
    "ValType",
    "WasiConfig",
    "WasmtimeError",
    "WatParseError",
    "install_hook",
    "try_alloc",
    "wat2wasm",
]

# ``Managed`` and ``Storelike`` are importable but, as in wasmtime-py, not in ``__all__``.
_ = (Managed, Storelike)
