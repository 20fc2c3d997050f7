"""wasmtime-py's ``test_access_caller``: ``Caller.get`` returns the public classes.

Includes a host function run as the module's *start* function, whose caller
is the instance being instantiated: its exports are visible to the host
function during the call, and the caller is invalid afterwards (also when
the host function raised).
"""

from __future__ import annotations

from typing import Any

import pytest

import wasmrt as wasmtime

START_WAT = """
(module
  (import "" "" (func))
  (memory (export "foo") 1)
  (start 0)
  (data (i32.const 0) "foo"))
"""

ALL_KINDS_WAT = """
(module
  (import "" "" (func $h))
  (memory (export "m") 1)
  (table (export "t") 1 funcref)
  (global (export "g") (mut i32) (i32.const 7))
  (func (export "f") call $h)
  (start $h))
"""


def test_caller_without_wasm_instance_finds_nothing() -> None:
    store = wasmtime.Store()
    seen: list[Any] = []

    def host(caller: Any) -> None:
        seen.extend([caller.get(""), caller.get("x"), caller.get("y")])

    wasmtime.Func(store, wasmtime.FuncType([], []), host, access_caller=True)(store)
    assert seen == [None, None, None]


def test_start_function_caller_sees_memory_export() -> None:
    store = wasmtime.Store()
    hit: dict[str, Any] = {}

    def host(caller: Any) -> None:
        hit["caller"] = caller
        assert caller.get("bar") is None
        mem = caller.get("foo")
        assert isinstance(mem, wasmtime.Memory)
        assert [mem.data_ptr(caller)[i] for i in range(4)] == [ord("f"), ord("o"), ord("o"), 0]

    module = wasmtime.Module(store.engine, START_WAT)
    func = wasmtime.Func(store, wasmtime.FuncType([], []), host, access_caller=True)
    wasmtime.Instance(store, module, [func])
    assert "caller" in hit
    assert hit["caller"].get("foo") is None


def test_caller_invalidated_after_host_error_in_start() -> None:
    store = wasmtime.Store()
    hit: dict[str, Any] = {}

    def host(caller: Any) -> None:
        hit["caller"] = caller
        assert caller["foo"] is not None
        raise wasmtime.WasmtimeError("foo")

    module = wasmtime.Module(store.engine, START_WAT)
    func = wasmtime.Func(store, wasmtime.FuncType([], []), host, access_caller=True)
    with pytest.raises(wasmtime.WasmtimeError, match="foo"):
        wasmtime.Instance(store, module, [func])
    assert hit["caller"].get("foo") is None


def test_caller_get_returns_public_classes_for_every_kind() -> None:
    store = wasmtime.Store()
    kinds: list[tuple[str, ...]] = []

    def host(caller: Any) -> None:
        kinds.append(tuple(type(caller.get(n)).__name__ for n in ("m", "t", "g", "f")))
        assert isinstance(caller.get("m"), wasmtime.Memory)
        assert isinstance(caller.get("t"), wasmtime.Table)
        assert isinstance(caller.get("g"), wasmtime.Global)
        assert isinstance(caller.get("f"), wasmtime.Func)
        assert caller.get("g").value(caller) == 7

    module = wasmtime.Module(store.engine, ALL_KINDS_WAT)
    func = wasmtime.Func(store, wasmtime.FuncType([], []), host, access_caller=True)
    inst = wasmtime.Instance(store, module, [func])
    inst.exports(store)["f"](store)
    assert kinds == [("Memory", "Table", "Global", "Func")] * 2
