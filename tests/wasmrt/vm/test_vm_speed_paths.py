"""vm fast paths keep their guarantees: mmap memories, instance plans, lazy code
binding, and the thread-safe recursion-limit registry of ``StoreCore.call``."""

from __future__ import annotations

import mmap
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from wat_helpers import instance, wat_to_compiled  # noqa: E402

from wasmrt import ir  # noqa: E402
from wasmrt.errors import WasmtimeError  # noqa: E402
from wasmrt.trap import Trap, TrapCode  # noqa: E402
from wasmrt.vm import (  # noqa: E402
    GlobalInstance,
    LinearMemory,
    ModuleInstance,
    StoreCore,
    WasmFunction,
    instantiate,
)
from wasmrt.vm import memory as vm_memory  # noqa: E402
from wasmrt.vm import store as vm_store  # noqa: E402
from wasmrt.vm.instance import instance_plan  # noqa: E402
from wasmrt.vm.memory import PAGE_SIZE  # noqa: E402


def test_memory_is_a_lazily_zeroed_mapping_bounded_by_size() -> None:
    mem = LinearMemory(StoreCore(), ir.MemoryType(ir.Limits(1, None)))
    assert isinstance(mem.data, mmap.mmap)
    assert len(mem.data) == vm_memory.DEFAULT_RESERVATION  # whole 32-bit memory reserved
    assert mem.size == PAGE_SIZE and mem.data[PAGE_SIZE - 1] == 0
    view = memoryview(mem.data)
    assert mem.grow(3) == 1
    mem.data[4 * PAGE_SIZE - 1] = 5
    assert view[4 * PAGE_SIZE - 1] == 5  # never moved
    view.release()


def test_memory_release_drops_pages_even_when_pinned() -> None:
    mem = LinearMemory(StoreCore(), ir.MemoryType(ir.Limits(1, 2)))
    assert len(mem.data) == 2 * PAGE_SIZE  # reservation = the maximum
    mem.data[10] = 42
    view = memoryview(mem.data)
    mem.release()
    assert (bytes(mem.data), mem.size, mem.pages) == (b"", 0, 0)
    assert view[10] == 0  # the stale view no longer sees the old bytes
    view.release()


def test_memory_falls_back_to_bytearray(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError("no mappings here")

    monkeypatch.setattr(vm_memory.mmap, "mmap", refuse)
    mem = LinearMemory(StoreCore(), ir.MemoryType(ir.Limits(1, None)))
    assert isinstance(mem.data, bytearray)
    assert len(mem.data) == vm_memory.FALLBACK_RESERVATION
    assert mem.grow(2) == 1 and mem.size == 3 * PAGE_SIZE


SEGMENTS = """
(module
  (import "env" "g" (global $g i32))
  (table 8 funcref)
  (memory 1)
  (func $a (result i32) (i32.const 1))
  (func $b (result i32) (i32.const 2))
  (elem (i32.const 0) $a $b $a)
  (elem (global.get $g) func $b)
  (data (i32.const 8) "xyz")
  (func (export "call") (param i32) (result i32) (call_indirect (result i32) (local.get 0)))
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))
"""


def G3() -> GlobalInstance:
    return GlobalInstance(ir.GlobalType("i32", False), 3)


def test_plan_is_shared_and_instances_are_independent() -> None:
    store = StoreCore()
    compiled = wat_to_compiled(SEGMENTS)
    a = instantiate(store, compiled, [G3()])
    b = instantiate(store, compiled, [G3()])
    assert instance_plan(compiled) is instance_plan(compiled)
    assert a.tables[0].get(0) is a.funcs[0] and b.tables[0].get(0) is b.funcs[0]
    assert a.tables[0].get(3) is a.funcs[1]  # offset from global.get
    assert [store.call(a.exports["call"], [i]) for i in range(4)] == [1, 2, 1, 2]
    assert store.call(b.exports["load"], [9]) == ord("y")
    a.mems[0].data[9] = 0
    assert store.call(b.exports["load"], [9]) == ord("y")


def test_code_is_bound_on_first_use_only() -> None:
    store = StoreCore()
    inst = instantiate(store, wat_to_compiled(SEGMENTS), [G3()])
    assert inst.factory is not None  # nothing compiled per instance yet
    assert store.call(inst.exports["call"], [1]) == 2
    assert inst.factory is None
    assert store.call(inst.exports["call"], [0]) == 1  # f0's first call compiles and installs it
    first = inst.funcs[0].call
    assert store.call(inst.exports["call"], [0]) == 1 and inst.funcs[0].call is first


def test_function_read_before_binding_point_raises() -> None:
    compiled = wat_to_compiled(SEGMENTS)
    f = WasmFunction(ModuleInstance(StoreCore(), compiled), 1, compiled.module.types[0])
    with pytest.raises(WasmtimeError, match="before its instance finished"):
        f.call()
    with pytest.raises(AttributeError):
        f.nonexistent  # noqa: B018


def test_recursion_limit_registry_is_thread_safe() -> None:
    # Two threads keep entering wasm; the deep one must never see a limit lowered
    # under it by the other thread's entries/exits.
    deep_store, deep = instance(
        """(module (func $rec (export "rec") (param i32) (result i32)
             (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
               (else (i32.add (i32.const 1) (call $rec (i32.sub (local.get 0) (i32.const 1))))))))"""
    )
    small_store, small = instance(
        """(module (func (export "f") (result i32) (i32.const 7)))""",
        max_wasm_stack=8 * 1024,
    )
    before = sys.getrecursionlimit()
    errors: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        try:
            while not stop.is_set():
                assert small_store.call(small.exports["f"], []) == 7
        except BaseException as e:  # reported below, then re-raised by the assert
            errors.append(e)
            raise

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for _ in range(20):
            assert deep_store.call(deep.exports["rec"], [3000]) == 3000
    finally:
        stop.set()
        t.join()
    assert not errors
    assert sys.getrecursionlimit() == before
    assert not vm_store._NEEDS


def test_small_stack_still_traps_and_limit_comes_back() -> None:
    store, inst = instance(
        """(module (func $inf (export "inf") (call $inf)))""", max_wasm_stack=16 * 1024
    )
    before = sys.getrecursionlimit()
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["inf"], [])
    assert ei.value.trap_code is TrapCode.STACK_OVERFLOW
    assert sys.getrecursionlimit() == before
