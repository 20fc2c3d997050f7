"""vm core unit tests: memories, tables, instantiation order and cleanup, limits, host calls."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compile"))
from wat_helpers import engine, wat_to_compiled  # noqa: E402

from wasmrt import ir  # noqa: E402
from wasmrt.alloc import AllocKind, install_hook  # noqa: E402
from wasmrt.errors import LinkError, OutOfMemory, ResourceLimitExceeded  # noqa: E402
from wasmrt.trap import Trap, TrapCode  # noqa: E402
from wasmrt.vm import (  # noqa: E402
    HostFunction,
    LinearMemory,
    StoreCore,
    TableInstance,
    instantiate,
)
from wasmrt.vm.memory import PAGE_SIZE  # noqa: E402


def test_memory_growth_keeps_views_inside_reservation() -> None:
    store = StoreCore()
    mem = LinearMemory(store, ir.MemoryType(ir.Limits(1, 4)))
    view = memoryview(mem.data)
    assert mem.grow(2, from_wasm=True) == 1
    assert mem.pages == 3 and mem.size == 3 * PAGE_SIZE
    mem.data[2 * PAGE_SIZE] = 7
    assert view[2 * PAGE_SIZE] == 7  # same buffer
    assert mem.grow(2, from_wasm=True) == -1  # past the maximum
    view.release()


def test_memory_growth_past_reservation_moves_when_pinned() -> None:
    store = StoreCore()
    mem = LinearMemory(store, ir.MemoryType(ir.Limits(1, None)), reservation_cap=PAGE_SIZE)
    mem.data[5] = 9
    view = memoryview(mem.data)
    assert mem.grow(1) == 1
    assert mem.data[5] == 9 and len(mem.data) >= 2 * PAGE_SIZE
    view.release()


class _Refuse:
    def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return desired <= PAGE_SIZE

    def memory_grow_failed(self, error: BaseException) -> None:
        pass

    def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return desired <= 2

    def table_grow_failed(self, error: BaseException) -> None:
        pass

    def instances(self) -> int:
        return 1

    def tables(self) -> int:
        return 10

    def memories(self) -> int:
        return 10


def test_limiter_refusals() -> None:
    store = StoreCore(limiter=_Refuse())
    mem = LinearMemory(store, ir.MemoryType(ir.Limits(1, None)))
    assert mem.grow(1, from_wasm=True) == -1
    with pytest.raises(ResourceLimitExceeded):
        LinearMemory(store, ir.MemoryType(ir.Limits(2, None)))
    tab = TableInstance(store, ir.TableType("funcref", ir.Limits(1, None)))
    assert tab.grow(1, None, from_wasm=True) == 1
    assert tab.grow(1, None, from_wasm=True) == -1


def test_instance_count_limit() -> None:
    cm = wat_to_compiled("(module)")
    store = StoreCore(limiter=_Refuse())
    instantiate(store, cm, [])
    with pytest.raises(ResourceLimitExceeded, match="instance count too high at 2"):
        instantiate(store, cm, [])
    assert store.instance_count == 1


class _RecordingAllocator:
    def __init__(self) -> None:
        self.live_instances = 0
        self.memories: list[Any] = []
        self.tables: list[Any] = []

    def validate_module(self, module: ir.Module) -> None:
        pass

    def increment_core_instance_count(self) -> None:
        self.live_instances += 1

    def decrement_core_instance_count(self) -> None:
        self.live_instances -= 1

    def allocate_memory(
        self, store: Any, ty: ir.MemoryType, key: Any, index: int
    ) -> tuple[int, Any]:
        mem = LinearMemory(store, ty)
        self.memories.append(mem)
        return len(self.memories), mem

    def deallocate_memory(self, slot: int, memory: Any) -> None:
        self.memories.remove(memory)

    def allocate_table(self, store: Any, ty: ir.TableType, key: Any, index: int) -> tuple[int, Any]:
        tab = TableInstance(store, ty, None)
        self.tables.append(tab)
        return len(self.tables), tab

    def deallocate_table(self, slot: int, table: Any) -> None:
        self.tables.remove(table)

    def purge_module(self, key: Any) -> None:
        pass

    def as_pooling(self) -> None:
        return None


def test_failed_instantiation_releases_everything() -> None:
    alloc = _RecordingAllocator()
    store = StoreCore(engine(allocator=alloc))
    cm = wat_to_compiled('(module (table 1 funcref) (memory 1) (data (i32.const 65535) "ab"))')
    with pytest.raises(Trap) as ei:
        instantiate(store, cm, [])
    assert ei.value.trap_code is TrapCode.MEMORY_OUT_OF_BOUNDS
    assert alloc.live_instances == 0 and not alloc.memories and not alloc.tables
    assert (store.instance_count, store.memory_count, store.table_count) == (0, 0, 0)
    ok = wat_to_compiled("(module (table 1 funcref) (memory 1))")
    instantiate(store, ok, [])
    assert alloc.live_instances == 1 and len(alloc.memories) == 1
    store.close()
    store.close()
    assert alloc.live_instances == 0 and not alloc.memories and not alloc.tables


def test_oom_during_instantiation_propagates_unchanged() -> None:
    store = StoreCore()
    cm = wat_to_compiled('(module (memory 1) (func (export "f")))')

    def hook(size: int, kind: AllocKind, absorbing: bool) -> None:
        if kind is AllocKind.MEMORY:
            raise OutOfMemory(size)

    with install_hook(hook), pytest.raises(OutOfMemory):
        instantiate(store, cm, [])
    assert store.instance_count == 0 and store.memory_count == 0


def test_link_errors() -> None:
    store = StoreCore()
    cm = wat_to_compiled('(module (import "m" "f" (func (param i32))))')
    wrong = HostFunction(store, ir.FuncType((), ()), lambda caller: None)
    with pytest.raises(LinkError, match="incompatible import type for `m::f`"):
        instantiate(store, cm, [wrong])
    with pytest.raises(LinkError):
        instantiate(store, cm, [])


def test_host_calls_ask_try_alloc_and_get_the_caller() -> None:
    store = StoreCore()
    seen: list[Any] = []
    host = HostFunction(
        store, ir.FuncType(("i32",), ("i32",)), lambda caller, x: seen.append(caller) or x + 1
    )
    cm = wat_to_compiled(
        '(module (import "m" "h" (func $h (param i32) (result i32)))'
        ' (func (export "f") (param i32) (result i32) (call $h (local.get 0))))'
    )
    inst = instantiate(store, cm, [host])
    kinds: list[AllocKind] = []
    with install_hook(lambda size, kind, absorbing: kinds.append(kind)):
        assert store.call(inst.exports["f"], [41]) == 42
        assert kinds == [AllocKind.CODE, AllocKind.CALL]  # "f" is compiled on its first call
        del kinds[:]
        assert store.call(inst.exports["f"], [41]) == 42
    assert kinds == [AllocKind.CALL]
    assert seen == [inst, inst]


def test_memory_grow_from_wasm_absorbs_oom() -> None:
    store = StoreCore()
    cm = wat_to_compiled(
        '(module (memory 1) (func (export "g") (result i32) (memory.grow (i32.const 1))))'
    )
    cm.compile_all()  # so that the grow is the only allocation the call asks for
    inst = instantiate(store, cm, [])

    def hook(size: int, kind: AllocKind, absorbing: bool) -> None:
        assert absorbing
        raise OutOfMemory(size)

    with install_hook(hook):
        assert store.call(inst.exports["g"], []) == 0xFFFFFFFF
    assert store.call(inst.exports["g"], []) == 1
