"""Follow-ups of the vm/compile/runtime layers: trap backtraces through the public
API, ``GrowRefused``, the limiter's ``maximum``, finalizers during deep wasm
recursion, lazily built function objects and reused memory mappings."""

from __future__ import annotations

import sys
from typing import Any

import pytest

import wasmrt
from wasmrt import ir
from wasmrt.errors import GrowRefused, OutOfMemory, WasmtimeError
from wasmrt.vm import PAGE_SIZE, LinearMemory, StoreCore, TableInstance, instantiate
from wasmrt.vm import memory as vm_memory

NESTED = """(module $mymod
  (func $inner (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
  (func $middle (param i32) (result i32) (call $inner (local.get 0)))
  (func (export "run") (param i32) (result i32) (call $middle (local.get 0))))"""


def _instance(wat: str, imports: list[Any] | None = None) -> tuple[Any, Any]:
    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    inst = wasmrt.Instance(store, wasmrt.Module(engine, wat), imports or [])
    return store, inst


def _func(inst: Any, store: Any, name: str) -> wasmrt.Func:
    f = inst.exports(store)[name]
    assert isinstance(f, wasmrt.Func)
    return f


def test_trap_backtrace_innermost_first_with_names() -> None:
    store, inst = _instance(NESTED)
    run = _func(inst, store, "run")
    assert run(store, 1) == 1
    with pytest.raises(wasmrt.Trap) as ei:
        run(store, 0)
    trap = ei.value
    assert trap.trap_code == wasmrt.TrapCode.INTEGER_DIVISION_BY_ZERO
    assert [f.func_index for f in trap.frames] == [0, 1, 2]
    assert [f.func_name for f in trap.frames] == ["inner", "middle", None]
    assert {f.module_name for f in trap.frames} == {"mymod"}
    offsets = [f.module_offset for f in trap.frames]
    assert offsets == sorted(offsets) and offsets[0] > 0
    lines = trap.message.splitlines()
    assert lines[0] == "error while executing at wasm backtrace:"
    assert lines[1] == f"    0: {offsets[0]:#8x} - mymod!inner"
    assert lines[3] == f"    2: {offsets[2]:#8x} - mymod!<wasm function 2>"
    assert trap.message.endswith("\nCaused by:\n    wasm trap: integer divide by zero\n")
    assert str(trap) == trap.message


def test_stack_overflow_and_host_traps() -> None:
    store, inst = _instance('(module (func $r (export "r") (call $r)))')
    with pytest.raises(wasmrt.Trap) as ei:
        _func(inst, store, "r")(store)
    assert ei.value.trap_code == wasmrt.TrapCode.STACK_OVERFLOW
    assert len(ei.value.frames) > 100 and {f.func_name for f in ei.value.frames} == {"r"}

    def boom() -> None:
        raise wasmrt.Trap("boom")

    engine = store.engine
    host = wasmrt.Func(store, wasmrt.FuncType([], []), boom)
    wat = '(module (import "" "h" (func $h)) (func (export "run") (call $h)))'
    inst2 = wasmrt.Instance(store, wasmrt.Module(engine, wat), [host])
    with pytest.raises(wasmrt.Trap) as ei:
        _func(inst2, store, "run")(store)
    assert ei.value.frames == [] and ei.value.message == "boom"  # as wasmtime-py


class _Recorder:
    def __init__(self, memory_ok: int = 1 << 40, table_ok: int = 1 << 40) -> None:
        self.calls: list[tuple[str, int, int, int | None]] = []
        self.memory_ok = memory_ok
        self.table_ok = table_ok

    def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        self.calls.append(("memory", current, desired, maximum))
        return desired <= self.memory_ok

    def memory_grow_failed(self, error: BaseException) -> None:
        pass

    def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        self.calls.append(("table", current, desired, maximum))
        return desired <= self.table_ok

    def table_grow_failed(self, error: BaseException) -> None:
        pass

    def instances(self) -> int:
        return 100

    def tables(self) -> int:
        return 100

    def memories(self) -> int:
        return 100


def test_grow_refusals_are_grow_refused() -> None:
    rec = _Recorder(memory_ok=2 * PAGE_SIZE, table_ok=2)
    store = StoreCore(limiter=rec)
    mem = LinearMemory(store, ir.MemoryType(ir.Limits(1, 3)))
    assert mem.grow(5, from_wasm=True) == -1
    with pytest.raises(GrowRefused):
        mem.grow(5)  # the type's maximum
    with pytest.raises(GrowRefused):
        mem.grow(2)  # the limiter said no
    tab = TableInstance(store, ir.TableType("funcref", ir.Limits(1, None)))
    assert tab.grow(5, None, from_wasm=True) == -1
    with pytest.raises(GrowRefused):
        tab.grow(5, None)
    assert issubclass(GrowRefused, WasmtimeError) and not issubclass(OutOfMemory, GrowRefused)


