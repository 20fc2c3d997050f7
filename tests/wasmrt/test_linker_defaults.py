"""``Linker.define_unknown_imports_as_default_values`` stubs every kind of import."""

from __future__ import annotations

from typing import Any

import pytest

import wasmrt as w

WAT = """
(module
  (import "env" "f" (func $f (param i32) (result i32 i64 f32 f64)))
  (import "env" "g" (func $g))
  (import "env" "r" (func $r (result externref)))
  (import "env" "tab" (table 2 5 funcref))
  (import "env" "mem" (memory 1 3))
  (import "env" "gi" (global $gi i32))
  (import "env" "gf" (global $gf (mut f64)))
  (import "env" "gr" (global $gr externref))
  (func (export "call_f") (result i32 i64 f32 f64) (call $f (i32.const 7)))
  (func (export "call_g") (call $g))
  (func (export "call_r") (result externref) (call $r))
  (func (export "gi") (result i32) (global.get $gi))
  (func (export "gf") (result f64) (global.get $gf))
  (export "tab" (table 0))
  (export "mem" (memory 0))
  (export "gr" (global $gr)))
"""


def test_every_kind_of_import_gets_a_default() -> None:
    engine = w.Engine()
    store = w.Store(engine)
    module = w.Module(engine, WAT)
    linker = w.Linker(engine)
    linker.define_unknown_imports_as_default_values(store, module)
    ex: Any = linker.instantiate(store, module).exports(store)
    assert ex["call_f"](store) == [0, 0, 0.0, 0.0]
    assert ex["call_g"](store) is None
    assert ex["call_r"](store) is None
    assert ex["gi"](store) == 0
    assert ex["gf"](store) == 0.0
    assert ex["gr"].value(store) == None  # noqa: E711 (a null Val)
    tab = ex["tab"]
    assert tab.size(store) == 2 and tab.get(store, 0) == None  # noqa: E711
    assert tab.type(store).limits.max == 5
    mem = ex["mem"]
    assert mem.size(store) == 1 and mem.type(store).limits.max == 3
    assert mem.read(store, 0, 4) == bytearray(4)


def test_existing_definitions_are_kept_and_store_checked() -> None:
    engine = w.Engine()
    store = w.Store(engine)
    module = w.Module(engine, WAT)
    linker = w.Linker(engine)
    linker.define_func("env", "g", w.FuncType([], []), lambda: None)
    mem = w.Memory(store, w.MemoryType(w.Limits(2, 3)))
    linker.define(store, "env", "mem", mem)
    linker.define_unknown_imports_as_default_values(store, module)
    ex: Any = linker.instantiate(store, module).exports(store)
    assert ex["mem"].size(store) == 2  # the embedder's memory, not a stub
    # Table, memory and global stubs belong to the store they were made in.
    other = w.Store(engine)
    with pytest.raises(w.WasmtimeError):
        linker.instantiate(other, module)


def test_a_refused_stub_defines_nothing() -> None:
    engine = w.Engine()
    store = w.Store(engine)
    store.set_limits(memory_size=0)
    module = w.Module(engine, WAT)
    linker = w.Linker(engine)
    with pytest.raises(w.WasmtimeError):
        linker.define_unknown_imports_as_default_values(store, module)
    with pytest.raises(w.WasmtimeError, match="unknown import"):
        linker.instantiate(w.Store(engine), module)
