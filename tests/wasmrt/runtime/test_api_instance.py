"""``Instance`` and ``InstanceExports``: positional imports, link errors, exports mapping."""

from __future__ import annotations

from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt

IMPORTS = '(module (import "x" "y" (func)) (import "x" "g" (global i32)))'
MEM_TAB = '(module (import "x" "m" (memory 2 3)) (import "x" "t" (table 1 funcref)))'


def _inst(imports: Any, wat: str = IMPORTS) -> Any:
    def run(w: Any) -> Any:
        s = w.Store()
        m = w.Module(s.engine, wat)
        w.Instance(s, m, imports(w, s))
        return "ok"

    return run


def _f(w: Any, s: Any, params: tuple[str, ...] = ()) -> Any:
    return w.Func(s, w.FuncType([getattr(w.ValType, p)() for p in params], []), lambda *a: None)


def _g(w: Any, s: Any, kind: str = "i32", mut: bool = False) -> Any:
    return w.Global(s, w.GlobalType(getattr(w.ValType, kind)(), mut), 1 if kind[0] == "i" else None)


def _m(w: Any, s: Any, lo: int, hi: int | None) -> Any:
    return w.Memory(s, w.MemoryType(w.Limits(lo, hi)))


def _t(w: Any, s: Any, kind: str = "funcref") -> Any:
    return w.Table(s, w.TableType(getattr(w.ValType, kind)(), w.Limits(1, None)), None)


CASES = {
    "ok": _inst(lambda w, s: [_f(w, s), _g(w, s)]),
    "count": _inst(lambda w, s: []),
    "count_more": _inst(lambda w, s: [_f(w, s), _g(w, s), _g(w, s)]),
    "not_extern": _inst(lambda w, s: [1, _g(w, s)]),
    "func_type": _inst(lambda w, s: [_f(w, s, ("i32",)), _g(w, s)]),
    "global_type": _inst(lambda w, s: [_f(w, s), _g(w, s, "i64")]),
    "global_mut": _inst(lambda w, s: [_f(w, s), _g(w, s, "i32", True)]),
    "kind": _inst(lambda w, s: [_f(w, s), _m(w, s, 1, None)]),
    "mem_ok": _inst(lambda w, s: [_m(w, s, 2, 3), _t(w, s)], MEM_TAB),
    "mem_grown_ok": _inst(
        lambda w, s: [(lambda m: (m.grow(s, 1), m)[1])(_m(w, s, 1, 3)), _t(w, s)], MEM_TAB
    ),
    "mem_small": _inst(lambda w, s: [_m(w, s, 1, 3), _t(w, s)], MEM_TAB),
    "mem_nomax": _inst(lambda w, s: [_m(w, s, 2, None), _t(w, s)], MEM_TAB),
    "table_elem": _inst(lambda w, s: [_m(w, s, 2, 3), _t(w, s, "externref")], MEM_TAB),
    "bad_module": lambda w: w.Instance(w.Store(), 1, []),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    same_outcome(CASES[name])


def test_trap_in_start_function() -> None:
    # Classes only: wasmtime's message includes a backtrace the vm does not record.
    assert same_outcome(
        _inst(lambda w, s: [], "(module (func $s unreachable) (start $s))"), messages=False
    ) == ("err", "Trap")


def test_exports_mapping() -> None:
    def run(w: Any) -> Any:
        s = w.Store()
        m = w.Module(
            s.engine,
            '(module (func (export "f")) (memory (export "m") 1) (global (export "g") i32 (i32.const 7)))',
        )
        i = w.Instance(s, m, [])
        ex = i.exports(s)
        out: list[Any] = [
            list(ex),
            len(ex),
            "f" in ex,
            "zz" in ex,
            ex.get("zz", 5),
            i.exports(s) is ex,
        ]
        out.append([type(x).__name__ for x in ex.by_index])
        out.append(ex["g"].value(s))
        for bad in (lambda: ex["zz"], lambda: ex.by_index[5]):
            try:
                bad()
            except (KeyError, IndexError) as e:
                out.append(type(e).__name__)
        return out

    same_outcome(run)


def test_int_keys_are_a_superset() -> None:
    s = wasmrt.Store()
    i = wasmrt.Instance(s, wasmrt.Module(s.engine, '(module (func (export "f")))'), [])
    assert i.exports(s)[0] is i.exports(s)["f"]
    with pytest.raises(KeyError):
        i.exports(s)[3]


def test_trap_frames_filled() -> None:
    s = wasmrt.Store()
    m = wasmrt.Module(
        s.engine, '(module (func $inner unreachable) (func (export "f") call $inner))'
    )
    with pytest.raises(wasmrt.Trap) as info:
        wasmrt.Instance(s, m, []).exports(s)["f"](s)
    assert info.value.trap_code == wasmrt.TrapCode.UNREACHABLE
    if info.value.frames:  # filled when the vm records frames
        assert info.value.frames[0].func_index == 0
