"""``Func``: host functions, result rules, call arity/conversion, exception identity."""

from __future__ import annotations

from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt

I32 = "i32"


def _host(w: Any, params: list[str], results: list[str], fn: Any, caller: bool = False) -> Any:
    s = w.Store()
    ty = w.FuncType(
        [getattr(w.ValType, p)() for p in params], [getattr(w.ValType, r)() for r in results]
    )
    return s, w.Func(s, ty, fn, caller)


def _call(params: list[str], results: list[str], fn: Any, *args: Any) -> Any:
    def run(w: Any) -> Any:
        s, f = _host(w, params, results, fn)
        return f(s, *args)

    return run


def _via_wasm(results: list[str], fn: Any) -> Any:
    """Call host ``fn`` from wasm (import ``h.f`` re-exported as ``f``)."""

    def run(w: Any) -> Any:
        s = w.Store()
        ty = w.FuncType([], [getattr(w.ValType, r)() for r in results])
        h = w.Func(s, ty, fn)
        res = " ".join(results)
        rtext = f"(result {res})" if results else ""
        m = w.Module(
            s.engine,
            f'(module (import "h" "f" (func $f {rtext})) (func (export "f") {rtext} call $f))',
        )
        return w.Instance(s, m, [h]).exports(s)["f"](s)

    return run


CASES = {
    "ret_none": _call([], [], lambda: None),
    "ret_unexpected": _call([], [], lambda: 1),
    "ret_one": _call([], [I32], lambda: 0xFFFFFFFF),
    "ret_two": _call([], [I32, "f64"], lambda: (1, 2.5)),
    "ret_wrong_count": _call([], [I32, I32], lambda: (1,)),
    "ret_no_len": _call([], [I32, I32], lambda: 5),
    "ret_bad_type": _call([], [I32], lambda: 1.5),
    "args": _call(
        [I32, "i64", "f32", "f64"], ["f64"], lambda a, b, c, d: a + b + c + d, -1, 2**63, 0.5, 1.0
    ),
    "too_many": _call([], [], lambda: None, 1),
    "too_few": _call([I32], [], lambda a: None),
    "bad_arg": _call([I32], [], lambda a: None, 1.0),
    "val_arg_wrong": lambda w: _call([I32], [], lambda a: None, w.Val.i64(1))(w),
    "val_arg": lambda w: _call([I32], [I32], lambda a: a, w.Val.i32(-7))(w),
    "externref_roundtrip": _call(["externref"], ["externref"], lambda a: a, "payload"),
    "null_funcref": _call(["funcref"], ["funcref"], lambda a: a, None),
    "func_bad_store": lambda w: w.Func(1, w.FuncType([], []), lambda: None),
    "func_bad_type": lambda w: w.Func(w.Store(), 1, lambda: None),
    "type": lambda w: (lambda s, f: [str(t) for t in f.type(s).params])(
        *_host(w, [I32, "f32"], [], lambda a, b: None)
    ),
    "wasm_ret_unexpected": _via_wasm([], lambda: 1),
    "wasm_wrong_count": _via_wasm([I32, I32], lambda: (1, 2, 3)),
    "wasm_ret": _via_wasm([I32, "i64"], lambda: (-1, 2**64 - 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    same_outcome(CASES[name])


def test_caller_store_rejected_by_func() -> None:
    s = wasmrt.Store()
    seen: list[Any] = []

    def host(caller: Any) -> None:
        try:
            wasmrt.Func(caller, wasmrt.FuncType([], []), lambda: None)
        except TypeError as e:
            seen.append(e)

    wasmrt.Func(s, wasmrt.FuncType([], []), host, access_caller=True)(s)
    assert seen and str(seen[0]) == "expected a Store"


class Boom(BaseException):
    pass


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("v"),
        KeyboardInterrupt(),
        Boom(),
        wasmrt.Trap("host trap"),
        wasmrt.WasmtimeError("w"),
    ],
)
def test_host_exception_is_the_original_object(exc: BaseException) -> None:
    s = wasmrt.Store()

    def host() -> None:
        raise exc

    h = wasmrt.Func(s, wasmrt.FuncType([], []), host)
    m = wasmrt.Module(s.engine, '(module (import "" "" (func $h)) (func (export "f") call $h))')
    f = wasmrt.Instance(s, m, [h]).exports(s)["f"]
    with pytest.raises(BaseException) as info:
        f(s)
    assert info.value is exc
    with pytest.raises(BaseException) as info:
        h(s)
    assert info.value is exc


def test_trap_from_wasm() -> None:
    def run(w: Any) -> Any:
        s = w.Store()
        m = w.Module(s.engine, '(module (func (export "f") unreachable))')
        try:
            w.Instance(s, m, []).exports(s)["f"](s)
        except w.Trap as t:
            return (t.trap_code.name, "unreachable" in t.message, isinstance(t, w.WasmtimeError))
        return None

    same_outcome(run)


def test_funcref_roundtrip_through_wasm() -> None:
    s = wasmrt.Store()
    m = wasmrt.Module(
        s.engine, '(module (func (export "id") (param funcref) (result funcref) local.get 0))'
    )
    ident = wasmrt.Instance(s, m, []).exports(s)["id"]
    h = wasmrt.Func(s, wasmrt.FuncType([], [wasmrt.ValType.i32()]), lambda: 42)
    back = ident(s, h)
    assert isinstance(back, wasmrt.Func)
    assert back(s) == 42
    assert ident(s, None) is None


def test_func_from_other_store_is_rejected() -> None:
    s1, s2 = wasmrt.Store(), wasmrt.Store()
    f = wasmrt.Func(s1, wasmrt.FuncType([], []), lambda: None)
    with pytest.raises(wasmrt.WasmtimeError):
        f(s2)
