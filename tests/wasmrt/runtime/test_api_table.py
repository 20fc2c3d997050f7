"""``Table``: get/set/grow/size/type rules (1.12)."""

from __future__ import annotations

import operator
from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt


def _tab(w: Any, kind: str = "funcref", lo: int = 1, hi: int | None = 3, init: Any = None) -> Any:
    s = w.Store()
    return s, w.Table(s, w.TableType(getattr(w.ValType, kind)(), w.Limits(lo, hi)), init)


CASES = {
    "size_type": lambda w: (
        lambda s, t: (t.size(s), t.type(s).limits.min, t.type(s).limits.max, str(t.type(s).element))
    )(*_tab(w)),
    "get_oob": lambda w: (lambda s, t: (t.get(s, 5), t.get(s, -1)))(*_tab(w)),
    "get_null": lambda w: (
        lambda s, t: (type(t.get(s, 0)).__name__, operator.eq(t.get(s, 0), None))
    )(*_tab(w)),
    "set_oob": lambda w: (lambda s, t: t.set(s, 5, None))(*_tab(w)),
    "set_bad": lambda w: (lambda s, t: t.set(s, 0, 3))(*_tab(w)),
    "grow": lambda w: (lambda s, t: (t.grow(s, 1, None), t.size(s), t.type(s).limits.min))(
        *_tab(w)
    ),
    "grow_fail": lambda w: (lambda s, t: t.grow(s, 5, None))(*_tab(w)),
    "grow_neg": lambda w: (lambda s, t: t.grow(s, -1, None))(*_tab(w)),
    "bad_init": lambda w: _tab(w, init=3),
    "extern_falsy": lambda w: (lambda s, t: (type(t.get(s, 0)).__name__, t.get(s, 0) == 0))(
        *_tab(w, "externref", 2, None, 0)
    ),
    "extern_set_get": lambda w: (lambda s, t: (t.set(s, 1, "hi"), t.get(s, 1)))(
        *_tab(w, "externref", 2, None, 0)
    ),
    "extern_grow": lambda w: (lambda s, t: (t.grow(s, 2, "x"), t.get(s, 3)))(
        *_tab(w, "externref", 2, None, 0)
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    same_outcome(CASES[name])


def test_funcref_elements() -> None:
    s, t = _tab(wasmrt)
    f = wasmrt.Func(s, wasmrt.FuncType([], [wasmrt.ValType.i32()]), lambda: 7)
    t.set(s, 0, f)
    got = t.get(s, 0)
    assert isinstance(got, wasmrt.Func)
    assert got(s) == 7
    with pytest.raises(TypeError):
        t.grow(s, "x", None)


def test_host_table_with_max_below_min_is_refused() -> None:
    """Known deviation: wasmtime-py creates it; wasmrt's vm refuses it."""
    with pytest.raises(wasmrt.WasmtimeError, match="table minimum size of 3 elements"):
        _tab(wasmrt, lo=3, hi=1)


def test_externref_identity() -> None:
    obj = {"k": 1}
    s, t = _tab(wasmrt, "externref", 1, None, obj)
    assert t.get(s, 0) is obj
