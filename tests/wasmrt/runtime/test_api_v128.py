"""v128 values across the public API: arguments, results, globals, host functions, Val.

wasmtime-py cannot pass v128 at all, so wasmrt defines it: an unsigned 128-bit
int with lane 0 in the low bits, ints wrapping modulo 2**128.
"""

from __future__ import annotations

import pytest

import wasmrt

WAT = """(module
  (import "host" "xor1" (func $xor1 (param v128) (result v128)))
  (func (export "add") (param v128) (result v128)
    (i32x4.add (local.get 0) (v128.const i32x4 1 2 3 4)))
  (func (export "via_host") (param v128) (result v128) (call $xor1 (local.get 0)))
  (func (export "lane") (param v128) (result i32) (i32x4.extract_lane 3 (local.get 0)))
  (global (export "g") (mut v128) (v128.const i64x2 7 8)))"""

LANES_1234 = 1 | 2 << 32 | 3 << 64 | 4 << 96


@pytest.fixture
def env() -> tuple[wasmrt.Store, wasmrt.InstanceExports]:
    store = wasmrt.Store()
    ty = wasmrt.FuncType([wasmrt.ValType.v128()], [wasmrt.ValType.v128()])
    xor1 = wasmrt.Func(store, ty, lambda v: v ^ 1)
    module = wasmrt.Module(store.engine, WAT)
    return store, wasmrt.Instance(store, module, [xor1]).exports(store)


def test_types_report_v128(env: tuple[wasmrt.Store, wasmrt.InstanceExports]) -> None:
    store, ex = env
    add = ex["add"]
    assert isinstance(add, wasmrt.Func)
    assert add.type(store).params == [wasmrt.ValType.v128()]
    assert str(wasmrt.ValType.v128()) == "v128"


def test_int_arguments_and_results(env: tuple[wasmrt.Store, wasmrt.InstanceExports]) -> None:
    store, ex = env
    assert ex["add"](store, 0) == LANES_1234
    assert ex["add"](store, -1) == LANES_1234 - 1 - (1 << 32) - (1 << 64) - (1 << 96)
    assert ex["lane"](store, 5 << 96) == 5


def test_val_from_int_and_bytes(env: tuple[wasmrt.Store, wasmrt.InstanceExports]) -> None:
    store, ex = env
    assert ex["add"](store, wasmrt.Val.v128(bytes(16))) == LANES_1234
    assert wasmrt.Val.v128(1 << 130 | 9).value == 9
    assert wasmrt.Val.v128(b"\x01" + bytes(15)).as_v128() == 1
    with pytest.raises(ValueError, match="16 bytes"):
        wasmrt.Val.v128(b"\x01")
    with pytest.raises(TypeError):
        wasmrt.Val.v128(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ex["add"](store, 1.5)
    with pytest.raises(TypeError, match="wrong type of `Val`"):
        ex["add"](store, wasmrt.Val.i32(1))


def test_host_function_sees_and_returns_v128(
    env: tuple[wasmrt.Store, wasmrt.InstanceExports],
) -> None:
    store, ex = env
    assert ex["via_host"](store, 1 << 127) == (1 << 127) | 1


def test_mutable_v128_global(env: tuple[wasmrt.Store, wasmrt.InstanceExports]) -> None:
    store, ex = env
    g = ex["g"]
    assert isinstance(g, wasmrt.Global)
    assert g.type(store).content == wasmrt.ValType.v128()
    assert g.value(store) == 7 | 8 << 64
    g.set_value(store, -1)
    assert g.value(store) == (1 << 128) - 1
