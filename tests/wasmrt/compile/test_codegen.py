"""Compiler unit tests: semantics corners, generated source, fuel, epochs, stack bounds,
SIMD wiring (values, memory bounds, fuel, reloaded variants) and trap backtraces."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from wat_helpers import instance, wat_to_compiled

import wasmrt.compile.codegen as codegen
from wasmrt.compile.numeric import fmax, fmin, fnearest, i2f32
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


SIMD = """
(module
  (memory 1)
  (global $g (mut v128) (v128.const i64x2 7 8))
  (func $swap (param v128 v128) (result v128 v128) (local.get 1) (local.get 0))
  (func (export "mix") (param $a v128) (param $b v128) (param $c i32) (result v128) (local $t v128)
    (local.set $t (i32x4.add (local.get $a) (local.get $b)))
    (call $swap (local.get $t) (global.get $g))
    (select (v128.const i32x4 0 0 0 0) (i32.const 1))
    (i32x4.replace_lane 3 (i32.const 99))
    (select (local.get $c)))
  (func (export "block") (param v128) (result v128 i32)
    (local.get 0)
    (block (param v128) (result v128 i32)
      (i8x16.shuffle 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 (v128.const i64x2 0 0))
      (v128.any_true (v128.const i32x4 0 0 0 1))))
  (func (export "local0") (result v128) (local v128) (local.get 0))
  (func (export "set_g") (param v128) (global.set $g (local.get 0)))
  (func (export "get_g") (result v128) (global.get $g))
  (func (export "load") (param i32) (result v128) (v128.load offset=16 (local.get 0)))
  (func (export "load_lane") (param i32 v128) (result v128)
    (v128.load32_lane offset=4 1 (local.get 0) (local.get 1)))
  (func (export "store") (param i32 v128) (v128.store offset=1 (local.get 0) (local.get 1)))
  (func (export "store_lane") (param i32 v128) (v128.store64_lane 1 (local.get 0) (local.get 1)))
  (func (export "i32at") (param i32) (result i32) (i32.load (local.get 0)))
)
"""


def _v(*lanes: int) -> int:
    return sum((x & 0xFFFFFFFF) << (32 * i) for i, x in enumerate(lanes))


def test_simd_values_flow_through_locals_globals_calls_select_and_blocks() -> None:
    store, inst = instance(SIMD)
    mix = inst.exports["mix"]
    a, b = _v(1, 2, 3, 4), _v(10, 20, 30, 0xFFFFFFFF)
    g = 7 | 8 << 64
    assert store.call(mix, [a, b, 1]) == g  # $swap put the global first
    assert store.call(mix, [a, b, 0]) == _v(11, 22, 33, 99)
    rev = int.from_bytes(bytes(range(16))[::-1], "little")
    assert store.call(inst.exports["block"], [int.from_bytes(bytes(range(16)), "little")]) == (
        rev,
        1,
    )
    assert store.call(inst.exports["local0"], []) == 0
    store.call(inst.exports["set_g"], [(1 << 128) - 1])
    assert store.call(inst.exports["get_g"], []) == (1 << 128) - 1
    src = inst.compiled.source
    # inline expressions (SIMD_INLINE), not calls of their SIMD_OPS functions
    assert "_V_i32x4_add" not in src and "_V_i8x16_shuffle" not in src
    assert "_V_v128_const" not in src  # folded into an int literal at compile time


def test_simd_memory_bounds_are_exact() -> None:
    store, inst = instance(SIMD)
    load, store_ = inst.exports["load"], inst.exports["store"]
    val = int.from_bytes(bytes(range(1, 17)), "little")
    store.call(store_, [65535 - 16, val])  # bytes 65520..65535: the last 16
    assert store.call(load, [65536 - 32]) == val
    for addr in (65536 - 31, 0xFFFFFFF0, 0xFFFFFFFF):
        with pytest.raises(Trap) as ei:
            store.call(load, [addr])
        assert ei.value.trap_code is TrapCode.MEMORY_OUT_OF_BOUNDS
    with pytest.raises(Trap):
        store.call(store_, [65535 - 15, 0])
    assert store.call(load, [65536 - 32]) == val  # the trapping store wrote nothing
    lane = inst.exports["load_lane"]
    assert store.call(lane, [65528, 0]) == 0x100F0E0D << 32  # bytes 65532..65535 into lane 1
    with pytest.raises(Trap):
        store.call(lane, [65529, 0])
    sl = inst.exports["store_lane"]
    store.call(sl, [65528, (1 << 64) * 0x1122334455667788])
    assert store.call(inst.exports["i32at"], [65528]) == 0x55667788
    with pytest.raises(Trap):
        store.call(sl, [65529, 0])


def test_simd_instructions_cost_one_fuel_each() -> None:
    wat = """(module (func (export "f") (result i32)
        (i32x4.extract_lane 2 (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 5 6 7 8)))))"""
    store, inst = instance(wat, fuel=True)
    store.set_fuel(100)
    assert store.call(inst.exports["f"], []) == 10
    assert 100 - store.get_fuel() == 5  # 2 consts + add + extract_lane + final end


def test_simd_variant_loaded_from_source_runs() -> None:
    from wasmrt.compile import CompiledModule

    cm = wat_to_compiled(SIMD)
    again = CompiledModule.from_variants(cm.module, cm.built_variants())
    store = StoreCore()
    inst = instantiate(store, again, [])
    assert store.call(inst.exports["mix"], [_v(1, 1, 1, 1), _v(1, 2, 3, 4), 0]) == _v(2, 3, 4, 99)


TRAPPY = """
(module $mod
  (import "host" "cb" (func $cb (param i32)))
  (func $inner (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
  (func $middle (param i32) (result i32) (call $inner (local.get 0)))
  (func (export "outer") (param i32) (result i32) (i32.add (i32.const 1) (call $middle (local.get 0))))
  (func (export "via_host") (call $cb (i32.const 0)))
  (func (export "reenter") (param i32) (drop (call $middle (local.get 0))))
)
"""


def _wat_bytes(wat: str) -> bytes:
    from support.testsuite import wasm_tools

    out = subprocess.run(
        [wasm_tools(), "parse", "-"], input=wat.encode(), capture_output=True, check=True
    )
    return out.stdout


def _oracle_body_offsets(data: bytes) -> list[int]:
    """Function body offsets read straight from wasm-tools' binary (independent walk)."""
    out = subprocess.run(
        [_wasm_tools(), "objdump", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
    for line in out.splitlines():  # "  code   |  0x19 - 0x22 | 9 bytes | 2 count"
        if line.split("|")[0].strip() == "code":
            start = int(line.split("|")[1].split("-")[0], 16)
            break
    else:
        raise AssertionError(out)
    pos = start
    count, pos = _uleb(data, pos)
    offs = []
    for _ in range(count):
        size, pos = _uleb(data, pos)
        offs.append(pos)
        pos += size
    return offs


def _wasm_tools() -> str:
    from support.testsuite import wasm_tools

    return wasm_tools()


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, pos


def test_trap_frames_map_back_to_wasm_functions() -> None:
    from wasmrt.binary import decode_module
    from wasmrt.compile import compile_module
    from wasmrt.ir import FuncType
    from wasmrt.validate import validate_module
    from wasmrt.vm import HostFunction
    from wasmrt.vm.backtrace import attach_frames, frames_from_traceback

    data = _wat_bytes(TRAPPY)
    m = decode_module(data)
    validate_module(m)
    cm = compile_module(m)
    store = StoreCore()
    box: list = []

    def cb(caller: object, x: int) -> None:
        store.call(box[0].exports["reenter"], [x])

    host = HostFunction(store, FuncType(("i32",), ()), cb)
    inst = instantiate(store, cm, [host])
    box.append(inst)
    offs = _oracle_body_offsets(data)
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["outer"], [0])
    frames = frames_from_traceback(ei.value.__traceback__)
    assert [f.func_index for f in frames] == [1, 2, 3]  # innermost first; import is 0
    assert [f.func_name for f in frames] == ["inner", "middle", None]
    assert {f.module_name for f in frames} == {"mod"}
    # Per instruction: the body's offset plus the stopped instruction's offset in the body,
    # i.e. wasm-tools' own bytes there are i32.div_u in inner and the calls outside.
    assert [f.module_offset - f.func_offset for f in frames] == [offs[0], offs[1], offs[2]]
    assert [data[f.module_offset] for f in frames] == [0x6E, 0x10, 0x10]
    trap = attach_frames(ei.value)
    assert trap.frames == frames
    assert f"0x{frames[0].module_offset:x} - mod!inner" in trap.message
    assert trap.message.endswith("wasm trap: integer divide by zero\n")  # as wasmtime-py
    # through a host function that re-enters wasm: every wasm frame, the host's skipped
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["via_host"], [])
    assert [f.func_index for f in frames_from_traceback(ei.value.__traceback__)] == [1, 2, 5, 4]


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


def test_flat_form_dispatches_many_segments_and_still_jumps_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 40 loops, each counting its own local down: jumps go backwards to every segment.
    n = 40
    wat = '(module (func (export "f") (param i32) (result i32) (local i32 i32)'
    for i in range(n):
        wat += f" (local.set 2 (i32.add (local.get 0) (i32.const {i % 3})))"
        wat += f" (loop $l{i} (local.set 1 (i32.add (local.get 1) (i32.const {i + 1})))"
        wat += " (local.set 2 (i32.sub (local.get 2) (i32.const 1)))"
        wat += f" (br_if $l{i} (i32.gt_s (local.get 2) (i32.const 0))))"
    wat += " (local.get 1)))"
    expected = {k: sum((i + 1) * max(1, k + i % 3) for i in range(n)) for k in (0, 1, 5)}
    store, inst = instance(wat)
    assert "_pc" not in inst.compiled.function_source(0)
    monkeypatch.setattr(codegen, "FORCE_FLAT", True)
    flat_store, flat = instance(wat)
    src = flat.compiled.function_source(0)
    assert "if _pc < " in src  # segments behind a search tree (compile/dispatch.py)
    assert len(re.findall(r"if _pc == (\d+):", src)) >= 40
    for k, want in expected.items():
        assert store.call(inst.exports["f"], [k]) == want
        assert flat_store.call(flat.exports["f"], [k]) == want


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
    cases: list[tuple[str, list[object], TrapCode]] = [
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


def test_first_call_asks_try_alloc_for_code() -> None:
    from wasmrt.alloc import AllocKind, install_hook

    kinds: list[AllocKind] = []
    with install_hook(lambda size, kind, absorbing: kinds.append(kind)):
        cm = wat_to_compiled(FUEL)
        store = StoreCore()
        inst = instantiate(store, cm, [])
        assert AllocKind.CODE not in kinds  # functions compile on their first call
        assert store.call(inst.exports["add"], []) == 3
    assert kinds.count(AllocKind.CODE) == 1
