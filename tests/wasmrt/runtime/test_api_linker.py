"""``Linker``: definitions, shadowing, instantiate, get/get_default, unknown-import stubs."""

from __future__ import annotations

from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt

MOD = '(module (import "x" "y" (func)) (import "x" "g" (global i32)))'
CALLS = '(module (import "x" "y" (func (result i32))) (func (export "f") (result i32) call 0))'


def _setup(w: Any) -> tuple[Any, Any, Any]:
    s = w.Store()
    return s, w.Linker(s.engine), w.Func(s, w.FuncType([], []), lambda: None)


def _twice(w: Any) -> Any:
    s, lk, f = _setup(w)
    lk.define(s, "a", "b", f)
    lk.define(s, "a", "b", f)


def _shadow(w: Any) -> Any:
    s, lk, f = _setup(w)
    lk.allow_shadowing = True
    lk.define(s, "a", "b", f)
    lk.define_func("a", "b", w.FuncType([], [w.ValType.i32()]), lambda: 3)
    return lk.get(s, "a", "b")(s)


def _missing_then_mismatch(w: Any) -> Any:
    s, lk, _ = _setup(w)
    lk.define(s, "x", "y", w.Func(s, w.FuncType([w.ValType.i32()], []), lambda a: None))
    return lk.instantiate(s, w.Module(s.engine, MOD))


def _mismatch(w: Any) -> Any:
    s, lk, _ = _setup(w)
    lk.define(s, "x", "y", w.Func(s, w.FuncType([w.ValType.i32()], []), lambda a: None))
    lk.define(s, "x", "g", w.Global(s, w.GlobalType(w.ValType.i32(), False), 1))
    return lk.instantiate(s, w.Module(s.engine, MOD))


def _define_func(w: Any) -> Any:
    _, lk, _ = _setup(w)
    lk.define_func("x", "y", w.FuncType([], [w.ValType.i32()]), lambda: -4)
    out = []
    for _ in range(2):  # store-independent: works in every store
        s = w.Store(lk.engine)
        out.append(lk.instantiate(s, w.Module(lk.engine, CALLS)).exports(s)["f"](s))
    return out


def _define_instance(w: Any) -> Any:
    s, lk, _ = _setup(w)
    src = w.Instance(
        s, w.Module(s.engine, '(module (func (export "y") (result i32) i32.const 9))'), []
    )
    lk.define_instance(s, "x", src)
    return lk.instantiate(s, w.Module(s.engine, CALLS)).exports(s)["f"](s)


def _traps(w: Any) -> Any:
    s, lk, _ = _setup(w)
    m = w.Module(s.engine, CALLS)
    lk.define_unknown_imports_as_traps(m)
    f = lk.instantiate(s, m).exports(s)["f"]
    try:
        f(s)
    except w.WasmtimeError as e:
        return ("err", "unknown import: `x::y` has not been defined" in str(e))
    return "no error"


def _defaults(w: Any) -> Any:
    s, lk, _ = _setup(w)
    m = w.Module(s.engine, CALLS)
    lk.define_unknown_imports_as_default_values(s, m)
    return lk.instantiate(s, m).exports(s)["f"](s)


