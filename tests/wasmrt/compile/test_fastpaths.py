"""Fast paths of the generated code give the general path's results at the edges:
signed comparisons (names, constants on either side, computed operands), memory
addresses still pending as unmasked arithmetic (wrap-around, exact bounds, traps)
and add/sub wrap-around."""

from __future__ import annotations

import pytest
from wat_helpers import instance

from wasmrt.trap import Trap, TrapCode

RELS = {"lt": "<", "gt": ">", "le": "<=", "ge": ">="}


def _edges(w: int) -> list[int]:
    h = 1 << (w - 1)
    m = (1 << w) - 1
    return [0, 1, 2, 100, h - 2, h - 1, h, h + 1, m - 100, m - 1, m]


def _signed(v: int, w: int) -> int:
    return v - (1 << w) if v >> (w - 1) else v


def _const(v: int, w: int) -> str:
    return f"(i{w}.const {_signed(v, w)})"


def _model(rel: str, a: int, b: int, w: int) -> int:
    x, y = _signed(a, w), _signed(b, w)
    return int({"lt": x < y, "gt": x > y, "le": x <= y, "ge": x >= y}[rel])


@pytest.mark.parametrize("w", [32, 64])
def test_signed_comparisons_match_the_model(w: int) -> None:
    edges = _edges(w)
    t = f"i{w}"
    funcs = []
    for rel in RELS:
        op = f"{t}.{rel}_s"
        # both names; both computed (add 0 keeps the value: not a plain name)
        funcs.append(
            f'(func (export "{rel}_nn") (param {t} {t}) (result i32)'
            f" ({op} (local.get 0) (local.get 1)))"
        )
        funcs.append(
            f'(func (export "{rel}_ee") (param {t} {t}) (result i32)'
            f" ({op} ({t}.add (local.get 0) ({t}.const 0)) ({t}.xor (local.get 1) ({t}.const 0))))"
        )
        for k, c in enumerate(edges):
            funcs.append(
                f'(func (export "{rel}_nc{k}") (param {t}) (result i32)'
                f" ({op} (local.get 0) {_const(c, w)}))"
            )
            funcs.append(
                f'(func (export "{rel}_cn{k}") (param {t}) (result i32)'
                f" ({op} {_const(c, w)} (local.get 0)))"
            )
            funcs.append(
                f'(func (export "{rel}_ec{k}") (param {t}) (result i32)'
                f" ({op} ({t}.sub (local.get 0) ({t}.const 0)) {_const(c, w)}))"
            )
            # as a branch condition and a select condition, not only a value
            funcs.append(
                f'(func (export "{rel}_br{k}") (param {t}) (result i32)'
                f" (block (br_if 0 ({op} (local.get 0) {_const(c, w)})) (return (i32.const 0)))"
                " (i32.const 1))"
            )
            funcs.append(
                f'(func (export "{rel}_sel{k}") (param {t}) (result i32)'
                f" (select (i32.const 1) (i32.const 0) ({op} {_const(c, w)} (local.get 0))))"
            )
    store, inst = instance("(module " + "\n".join(funcs) + ")")
    ex = inst.exports
    for rel in RELS:
        for a in edges:
            for b in edges:
                want = _model(rel, a, b, w)
                assert store.call(ex[f"{rel}_nn"], [a, b]) == want, (rel, a, b)
                assert store.call(ex[f"{rel}_ee"], [a, b]) == want, (rel, a, b)
            for k, c in enumerate(edges):
                assert store.call(ex[f"{rel}_nc{k}"], [a]) == _model(rel, a, c, w), (rel, a, c)
                assert store.call(ex[f"{rel}_cn{k}"], [a]) == _model(rel, c, a, w), (rel, c, a)
                assert store.call(ex[f"{rel}_ec{k}"], [a]) == _model(rel, a, c, w), (rel, a, c)
                assert store.call(ex[f"{rel}_br{k}"], [a]) == _model(rel, a, c, w), (rel, a, c)
                assert store.call(ex[f"{rel}_sel{k}"], [a]) == _model(rel, c, a, w), (rel, c, a)


ADDR = """
(module
  (memory 1)
  (data (i32.const 0) "\\01\\02\\03\\04\\05\\06\\07\\08")
  (data (i32.const 65528) "\\f1\\f2\\f3\\f4\\f5\\f6\\f7\\f8")
  ;; base + k: never negative before the wrap
  (func (export "add_load") (param i32 i32) (result i32)
    (i32.load (i32.add (local.get 0) (local.get 1))))
  (func (export "add_load_off") (param i32 i32) (result i32)
    (i32.load offset=4 (i32.add (local.get 0) (local.get 1))))
  ;; base - k (also how clang writes base + negative constant): may go negative
  (func (export "sub_load") (param i32 i32) (result i32)
    (i32.load (i32.sub (local.get 0) (local.get 1))))
  (func (export "sub_load_off") (param i32 i32) (result i32)
    (i32.load offset=4 (i32.sub (local.get 0) (local.get 1))))
  (func (export "minus8_load8") (param i32) (result i32)
    (i32.load8_u (i32.add (local.get 0) (i32.const -8))))
  (func (export "shl_load64") (param i32) (result i64)
    (i64.load (i32.add (i32.shl (local.get 0) (i32.const 3)) (i32.const 8))))
  (func (export "mul_store") (param i32 i32 i32)
    (i32.store offset=2 (i32.mul (local.get 0) (local.get 1)) (local.get 2)))
  (func (export "sub_store8") (param i32 i32 i32)
    (i32.store8 (i32.sub (local.get 0) (local.get 1)) (local.get 2)))
  (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
)
"""