def test_public_grow_keeps_limiter_errors() -> None:
    class Raising(_Recorder):
        def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
            if desired > PAGE_SIZE:
                raise WasmtimeError("limiter says no")
            return True

    store = wasmrt.Store()
    mem = wasmrt.Memory(store, wasmrt.MemoryType(wasmrt.Limits(1, 2)))
    with pytest.raises(WasmtimeError, match="failed to grow memory by `5`"):
        mem.grow(store, 5)
    store.limiter(Raising())
    with pytest.raises(WasmtimeError, match="limiter says no"):
        mem.grow(store, 1)


@pytest.mark.parametrize(
    ("type_max", "cap", "expected_pages"),
    [(None, None, None), (4, None, 4), (None, 10, 10), (40, 10, 10), (4, 10, 4)],
)
def test_limiter_maximum_is_pool_clamped(
    type_max: int | None, cap: int | None, expected_pages: int | None
) -> None:
    rec = _Recorder()
    store = StoreCore(limiter=rec)
    mem = LinearMemory(store, ir.MemoryType(ir.Limits(1, type_max)), max_pages_cap=cap)
    mem.grow(1)
    want = None if expected_pages is None else expected_pages * PAGE_SIZE
    assert [c[3] for c in rec.calls] == [want, want]
    tab = TableInstance(store, ir.TableType("funcref", ir.Limits(1, type_max)), max_cap=cap)
    tab.grow(1, None)
    assert [c[3] for c in rec.calls[2:]] == [expected_pages, expected_pages]


def test_grow_async_predecides_the_value_the_vm_passes() -> None:
    import asyncio

    seen: list[tuple[str, int, int, int | None]] = []

    class Async(wasmrt.ResourceLimiterAsync):  # type: ignore[misc]
        async def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
            seen.append(("memory", current, desired, maximum))
            return True

        async def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
            seen.append(("table", current, desired, maximum))
            return True

    store = wasmrt.Store()
    mem = wasmrt.Memory(store, wasmrt.MemoryType(wasmrt.Limits(1, None)))
    table = wasmrt.Table(
        store, wasmrt.TableType(wasmrt.ValType.funcref(), wasmrt.Limits(1, None)), None
    )
    store.limiter_async(Async())

    async def go() -> None:
        assert await mem.grow_async(store, 1) == 1
        assert await table.grow_async(store, 1, None) == 1

    asyncio.run(go())
    assert seen == [("memory", PAGE_SIZE, 2 * PAGE_SIZE, None), ("table", 1, 2, None)]


def test_finalizers_do_not_run_at_the_recursion_limit() -> None:
    """Stores dropped in reference cycles are collected while a guest recurses to
    STACK_OVERFLOW (plain recursion: the collector runs while the RecursionError
    unwinds; through a host function: at every depth). No finalizer may fail.
    Without the deferral of ``Managed.__del__`` this reports dozens of
    RecursionErrors on Python 3.11. It runs in a fresh interpreter at top
    level: whether it fails depends on the collector's state and stack depth."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).with_name("deep_gc_script.py")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "unraisable: 0 []", out.stdout + out.stderr[-2000:]


MANY = (
    "(module "
    + " ".join(
        f"(func $f{i} {'(export ' + chr(34) + f'f{i}' + chr(34) + ')' if i % 10 == 0 else ''}"
        f" (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))"
        for i in range(50)
    )
    + ' (table 4 funcref) (elem (i32.const 0) $f1 $f2) (func (export "ci") (param i32) (result i32)'
)
MANY += " (call_indirect (param i32) (result i32) (i32.const 7) (local.get 0))))"


def test_function_objects_are_built_on_first_use() -> None:
    from wasmrt.runtime.module import build_module_core

    core = build_module_core(wasmrt.Engine().ptr(), wasmrt.wat2wasm(MANY))
    store = StoreCore()
    inst = instantiate(store, core.compiled, [])
    raw = [list.__getitem__(inst.funcs, k) for k in range(len(inst.funcs))]
    assert [k for k, f in enumerate(raw) if f is not None] == []  # the table holds placeholders
    exports = inst.exports
    assert exports["f10"] is inst.funcs[10] is inst.funcs[10]
    assert store.call(exports["f10"], [1]) == 11  # binds the code
    late = inst.funcs[33]  # built after binding: gets its code at once
    assert store.call(late, [1]) == 34
    assert store.call(exports["ci"], [1]) == 9 and inst.tables[0].get(1) is inst.funcs[2]
    assert list(inst.funcs)[5] is inst.funcs[5] and inst.funcs[-1] is inst.funcs[50]


def test_released_mappings_are_reused_only_when_unreferenced() -> None:
    store = StoreCore()
    ty = ir.MemoryType(ir.Limits(1, 4))
    a = LinearMemory(store, ty)
    if not isinstance(a.data, vm_memory.mmap.mmap):
        pytest.skip("no anonymous mappings here")
    a.data[10] = 7
    view = memoryview(a.data)
    a.release()
    assert all(m is not view.obj for m in vm_memory._SPARE)  # still readable by someone
    assert view[10] == 0
    view.release()
    b = LinearMemory(store, ty)
    mapping = b.data
    b.data[100] = 9
    b.release()
    del mapping
    c = LinearMemory(store, ty)
    assert c.data[100] == 0 and c.data[10] == 0
