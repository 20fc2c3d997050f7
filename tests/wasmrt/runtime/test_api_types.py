"""Type objects: construction rules, validation messages, accessors (diff vs wasmtime)."""

from __future__ import annotations

from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt
from wasmrt.alloc import install_hook, refusing_after


def _limits(t: Any) -> tuple[Any, Any]:
    return (t.limits.min, t.limits.max)


CASES = {
    "valtype_direct": lambda w: w.ValType(),
    "valtype_str": lambda w: [
        str(getattr(w.ValType, k)()) for k in ("i32", "i64", "f32", "f64", "funcref", "externref")
    ],
    "valtype_eq": lambda w: (
        w.ValType.i32() == w.ValType.i32(),
        w.ValType.i32() == w.ValType.i64(),
        w.ValType.i32() == "i32",
    ),
    "valtype_hash": lambda w: hash(w.ValType.i32()),
    "functype": lambda w: [
        str(t)
        for t in w.FuncType([w.ValType.i32(), w.ValType.f64()], [w.ValType.externref()]).params
    ],
    "functype_results": lambda w: [str(t) for t in w.FuncType([], [w.ValType.i64()]).results],
    "functype_bad_param": lambda w: w.FuncType([1], []),
    "functype_bad_result": lambda w: w.FuncType([], ["i32"]),
    "globaltype": lambda w: (
        str(w.GlobalType(w.ValType.f32(), True).content),
        w.GlobalType(w.ValType.f32(), 0).mutable,
    ),
    "globaltype_bad": lambda w: w.GlobalType(1, True),
    "limits_eq": lambda w: (
        w.Limits(1, None) == w.Limits(1, None),
        w.Limits(1, 2) == w.Limits(1, None),
        w.Limits(1, 2) == 3,
    ),
    "tabletype": lambda w: _limits(w.TableType(w.ValType.funcref(), w.Limits(1, 5))),
    "tabletype_u32max": lambda w: _limits(
        w.TableType(w.ValType.funcref(), w.Limits(1, 0xFFFFFFFF))
    ),
    "tabletype_wrap": lambda w: _limits(
        w.TableType(w.ValType.externref(), w.Limits(2**32 + 3, None))
    ),
    "tabletype_neg": lambda w: _limits(w.TableType(w.ValType.externref(), w.Limits(-1, None))),
    "tabletype_elem": lambda w: str(w.TableType(w.ValType.externref(), w.Limits(0, None)).element),
    "tabletype_i32": lambda w: w.TableType(w.ValType.i32(), w.Limits(1, None)),
    "tabletype_bad_limits": lambda w: w.TableType(w.ValType.funcref(), (1, 2)),
    "tabletype_bad_elem": lambda w: w.TableType(1, w.Limits(1, 2)),
    "memtype": lambda w: (
        _limits(w.MemoryType(w.Limits(1, 2))),
        w.MemoryType(w.Limits(1, None)).page_size,
    ),
    "memtype_flags": lambda w: (lambda t: (t.is_64, t.is_shared, t.page_size_log2))(
        w.MemoryType(w.Limits(1, 2), shared=True)
    ),
    "memtype_min_big": lambda w: w.MemoryType(w.Limits(2**32, None)),
    "memtype_max_big": lambda w: w.MemoryType(w.Limits(0, 2**32)),
    "memtype_max_lt_min": lambda w: w.MemoryType(w.Limits(5, 2)),
    "memtype_65537": lambda w: w.MemoryType(w.Limits(65537, None)),
    "memtype_max_65537": lambda w: w.MemoryType(w.Limits(1, 65537)),
    "memtype_65536": lambda w: _limits(w.MemoryType(w.Limits(65536, 65536))),
    "memtype_page3": lambda w: w.MemoryType(w.Limits(1, None), page_size_log2=3),
    "memtype_page0": lambda w: w.MemoryType(w.Limits(1, None), page_size_log2=0).page_size,
    "memtype_shared_nomax": lambda w: w.MemoryType(w.Limits(1, None), shared=True),
    "memtype_64_overflow": lambda w: w.MemoryType(w.Limits(2**48, None), is_64=True),
    "memtype_64_min_big": lambda w: w.MemoryType(w.Limits(2**64, None), is_64=True),
    "memtype_neg": lambda w: w.MemoryType(w.Limits(-1, None)),
    "memtype_not_limits": lambda w: w.MemoryType(1),
    "memtype_max0": lambda w: _limits(w.MemoryType(w.Limits(0, 0))),
    "tagtype_bad": lambda w: w.TagType(1),
    "importtype_direct": lambda w: w.ImportType().module,
    "exporttype_direct": lambda w: w.ExportType().name,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    same_outcome(CASES[name])


def test_closed_type_raises_value_error() -> None:
    ft = wasmrt.FuncType([], [])
    ft.close()
    ft.close()
    with pytest.raises(ValueError, match="already closed"):
        _ = ft.params


def test_with_closes() -> None:
    with wasmrt.GlobalType(wasmrt.ValType.i32(), False) as gt:
        assert gt.mutable is False
    with pytest.raises(ValueError, match="already closed"):
        _ = gt.content


def test_tagtype_consumes_functype() -> None:
    def run(w: Any) -> Any:
        ft = w.FuncType([w.ValType.i32()], [])
        tt = w.TagType(ft)
        try:
            _ = ft.params
        except ValueError as e:
            return ("consumed", str(e), [str(p) for p in tt.functype.params])
        return "not consumed"

    assert same_outcome(run) == ("ok", ("consumed", "already closed", ["i32"]))


def test_params_are_fresh_lists() -> None:
    ft = wasmrt.FuncType([wasmrt.ValType.i32()], [])
    ft.params.append(wasmrt.ValType.i64())
    assert len(ft.params) == 1


def test_functype_creation_asks_try_alloc() -> None:
    with install_hook(refusing_after(0)), pytest.raises(wasmrt.OutOfMemory):
        wasmrt.FuncType([wasmrt.ValType.i32()], [])
    assert wasmrt.FuncType([], []).params == []
