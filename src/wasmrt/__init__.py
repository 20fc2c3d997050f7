"""wasmrt: a pure-Python WebAssembly runtime whose every allocation goes through
``wasmrt.alloc.try_alloc``; its public API is a drop-in for wasmtime-py's core.
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
from wasmrt.trap import Frame, Trap, TrapCode

__all__ = [
    "AllocKind",
    "Frame",
    "InvalidModuleError",
    "LinkError",
    "MalformedError",
    "OutOfMemory",
    "PoolConcurrencyLimitError",
    "Trap",
    "TrapCode",
    "WasmtimeError",
    "WatParseError",
    "install_hook",
    "try_alloc",
]
