"""Lazy funcref table entries: active element segments write placeholders into
tables their instance defines, and every reader still sees a proper funcref."""

from __future__ import annotations

import pytest

import wasmrt
from wasmrt.trap import Trap, TrapCode
from wasmrt.vm import StoreCore, instantiate
from wasmrt.vm.table import LazyFuncRef

OWNER = """(module
  (type $i (func (param i32) (result i32)))
  (type $v (func (result i32)))
  (table $t (export "tab") 8 funcref)
  (elem (i32.const 0) $inc $dbl $k7 $inc)
  (elem (i32.const 5) func $dbl)
  (func $inc (type $i) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $i) (i32.mul (local.get 0) (i32.const 2)))
  (func $k7 (type $v) (i32.const 7))
  (func (export "ci") (param i32 i32) (result i32)
    (call_indirect (type $i) (local.get 1) (local.get 0)))
  (func (export "ci_v") (param i32) (result i32) (call_indirect (type $v) (local.get 0))))
"""

READER = """(module
  (type $i (func (param i32) (result i32)))
  (import "m" "tab" (table $t 8 funcref))
  (table $mine 8 funcref)
  (elem (table $t) (i32.const 6) func $neg)
  (func $neg (type $i) (i32.sub (i32.const 0) (local.get 0)))
  (func (export "copy_call") (param i32 i32) (result i32)
    (table.copy $mine $t (i32.const 0) (i32.const 0) (i32.const 8))
    (call_indirect $mine (type $i) (local.get 1) (local.get 0)))
  (func (export "get_null") (param i32) (result i32) (ref.is_null (table.get $t (local.get 0))))
  (func (export "ci") (param i32 i32) (result i32)
    (call_indirect $t (type $i) (local.get 1) (local.get 0))))
"""


def _compiled(wat: str) -> object:
    from wasmrt.runtime.module import build_module_core

    return build_module_core(wasmrt.Engine().ptr(), wasmrt.wat2wasm(wat)).compiled


def test_segments_write_placeholders_and_build_no_function() -> None:
    store = StoreCore()
    inst = instantiate(store, _compiled(OWNER), [])
    tab = inst.tables[0]
    assert tab.lazy_owner is inst
    assert [type(v).__name__ for v in tab.elements] == [
        "LazyFuncRef", "LazyFuncRef", "LazyFuncRef", "LazyFuncRef",
        "NoneType", "LazyFuncRef", "NoneType", "NoneType",
    ]  # fmt: skip
    assert all(list.__getitem__(inst.funcs, k) is None for k in range(len(inst.funcs)))
    # Placeholders are shared per module and per function index.
    assert tab.elements[0] is tab.elements[3] and isinstance(tab.elements[0], LazyFuncRef)
    other = instantiate(store, _compiled(OWNER), [])
    assert other.tables[0].elements[1].index == tab.elements[1].index == 1


def test_call_indirect_resolves_and_traps_exactly() -> None:
    store = StoreCore()
    inst = instantiate(store, _compiled(OWNER), [])
    ci, ci_v = inst.exports["ci"], inst.exports["ci_v"]
    assert store.call(ci, [0, 5]) == 6
    assert inst.tables[0].elements[0] is inst.funcs[0]  # resolved in place
    assert store.call(ci, [3, 5]) == 6 and inst.tables[0].elements[3] is inst.funcs[0]
    assert store.call(ci_v, [2]) == 7
    for args, code in (
        ([2, 1], TrapCode.BAD_SIGNATURE),  # a placeholder of the wrong type
        ([4, 1], TrapCode.INDIRECT_CALL_TO_NULL),
        ([8, 1], TrapCode.TABLE_OUT_OF_BOUNDS),
    ):
        with pytest.raises(Trap) as e:
            store.call(ci, args)
        assert e.value.trap_code == code
    with pytest.raises(Trap) as e:
        store.call(ci_v, [5])  # placeholder resolved, then the signature fails
    assert e.value.trap_code == TrapCode.BAD_SIGNATURE
    assert inst.tables[0].elements[5] is inst.funcs[1]


def test_readers_in_another_instance_see_real_funcrefs() -> None:
    store = StoreCore()
    owner = instantiate(store, _compiled(OWNER), [])
    tab = owner.tables[0]
    reader = instantiate(store, _compiled(READER), [tab])
    # The importer's own segment wrote a real function into the imported table.
    assert tab.elements[6] is reader.funcs[0]
    assert store.call(reader.exports["ci"], [1, 4]) == 8  # resolved via the owner
    assert store.call(reader.exports["copy_call"], [3, 4]) == 5
    mine = reader.tables[1].elements
    assert not any(isinstance(v, LazyFuncRef) for v in mine + tab.elements)
    assert mine[0] is owner.funcs[0] and mine[6] is reader.funcs[0]
    assert [store.call(reader.exports["get_null"], [i]) for i in range(8)] == [
        0, 0, 0, 0, 1, 0, 0, 1,
    ]  # fmt: skip
    assert tab.lazy_owner is None


def test_public_api_reads_resolve() -> None:
    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    inst = wasmrt.Instance(store, wasmrt.Module(engine, OWNER), [])
    table = inst.exports(store)["tab"]
    f = table.get(store, 1)
    assert isinstance(f, wasmrt.Func) and f(store, 21) == 42
    assert table.get(store, 4) is None or table.get(store, 4).value is None
    table.set(store, 4, f)
    assert inst.exports(store)["ci"](store, 4, 5) == 10
    assert table.grow(store, 2, None) == 8 and table.size(store) == 10
    assert inst.exports(store)["ci"](store, 3, 1) == 2
