"""``Global``: value/set_value/type and conversion rules."""

from __future__ import annotations

import operator
from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt


def _g(w: Any, kind: str, mut: bool, val: Any) -> tuple[Any, Any]:
    s = w.Store()
    return s, w.Global(s, w.GlobalType(getattr(w.ValType, kind)(), mut), val)


CASES = {
    "i32_wrap": lambda w: (lambda s, g: g.value(s))(*_g(w, "i32", True, 2**32 - 1)),
    "i32_huge": lambda w: (lambda s, g: g.value(s))(*_g(w, "i32", True, 2**70)),
    "i64": lambda w: (lambda s, g: g.value(s))(*_g(w, "i64", False, -3)),
    "f32": lambda w: (lambda s, g: g.value(s))(*_g(w, "f32", True, 0.1)),
    "f32_int": lambda w: _g(w, "f32", True, 1),
    "val_wrong": lambda w: _g(w, "i32", True, w.Val.i64(1)),
    "null_extern": lambda w: (
        lambda s, g: (type(g.value(s)).__name__, operator.eq(g.value(s), None))
    )(*_g(w, "externref", True, None)),
    "null_func": lambda w: (lambda s, g: type(g.value(s)).__name__)(*_g(w, "funcref", True, None)),
    "set": lambda w: (lambda s, g: (g.set_value(s, 5), g.value(s)))(*_g(w, "i32", True, 1)),
    "set_immutable": lambda w: (lambda s, g: g.set_value(s, 5))(*_g(w, "i32", False, 1)),
    "set_immutable_bad": lambda w: (lambda s, g: g.set_value(s, 5.0))(*_g(w, "i32", False, 1)),
    "bad_type": lambda w: w.Global(w.Store(), 1, 2),
    "bad_store": lambda w: w.Global(1, w.GlobalType(w.ValType.i32(), False), 1),
    "type": lambda w: (lambda s, g: (str(g.type(s).content), g.type(s).mutable))(
        *_g(w, "f64", True, 1.0)
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    same_outcome(CASES[name])


def test_externref_identity() -> None:
    obj = object()
    s, g = _g(wasmrt, "externref", True, obj)
    assert g.value(s) is obj
