"""Compiler unit tests: semantics corners, generated source, fuel, epochs, stack bounds, SIMD."""

from __future__ import annotations

import sys

import pytest
from wat_helpers import instance, wat_to_compiled

import wasmrt.compile.codegen as codegen
from wasmrt.compile.numeric import fmax, fmin, fnearest, i2f32
from wasmrt.errors import WasmtimeError
from wasmrt.trap import Trap, TrapCode
from wasmrt.vm import StoreCore, instantiate
from wasmrt.vm.values import f32_from_bits, f32_to_bits

FIB = """
(module
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func (export "count") (param i32) (result i32) (local i32 i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get 1) (local.get 0)))
        (local.set 2 (i32.add (local.get 2) (local.get 1)))
        (local.set 1 (i32.add (local.get 1) (i32.const 1)))
        (br $l)))
    (local.get 2))
  (func $rec (export "rec") (param i32) (result i32)
    (if (result i32) (local.get 0)
      (then (i32.add (i32.const 1) (call $rec (i32.sub (local.get 0) (i32.const 1)))))
      (else (i32.const 0))))
  (func $inf (export "inf") (call $inf))
)
"""


def test_fib_and_loop_source_is_tight() -> None:
    store, inst = instance(FIB)
    assert store.call(inst.exports["fib"], [20]) == 6765
    assert store.call(inst.exports["count"], [1000]) == 499500
    src = inst.compiled.source
    assert "def f0(l0):" in src
    # a counted loop is one Python while loop with a plain break, no dispatch variable
    count_src = inst.compiled.function_source(1)
    assert count_src.count("while True:") == 1
    assert "_br" not in count_src
    assert "fuel" not in src and "epoch" not in src


def test_stack_overflow_is_a_trap_and_store_survives() -> None:
    store, inst = instance(FIB)
    limit = sys.getrecursionlimit()
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["inf"], [])
    assert ei.value.trap_code is TrapCode.STACK_OVERFLOW
    assert sys.getrecursionlimit() == limit
    assert store.call(inst.exports["fib"], [10]) == 55
    assert store.call(inst.exports["rec"], [3000]) == 3000


def test_max_wasm_stack_bounds_depth() -> None:
    store, inst = instance(FIB, max_wasm_stack=16 * 1024)  # 256 frames
    assert store.call(inst.exports["rec"], [100]) == 100
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["rec"], [2000])
    assert ei.value.trap_code is TrapCode.STACK_OVERFLOW


FUEL = """
(module
  (func (export "add") (result i32) i32.const 1 i32.const 2 i32.add)
  (func (export "loop") (param i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0)))))
  (memory 1)
  (func (export "fill") (memory.fill (i32.const 0) (i32.const 1) (i32.const 100)))
)
"""


@pytest.mark.parametrize(
    ("name", "args", "cost"), [("add", [], 4), ("loop", [10], 81), ("fill", [], 105)]
)
def test_fuel_matches_wasmtime(name: str, args: list[int], cost: int) -> None:
    # costs measured with the wasmtime package (see the cost table in codegen)
    store, inst = instance(FUEL, fuel=True)
    store.set_fuel(1000)
    store.call(inst.exports[name], args)
    assert 1000 - store.get_fuel() == cost


def test_out_of_fuel_traps() -> None:
    store, inst = instance(FUEL, fuel=True)
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["add"], [])  # 0 fuel: traps at function entry
    assert ei.value.trap_code is TrapCode.OUT_OF_FUEL
    store.set_fuel(50)
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["loop"], [1000])  # checked at the loop header
    assert ei.value.trap_code is TrapCode.OUT_OF_FUEL
    assert store.get_fuel() == 0


def test_epoch_interruption() -> None:
    store, inst = instance(FUEL, epoch=True)
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["add"], [])  # default deadline 0
    assert ei.value.trap_code is TrapCode.INTERRUPT
    store.set_epoch_deadline(1)
    assert store.call(inst.exports["add"], []) == 3
    store.engine.epoch += 1
    with pytest.raises(Trap):
        store.call(inst.exports["loop"], [10])


def test_variants_are_cached_and_shared() -> None:
    cm = wat_to_compiled(FUEL)
    assert cm.variant(True, False) is cm.variant(True, False)
    assert cm.variant() is not cm.variant(True, True)
    assert "_S.fuel_counter" in cm.variant(True, False).source
    assert "_E.epoch" in cm.variant(False, True).source