M32 = (1 << 32) - 1
SIZE = 65536


def _oob(store: object, f: object, args: list[int]) -> None:
    with pytest.raises(Trap) as ei:
        store.call(f, args)  # type: ignore[attr-defined]
    assert ei.value.trap_code is TrapCode.MEMORY_OUT_OF_BOUNDS


def test_unmasked_addresses_wrap_and_trap_like_masked_ones() -> None:
    store, inst = instance(ADDR)
    ex = inst.exports
    first, last = 0x04030201, 0xF8F7F6F5
    # in bounds without wrapping, up to the exact last word
    assert store.call(ex["add_load"], [0, 0]) == first
    assert store.call(ex["add_load"], [SIZE - 8, 4]) == last
    _oob(store, ex["add_load"], [SIZE - 8, 5])
    # the sum wraps past 2**32 back into memory
    assert store.call(ex["add_load"], [M32, 1]) == first
    assert store.call(ex["add_load"], [M32 - 3, SIZE]) == last
    _oob(store, ex["add_load"], [M32, M32])  # wraps to 2**32 - 2
    # offsets are added after the wrap, without wrapping themselves
    assert store.call(ex["add_load_off"], [M32 - 3, 4]) == 0x08070605
    _oob(store, ex["add_load_off"], [M32 - 3, 0])  # 2**32 - 4 + 4: the offset does not wrap
    assert store.call(ex["add_load_off"], [SIZE - 12, 4]) == last
    _oob(store, ex["add_load_off"], [SIZE - 12, 5])
    _oob(store, ex["add_load_off"], [M32, 0])  # 2**32 - 1 + 4 does not wrap
    # a negative difference is a huge address: out of bounds, even with an offset
    assert store.call(ex["sub_load"], [8, 8]) == first
    _oob(store, ex["sub_load"], [0, 1])
    _oob(store, ex["sub_load_off"], [0, 4])  # (2**32 - 4) + 4, not 0
    assert store.call(ex["sub_load_off"], [8, 8]) == 0x08070605
    assert store.call(ex["sub_load"], [SIZE - 4, 0]) == last
    _oob(store, ex["sub_load"], [SIZE - 3, 0])
    # a difference that wraps the other way lands back in memory
    assert store.call(ex["sub_load"], [0, (1 << 32) - (SIZE - 4)]) == last
    assert store.call(ex["minus8_load8"], [8]) == 1
    assert store.call(ex["minus8_load8"], [SIZE + 7]) == 0xF8
    _oob(store, ex["minus8_load8"], [7])
    _oob(store, ex["minus8_load8"], [SIZE + 8])
    # shifted index + base, at the exact end and one past
    assert store.call(ex["shl_load64"], [(SIZE - 16) // 8]) == 0xF8F7F6F5F4F3F2F1
    _oob(store, ex["shl_load64"], [(SIZE - 8) // 8])
    assert store.call(ex["shl_load64"], [(1 << 29) - 1]) == 0x0807060504030201  # wraps to 0
    # stores: the same addresses, and a trapping store writes nothing
    store.call(ex["mul_store"], [(SIZE - 6) // 2, 2, 0xAABBCCDD])
    assert [store.call(ex["load8"], [SIZE - 4 + i]) for i in range(4)] == [0xDD, 0xCC, 0xBB, 0xAA]
    _oob(store, ex["mul_store"], [(SIZE - 4) // 2, 2, 0])
    store.call(ex["mul_store"], [1 << 31, 2, 0x11223344])  # wraps to 0, + 2
    assert store.call(ex["add_load"], [0, 0]) == 0x33440201
    store.call(ex["sub_store8"], [5, 5, 0x99])
    assert store.call(ex["load8"], [0]) == 0x99
    _oob(store, ex["sub_store8"], [5, 6, 0x77])
    store.call(ex["sub_store8"], [5, 6 - SIZE, 0x77])  # 5 - (6 - 65536) = 65535
    assert store.call(ex["load8"], [SIZE - 1]) == 0x77


def test_memory_size_bound_follows_growth() -> None:
    store, inst = instance(
        """(module (memory 1 3)
          (func (export "grow") (result i32) (memory.grow (i32.const 1)))
          (func (export "ld") (param i32 i32) (result i32)
            (i32.load8_u (i32.add (local.get 0) (local.get 1)))))"""
    )
    ex = inst.exports
    _oob(store, ex["ld"], [SIZE, 0])
    assert store.call(ex["grow"], []) == 1
    assert store.call(ex["ld"], [SIZE, SIZE - 1]) == 0
    _oob(store, ex["ld"], [SIZE, SIZE])
    assert store.call(ex["ld"], [M32, 1]) == 0


@pytest.mark.parametrize("w", [32, 64])
def test_add_sub_wrap_at_the_edges(w: int) -> None:
    t = f"i{w}"
    m = (1 << w) - 1
    store, inst = instance(
        f"""(module
          (func (export "add") (param {t} {t}) (result {t}) ({t}.add (local.get 0) (local.get 1)))
          (func (export "sub") (param {t} {t}) (result {t}) ({t}.sub (local.get 0) (local.get 1)))
          (func (export "dec") (param {t}) (result {t}) ({t}.add (local.get 0) ({t}.const -1)))
          (func (export "inc") (param {t}) (result {t}) ({t}.sub (local.get 0) ({t}.const -1))))"""
    )
    ex = inst.exports
    for a in _edges(w):
        assert store.call(ex["dec"], [a]) == (a - 1) & m
        assert store.call(ex["inc"], [a]) == (a + 1) & m
        for b in _edges(w):
            assert store.call(ex["add"], [a, b]) == (a + b) & m
            assert store.call(ex["sub"], [a, b]) == (a - b) & m


def _divrem_model(name: str, a: int, b: int, w: int) -> int | TrapCode:
    m = (1 << w) - 1
    if b == 0:
        return TrapCode.INTEGER_DIVISION_BY_ZERO
    if name.endswith("_u"):
        return (a // b if name == "div_u" else a % b) & m
    x, y = _signed(a, w), _signed(b, w)
    q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
    if name == "div_s":
        return TrapCode.INTEGER_OVERFLOW if q > (1 << (w - 1)) - 1 else q & m
    return (x - q * y) & m


@pytest.mark.parametrize("w", [32, 64])
def test_division_by_constants_matches_the_model(w: int) -> None:
    t = f"i{w}"
    h = 1 << (w - 1)
    divisors = [0, 1, 2, 3, 7, 8, 10, 255, 256, h - 1, h, h + 1, (1 << w) - 2, (1 << w) - 1]
    funcs = [
        f'(func (export "{name}{k}") (param {t}) (result {t})'
        f" ({t}.{name} (local.get 0) {_const(c, w)}))"
        # computed dividends too (the signed forms read theirs twice)
        + f'(func (export "{name}{k}e") (param {t}) (result {t})'
        f" ({t}.{name} ({t}.xor (local.get 0) ({t}.const 0)) {_const(c, w)}))"
        for name in ("div_u", "rem_u", "div_s", "rem_s")
        for k, c in enumerate(divisors)
    ]
    store, inst = instance("(module " + "\n".join(funcs) + ")")
    for name in ("div_u", "rem_u", "div_s", "rem_s"):
        for k, c in enumerate(divisors):
            for a in _edges(w) + [12345, (1 << w) - 12345]:
                want = _divrem_model(name, a, c, w)
                for f in (inst.exports[f"{name}{k}"], inst.exports[f"{name}{k}e"]):
                    if isinstance(want, TrapCode):
                        with pytest.raises(Trap) as ei:
                            store.call(f, [a])
                        assert ei.value.trap_code is want
                    else:
                        assert store.call(f, [a]) == want, (name, a, c)


def test_bounds_follow_growth_within_a_function_and_across_calls() -> None:
    """The per-size bounds (``_ms<n>``) are recomputed wherever the size may change."""
    store, inst = instance(
        """(module (memory 1 4)
          (func $grow (result i32) (memory.grow (i32.const 1)))
          ;; load the last n bytes of page p+1 after growing here / in a callee
          (func (export "here") (param i32) (result i64)
            (drop (memory.grow (i32.const 1)))
            (i64.add (i64.load (i32.sub (local.get 0) (i32.const 8)))
                     (i64.extend_i32_u (i32.load8_u (i32.sub (local.get 0) (i32.const 1))))))
          (func (export "callee") (param i32) (result i32)
            (i32.store16 (i32.const 0) (i32.const 7))
            (drop (call $grow))
            (i32.load16_u (i32.sub (local.get 0) (i32.const 2))))
          (func (export "last") (param i32 i32) (result i32)
            (i32.load8_u (i32.add (local.get 0) (local.get 1)))))"""
    )
    ex = inst.exports
    _oob(store, ex["last"], [SIZE, 0])
    assert store.call(ex["here"], [2 * SIZE]) == 0  # now 2 pages: the last 8 bytes
    _oob(store, ex["last"], [2 * SIZE, 0])
    assert store.call(ex["callee"], [3 * SIZE]) == 0  # grown to 3 pages by the callee
    assert store.call(ex["last"], [3 * SIZE - 1, 0]) == 0
    _oob(store, ex["last"], [3 * SIZE - 1, 1])
    _oob(store, ex["here"], [5 * SIZE])  # grown to 4 pages: 5 pages - 8 is past them
