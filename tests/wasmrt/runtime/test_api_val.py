"""``Val``: constructors, wrapping, accessors, equality and conversion rules (1.8)."""

from __future__ import annotations

import math
import operator
import struct

import pytest
from wasmrt_api_support import same_outcome

import wasmrt
from wasmrt.runtime.func import from_core, to_core
from wasmrt.runtime.val import f32_round

CASES = {
    "i32_wrap": lambda w: (
        w.Val.i32(0xFFFFFFFF).as_i32(),
        w.Val.i32(2**35).value,
        w.Val.i32(2**31).value,
    ),
    "i64_wrap": lambda w: (
        w.Val.i64(2**64 - 1).value,
        w.Val.i64(2**63).value,
        w.Val.i64(-5).as_i64(),
    ),
    "i32_bool": lambda w: w.Val.i32(True).value,
    "i32_str": lambda w: w.Val.i32("1"),
    "i32_float": lambda w: w.Val.i32(1.0),
    "f32_round": lambda w: w.Val.f32(0.1).value,
    "f32_int": lambda w: w.Val.f32(1),
    "f32_huge": lambda w: w.Val.f32(1e300).value,
    "f64_int": lambda w: w.Val.f64(1),
    "f64": lambda w: w.Val.f64(0.1).as_f64(),
    "as_mismatch": lambda w: (
        w.Val.i32(1).as_i64(),
        w.Val.f64(1.0).as_f32(),
        w.Val.i64(1).as_externref(),
    ),
    "externref": lambda w: (w.Val.externref("x").value, w.Val.externref(None).as_externref()),
    "ref_null_bad": lambda w: w.Val.ref_null(w.ValType.i32()),
    "ref_null": lambda w: (
        operator.eq(w.Val.ref_null(w.ValType.externref()), None),
        str(w.Val.ref_null(w.ValType.funcref()).type),
    ),
    "types": lambda w: [
        str(v.type)
        for v in (
            w.Val.i32(1),
            w.Val.i64(1),
            w.Val.f32(1.0),
            w.Val.f64(1.0),
            w.Val.externref(1),
            w.Val.funcref(None),
        )
    ],
    "eq": lambda w: (
        w.Val.i32(1) == w.Val.i32(1),
        w.Val.i32(1) == w.Val.i64(1),
        w.Val.i32(1) == 1,
        operator.eq(w.Val.externref(None), None),
    ),
    "hash": lambda w: hash(w.Val.i32(1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    same_outcome(CASES[name])


def test_externref_identity_kept() -> None:
    obj = object()
    assert wasmrt.Val.externref(obj).value is obj
    assert to_core(None, "externref", obj) is obj
    assert from_core(None, "externref", obj) is obj


@pytest.mark.parametrize(
    ("kind", "value", "core"),
    [("i32", -1, 0xFFFFFFFF), ("i64", -2, 2**64 - 2), ("i32", 2**31, 2**31), ("i32", True, 1)],
)
def test_ints_are_unsigned_inside(kind: str, value: int, core: int) -> None:
    assert to_core(None, kind, value) == core
    assert to_core(None, kind, getattr(wasmrt.Val, kind)(value)) == core
    back = from_core(None, kind, core)
    assert back == getattr(wasmrt.Val, kind)(value).value


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("i32", 1.0, "don't know how to convert 1.0 to i32"),
        ("f32", 1, "don't know how to convert 1 to f32"),
        ("i64", "x", "don't know how to convert 'x' to i64"),
        ("i32", None, "don't know how to convert None to i32"),
    ],
)
def test_conversion_errors(kind: str, value: object, message: str) -> None:
    with pytest.raises(TypeError) as info:
        to_core(None, kind, value)
    assert str(info.value) == message


def test_wrong_val_type() -> None:
    with pytest.raises(TypeError, match="wrong type of `Val` provided"):
        to_core(None, "i32", wasmrt.Val.i64(1))


def test_externref_accepts_anything() -> None:
    for v in (None, 0, 1.5, "s", [1]):
        assert to_core(None, "externref", v) is v


def test_f32_round_keeps_nan_payload_layout() -> None:
    bits = (0x7FF << 52) | (0x123456 << 29) | (1 << 20)  # junk below the f32 payload
    x = struct.unpack("<d", struct.pack("<Q", bits))[0]
    y = f32_round(x)
    ybits = struct.unpack("<Q", struct.pack("<d", y))[0]
    assert math.isnan(y)
    assert ybits == (0x7FF << 52) | (0x123456 << 29)
    assert f32_round(-1e300) == -math.inf