CASES = {
    "twice": _twice,
    "shadow": _shadow,
    "define_not_extern": lambda w: (lambda s, lk, f: lk.define(s, "a", "c", 2))(*_setup(w)),
    "define_bad_module": lambda w: (lambda s, lk, f: lk.define(s, 2, "c", f))(*_setup(w)),
    "define_func_bad_type": lambda w: (lambda s, lk, f: lk.define_func("a", "b", 1, lambda: None))(
        *_setup(w)
    ),
    "define_instance_bad": lambda w: (lambda s, lk, f: lk.define_instance(s, "x", 2))(*_setup(w)),
    "define_module_bad": lambda w: (lambda s, lk, f: lk.define_module(s, "x", 2))(*_setup(w)),
    "instantiate_pre_bad": lambda w: (lambda s, lk, f: lk.instantiate_pre("x"))(*_setup(w)),
    "linker_bad_engine": lambda w: w.Linker(2),
    "unknown": lambda w: (lambda s, lk, f: lk.instantiate(s, w.Module(s.engine, MOD)))(*_setup(w)),
    "missing_then_mismatch": _missing_then_mismatch,
    "mismatch": _mismatch,
    "get_missing": lambda w: (lambda s, lk, f: lk.get(s, "a", "zz"))(*_setup(w)),
    "get_default_noop": lambda w: (
        lambda s, lk, f: (lk.get_default(s, "none")(s), lk.get_default(s, "none").type(s).params)
    )(*_setup(w)),
    "define_func": _define_func,
    "define_instance": _define_instance,
    "traps": _traps,
    "defaults": _defaults,
    "pre_unknown": lambda w: (lambda s, lk, f: lk.instantiate_pre(w.Module(s.engine, MOD)))(
        *_setup(w)
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    same_outcome(CASES[name])


def test_get_default_prefers_empty_name() -> None:
    s = wasmrt.Store()
    linker = wasmrt.Linker(s.engine)
    linker.define_func("m", "_start", wasmrt.FuncType([], [wasmrt.ValType.i32()]), lambda: 1)
    assert linker.get_default(s, "m")(s) == 1
    linker.define_func("m", "", wasmrt.FuncType([], [wasmrt.ValType.i32()]), lambda: 2)
    assert linker.get_default(s, "m")(s) == 2


def test_define_module_reactor_and_command() -> None:
    s = wasmrt.Store()
    linker = wasmrt.Linker(s.engine)
    reactor = wasmrt.Module(
        s.engine,
        '(module (global $g (mut i32) (i32.const 0)) (func (export "_initialize") i32.const 5 global.set $g)'
        ' (func (export "y") (result i32) global.get $g))',
    )
    linker.define_module(s, "x", reactor)
    inst = linker.instantiate(s, wasmrt.Module(s.engine, CALLS))
    assert inst.exports(s)["f"](s) == 5

    command = wasmrt.Module(
        s.engine,
        '(module (global $g (mut i32) (i32.const 0)) (func (export "_start"))'
        ' (func (export "y") (result i32) global.get $g i32.const 1 i32.add global.set $g global.get $g))',
    )
    linker2 = wasmrt.Linker(s.engine)
    linker2.define_module(s, "x", command)
    f = linker2.instantiate(s, wasmrt.Module(s.engine, CALLS)).exports(s)["f"]
    assert [f(s), f(s)] == [1, 1]  # a fresh instance per call


def test_instance_pre() -> None:
    e = wasmrt.Engine()
    linker = wasmrt.Linker(e)
    linker.define_func("x", "y", wasmrt.FuncType([], [wasmrt.ValType.i32()]), lambda: 11)
    m = wasmrt.Module(e, CALLS)
    pre = linker.instantiate_pre(m)
    assert pre.module is m
    for _ in range(2):
        s = wasmrt.Store(e)
        assert pre.instantiate(s).exports(s)["f"](s) == 11
    pre.close()
    with pytest.raises(ValueError, match="already closed"):
        pre.instantiate(wasmrt.Store(e))


def test_linker_definition_oom_leaves_linker_unchanged() -> None:
    from wasmrt.alloc import install_hook, refusing_after

    s = wasmrt.Store()
    linker = wasmrt.Linker(s.engine)
    f = wasmrt.Func(s, wasmrt.FuncType([], []), lambda: None)
    with install_hook(refusing_after(0)), pytest.raises(wasmrt.OutOfMemory):
        linker.define(s, "a", "b", f)
    with pytest.raises(wasmrt.WasmtimeError, match="item not defined"):
        linker.get(s, "a", "b")
    linker.define(s, "a", "b", f)
    assert isinstance(linker.get(s, "a", "b"), wasmrt.Func)
