"""SIMD ops the code generator emits inline (``SIMD_INLINE``) compute exactly what their
``SIMD_OPS`` function computes (itself checked against Wasmtime in test_simd.py), and
generated code using them (names, literals, non-constant shift counts, v128 loads and
stores at the memory's edge) agrees with the function calls."""

from __future__ import annotations

import random

import pytest
from wat_helpers import instance

from wasmrt.compile.numeric import RUNTIME_NAMESPACE
from wasmrt.compile.simd import SIMD_INLINE, SIMD_OPS
from wasmrt.opcodes import BY_NAME
from wasmrt.trap import Trap, TrapCode

M128 = (1 << 128) - 1


def _vectors(rng: random.Random) -> list[int]:
    fixed = [0, M128, 1, 1 << 127, M128 >> 1]
    for w in (8, 16, 32, 64):
        rep = sum(1 << (w * i) for i in range(128 // w))
        for lane in (0, 1, (1 << (w - 1)) - 1, 1 << (w - 1), (1 << w) - 1):
            fixed.append(lane * rep)
    return fixed + [rng.getrandbits(128) for _ in range(40)]


def _scalars(w: int, rng: random.Random) -> list[int]:
    m = (1 << w) - 1
    return [0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 127, 128, 255, m, m - 1, rng.getrandbits(w)]


@pytest.mark.parametrize("name", sorted(SIMD_INLINE))
def test_inline_form_equals_the_function(name: str) -> None:
    rng = random.Random(name)
    multi, build = SIMD_INLINE[name]
    fn = SIMD_OPS[name]
    info = BY_NAME[name]
    assert info.sig is not None
    params = info.sig[0]
    lanes: list[int | bytes | None] = [None]
    if info.imm == "lane":
        lanes = list(range(int(name.split(".")[0].split("x")[1])))
    elif info.imm == "shuffle":  # identity, edges, random patterns of 16 indices < 32
        lanes = [bytes(range(16)), bytes(range(16, 32)), bytes([31] * 16), bytes(16)]
        lanes += [bytes(rng.randrange(32) for _ in range(16)) for _ in range(6)]
    checked = 0
    for lane in lanes:
        for _ in range(60):
            args = [
                rng.choice(_vectors(rng))
                if t == "v128"
                else rng.choice(_scalars(32 if t == "i32" else 64, rng))
                for t in params
            ]
            imm = [] if lane is None else [lane]
            # operands as literals, and as names (a name may be read more than once)
            for texts, env in (
                ([str(a) for a in args], {}),
                ([f"x{i}" for i in range(len(args))], {f"x{i}": a for i, a in enumerate(args)}),
            ):
                text = build(*texts, *imm)
                if text is None:
                    assert any(not t.isdigit() for t in texts)  # only a variable count declines
                    continue
                got = eval(text, dict(RUNTIME_NAMESPACE), env)  # noqa: S307
                assert got == fn(*args, *imm), (name, args, imm, text)
                checked += 1
    assert checked >= 60
    assert all(p < len(params) for p in multi)


SIMD_WAT = """
(module
  (memory 1)
  (func (export "shl_var") (param v128 i32) (result v128) (i16x8.shl (local.get 0) (local.get 1)))
  (func (export "shl_k") (param v128) (result v128) (i16x8.shl (local.get 0) (i32.const 19)))
  (func (export "shr_k") (param v128) (result v128) (i32x4.shr_u (local.get 0) (i32.const 33)))
  (func (export "add_nested") (param v128 v128) (result v128)
    (i8x16.add (i8x16.sub (local.get 0) (local.get 1)) (v128.xor (local.get 1) (v128.const i64x2 -1 5))))
  (func (export "lane_s") (param v128) (result i32)
    (i32.add (i8x16.extract_lane_s 15 (local.get 0)) (i16x8.extract_lane_s 0 (local.get 0))))
  (func (export "replace") (param v128 i64) (result v128) (i64x2.replace_lane 1 (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result v128) (v128.load offset=16 (local.get 0)))
  (func (export "store") (param i32 v128) (v128.store (i32.sub (local.get 0) (i32.const 16)) (local.get 1)))
)
"""


def test_generated_inline_simd_agrees_with_the_functions() -> None:
    store, inst = instance(SIMD_WAT)
    ex = inst.exports
    rng = random.Random(16)
    S = SIMD_OPS
    for a in _vectors(rng):
        b = rng.getrandbits(128)
        for n in (0, 1, 15, 16, 17, 1 << 31, 0xFFFFFFFF):
            assert store.call(ex["shl_var"], [a, n]) == S["i16x8.shl"](a, n)
        assert store.call(ex["shl_k"], [a]) == S["i16x8.shl"](a, 19)
        assert store.call(ex["shr_k"], [a]) == S["i32x4.shr_u"](a, 33)
        k = S["v128.const"]((5 << 64) | ((1 << 64) - 1))
        want = S["i8x16.add"](S["i8x16.sub"](a, b), S["v128.xor"](b, k))
        assert store.call(ex["add_nested"], [a, b]) == want
        lane_s = (S["i8x16.extract_lane_s"](a, 15) + S["i16x8.extract_lane_s"](a, 0)) & 0xFFFFFFFF
        assert store.call(ex["lane_s"], [a]) == lane_s
        assert store.call(ex["replace"], [a, (1 << 64) - 1]) == S["i64x2.replace_lane"](
            a, (1 << 64) - 1, 1
        )
    v = int.from_bytes(bytes(range(1, 17)), "little")
    store.call(ex["store"], [65536, v])  # the last 16 bytes
    assert store.call(ex["load"], [65536 - 32]) == v
    with pytest.raises(Trap) as ei:
        store.call(ex["load"], [65536 - 31])
    assert ei.value.trap_code is TrapCode.MEMORY_OUT_OF_BOUNDS
    with pytest.raises(Trap) as ei:
        store.call(ex["store"], [65537, v])
    assert ei.value.trap_code is TrapCode.MEMORY_OUT_OF_BOUNDS
    assert store.call(ex["load"], [65536 - 32]) == v  # the trapping store wrote nothing
    src = inst.compiled.source
    assert "_V_i16x8_shl(" in src  # a variable shift count calls the function
    assert "_V_i8x16_add" not in src and "_V_v128_load" not in src