def test_simd_compiles_and_raises_when_executed() -> None:
    wat = """(module (func (export "f") (result i32)
        (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))"""
    store, inst = instance(wat)
    with pytest.raises(WasmtimeError, match="SIMD instruction .* is not supported yet"):
        store.call(inst.exports["f"], [])


def test_convert_i64_to_f32_has_no_double_rounding() -> None:
    n = (1 << 63) + (1 << 39) + 1  # just above a binary32 tie; via double it would round down
    assert i2f32(n) == float((1 << 63) + (1 << 40))
    assert i2f32(-n) == -float((1 << 63) + (1 << 40))
    assert i2f32((1 << 63) + (1 << 39)) == float(1 << 63)  # exact tie -> even
    assert i2f32(16777217) == 16777216.0


def test_float_helpers_corner_cases() -> None:
    assert str(fmin(0.0, -0.0)) == "-0.0" and str(fmax(-0.0, 0.0)) == "0.0"
    assert fnearest(2.5) == 2.0 and str(fnearest(-0.4)) == "-0.0"
    snan = f32_from_bits(0x7FA00001)
    assert f32_to_bits(snan) == 0x7FA00001
    assert f32_to_bits(-snan) == 0xFFA00001


def test_deep_nesting_falls_back_to_flat_form() -> None:
    depth = 30
    wat = '(module (func (export "f") (param i32) (result i32) (local i32) (block $out '
    wat += "".join(f"(loop $l{i} " for i in range(depth))
    wat += "(local.set 1 (i32.add (local.get 1) (i32.const 1)))"
    wat += "(br_if $out (i32.ge_u (local.get 1) (i32.const 50)))"
    wat += "(br_table " + " ".join(f"$l{i}" for i in range(depth)) + " $l0 (local.get 0))"
    wat += ")" * depth + ") (local.get 1))"
    wat += ' (func (export "g") (param i32) (result i32) (local i32) (block $out '
    wat += "".join(f"(loop $m{i} " for i in range(depth))
    wat += "(local.set 1 (i32.add (local.get 1) (i32.const 1)))"
    wat += f"(br_if $out (i32.ge_u (local.get 1) (local.get 0))) (br $m{depth - 1})"
    wat += ")" * depth + ") (local.get 1)))"
    store, inst = instance(wat)
    assert "_pc" in inst.compiled.function_source(0)  # 30 targeted loops: flat form
    assert "_pc" not in inst.compiled.function_source(1)  # one targeted loop: structured
    for k in (0, 7, 29, 100):
        assert store.call(inst.exports["f"], [k]) == 50
    assert store.call(inst.exports["g"], [5]) == 5


def test_flat_form_matches_structured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codegen, "FORCE_FLAT", True)
    store, inst = instance(FIB)
    assert "_pc" in inst.compiled.source
    assert store.call(inst.exports["fib"], [15]) == 610
    assert store.call(inst.exports["count"], [100]) == 4950


def test_traps_have_codes() -> None:
    wat = """(module (memory 1) (table 2 funcref)
      (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
      (func (export "load") (param i32) (result i32) (i32.load offset=4 (local.get 0)))
      (func (export "ci") (param i32) (call_indirect (local.get 0)))
      (func (export "trunc") (param f64) (result i32) (i32.trunc_f64_s (local.get 0))))"""
    store, inst = instance(wat)
    cases = [
        ("div", [1, 0], TrapCode.INTEGER_DIVISION_BY_ZERO),
        ("div", [0x80000000, 0xFFFFFFFF], TrapCode.INTEGER_OVERFLOW),
        ("load", [65532], TrapCode.MEMORY_OUT_OF_BOUNDS),
        ("ci", [5], TrapCode.TABLE_OUT_OF_BOUNDS),
        ("ci", [1], TrapCode.INDIRECT_CALL_TO_NULL),
        ("trunc", [float("nan")], TrapCode.BAD_CONVERSION_TO_INTEGER),
        ("trunc", [3e9], TrapCode.INTEGER_OVERFLOW),
    ]
    for name, args, code in cases:
        with pytest.raises(Trap) as ei:
            store.call(inst.exports[name], args)
        assert ei.value.trap_code is code, name
    assert store.call(inst.exports["load"], [65528]) == 0


def test_compile_asks_try_alloc_for_code() -> None:
    from wasmrt.alloc import AllocKind, install_hook

    kinds: list[AllocKind] = []
    with install_hook(lambda size, kind, absorbing: kinds.append(kind)):
        cm = wat_to_compiled(FUEL)
    assert AllocKind.CODE in kinds
    store = StoreCore()
    instantiate(store, cm, [])
