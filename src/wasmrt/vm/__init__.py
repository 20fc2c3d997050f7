"""The vm core: stores, instances, memories, tables, globals and functions.

The bottom of the runtime proper: it imports only the leaves (errors, alloc,
ir, trap), binary and its own modules (``allocator``, ``deferred``,
``backtrace``); ``compile`` and ``runtime`` build on it (tests/test_layering.py).

Invariants: the objects and protocols of docs/internals.md ("vm objects").
Values inside are core values (unsigned ints, binary32-exact floats, ...).
"""

from wasmrt.vm.func import FuncInstance, HostFunction, WasmFunction, intern_functype
from wasmrt.vm.global_ import GlobalInstance
from wasmrt.vm.instance import (
    ModuleInstance,
    check_import,
    deallocate_module,
    eval_const,
    instantiate,
)
from wasmrt.vm.memory import DEFAULT_RESERVATION, PAGE_SIZE, LinearMemory
from wasmrt.vm.store import StoreCore
from wasmrt.vm.table import TableInstance

__all__ = [
    "DEFAULT_RESERVATION",
    "PAGE_SIZE",
    "FuncInstance",
    "GlobalInstance",
    "HostFunction",
    "LinearMemory",
    "ModuleInstance",
    "StoreCore",
    "TableInstance",
    "WasmFunction",
    "check_import",
    "deallocate_module",
    "eval_const",
    "instantiate",
    "intern_functype",
]
