"""Every contact point between the public API and the vm core (``wasmrt.vm``).

Invariants:
- The public classes never touch vm objects' attributes directly: they call
  the functions here, so the API depends on the vm contract of
  docs/internals.md in exactly one file.
- Values crossing here are *core* values (unsigned ints, ``FuncInstance``);
  conversion to and from Python values happens in ``val.py``.
- The boundary is typed with the vm's own classes (``StoreCore``,
  ``FuncInstance``, ``LinearMemory``, ``TableInstance``, ``GlobalInstance``,
  ``ModuleInstance``); the runtime sits above the vm and imports it directly.
- Nothing here swallows an exception: traps, ``OutOfMemory`` and host
  exceptions raised by the vm reach the caller unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmrt import ir
from wasmrt.errors import GrowRefused, WasmtimeError
from wasmrt.runtime.types import MemoryTypeInfo
from wasmrt.vm import (
    FuncInstance,
    GlobalInstance,
    HostFunction,
    LinearMemory,
    ModuleInstance,
    StoreCore,
    TableInstance,
)
from wasmrt.vm import instantiate as vm_instantiate

# Stores ----------------------------------------------------------------------


def new_store(engine_core: Any) -> StoreCore:
    return StoreCore(engine_core)


def close_store(core: StoreCore) -> None:
    """Release the store's wasm state, then its WASI context (if any)."""
    wasi, core.wasi = core.wasi, None
    try:
        core.close()
    finally:
        if wasi is not None:
            wasi.close()


def wasi_context(core: StoreCore) -> Any:
    """The store's opaque WASI context, or ``None``."""
    return core.wasi


def swap_wasi(core: StoreCore, ctx: Any) -> Any:
    """Install ``ctx`` as the store's WASI context; returns the previous one."""
    old, core.wasi = core.wasi, ctx
    return old


def store_consumes_fuel(core: StoreCore) -> bool:
    return bool(core.engine.config.consume_fuel)


def set_fuel(core: StoreCore, fuel: int) -> None:
    core.set_fuel(fuel)


def get_fuel(core: StoreCore) -> int:
    return int(core.get_fuel())


def set_epoch_deadline(core: StoreCore, ticks: int) -> None:
    core.set_epoch_deadline(ticks)


def set_limiter(core: StoreCore, limiter: Any) -> None:
    core.set_limiter(limiter)


# Functions -------------------------------------------------------------------


def new_host_function(core: StoreCore, ty: ir.FuncType, fn: Callable[..., Any]) -> HostFunction:
    """A vm host function calling ``fn(calling_instance, *core_args)``."""
    return HostFunction(core, ty, fn)


def func_type(func: FuncInstance) -> ir.FuncType:
    return func.type


def call(core: StoreCore, func: FuncInstance, args: list[Any]) -> Any:
    """Call ``func`` from the embedder; core results (None / value / tuple)."""
    return core.call(func, args)


# Memories, tables, globals ---------------------------------------------------


def new_memory(core: StoreCore, info: MemoryTypeInfo) -> LinearMemory:
    if info.is_64:
        raise WasmtimeError("64-bit memories are not supported by wasmrt (WebAssembly 2.0)")
    if info.shared:
        raise WasmtimeError("shared memories are not supported by wasmrt (WebAssembly 2.0)")
    if info.page_size_log2 != 16:
        raise WasmtimeError("custom page sizes are not supported by wasmrt (WebAssembly 2.0)")
    values = core.engine.config
    if "memory_reservation" not in values.explicit:
        return core.new_host_memory(info.ir)
    mem = LinearMemory(core, info.ir, reservation_cap=values.memory_reservation)
    core.host_objects.append(mem)
    return mem


def memory_type(mem: LinearMemory) -> MemoryTypeInfo:
    return MemoryTypeInfo(mem.ty)


def memory_data(mem: LinearMemory) -> Any:
    """The reserved buffer (``bytearray`` or ``mmap``); ``memory_data_len`` bytes are live."""
    return mem.data


def memory_data_len(mem: LinearMemory) -> int:
    return int(mem.size)


def memory_pages(mem: LinearMemory) -> int:
    return int(mem.pages)


def _is_refusal(err: WasmtimeError) -> bool:
    """Was ``err`` the vm's own "grow refused/failed" report (not a limiter's error)?

    The vm raises ``GrowRefused`` for those when ``from_wasm=False``; an error
    a limiter raised, or an ``OutOfMemory``, is another class and must reach
    the embedder unchanged.
    """
    return isinstance(err, GrowRefused)


def memory_limiter_maximum(mem: LinearMemory) -> int | None:
    """The ``maximum`` the vm passes to ``memory_growing`` for ``mem`` (bytes, or None)."""
    return mem.limiter_maximum


def table_limiter_maximum(table: TableInstance) -> int | None:
    """The ``maximum`` the vm passes to ``table_growing`` for ``table`` (elements, or None)."""
    return table.limiter_maximum


def memory_grow(mem: LinearMemory, delta: int) -> int:
    """Grow from the embedder; the old size in pages, or -1 when refused/failed."""
    try:
        return int(mem.grow(delta, from_wasm=False))
    except WasmtimeError as e:
        if _is_refusal(e):
            return -1
        raise


def new_table(core: StoreCore, ty: ir.TableType, init: Any) -> TableInstance:
    return core.new_host_table(ty, init)


def table_type(table: TableInstance) -> ir.TableType:
    return table.ty


def table_elements(table: TableInstance) -> list[Any]:
    """The element list, for its length and for writes (reads go through ``table_get``)."""
    return table.elements


def table_get(table: TableInstance, idx: int) -> Any:
    """Element ``idx`` (in bounds) as a core reference: a lazy placeholder is resolved."""
    return table.get(idx)


def table_grow(table: TableInstance, delta: int, init: Any) -> int:
    """Grow from the embedder; the old size, or -1 when refused/failed."""
    try:
        return int(table.grow(delta, init, from_wasm=False))
    except WasmtimeError as e:
        if _is_refusal(e):
            return -1
        raise


def new_global(core: StoreCore, ty: ir.GlobalType, value: Any) -> GlobalInstance:
    return core.new_host_global(ty, value)


def global_type(glob: GlobalInstance) -> ir.GlobalType:
    return glob.ty


def global_get(glob: GlobalInstance) -> Any:
    return glob.value


def global_set(glob: GlobalInstance, value: Any) -> None:
    glob.value = value


# Instances -------------------------------------------------------------------


def instantiate(core: StoreCore, module: Any, imports: list[Any]) -> ModuleInstance:
    return vm_instantiate(core, module.compiled, imports)


def instance_exports(instance: ModuleInstance) -> dict[str, Any]:
    return instance.exports


def extern_kind(item: Any) -> str:
    if isinstance(item, FuncInstance):
        return "func"
    if isinstance(item, LinearMemory):
        return "memory"
    if isinstance(item, TableInstance):
        return "table"
    if isinstance(item, GlobalInstance):
        return "global"
    raise WasmtimeError(f"unknown extern {item!r}")
