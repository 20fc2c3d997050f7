"""``Tag``: creation, type, eq (minimal: WebAssembly 2.0 has no exceptions)."""

from __future__ import annotations

import pytest
from wasmrt_api_support import same_outcome

import wasmrt


def test_tag() -> None:
    s = wasmrt.Store()
    t1 = wasmrt.Tag(s, wasmrt.TagType(wasmrt.FuncType([wasmrt.ValType.i32()], [])))
    t2 = wasmrt.Tag(s, wasmrt.TagType(wasmrt.FuncType([wasmrt.ValType.i32()], [])))
    assert t1.eq(s, t1)
    assert not t1.eq(s, t2)
    assert [str(p) for p in t1.type(s).functype.params] == ["i32"]


def test_tag_argument_errors() -> None:
    same_outcome(lambda w: w.Tag(w.Store(), "x"))
    with pytest.raises(AttributeError):
        wasmrt.Tag(1, wasmrt.TagType(wasmrt.FuncType([], [])))
