"""A Module belongs to the Engine that compiled it; a Store or Linker of another Engine
refuses it with wasmtime-py's ``WasmtimeError`` (checked against wasmtime-py 30+)."""

from __future__ import annotations

import pytest

import wasmrt

WAT = '(module (func (export "f") (result i32) i32.const 7) (memory (export "m") 1))'
INSTANTIATION = "cross-`Engine` instantiation is not currently supported"
USAGE = "cross-`Engine` usage is not supported"


Foreign = tuple[wasmrt.Engine, wasmrt.Module, wasmrt.Store]


@pytest.fixture
def foreign() -> Foreign:
    """``(other engine, module of a first engine, store of the other engine)``."""
    other = wasmrt.Engine()
    return other, wasmrt.Module(wasmrt.Engine(), WAT), wasmrt.Store(other)


def test_instance_refuses_a_module_of_another_engine(foreign: Foreign) -> None:
    _, module, store = foreign
    with pytest.raises(wasmrt.WasmtimeError, match="^" + INSTANTIATION + "$"):
        wasmrt.Instance(store, module, [])


def test_linker_refuses_a_module_of_another_engine(foreign: Foreign) -> None:
    other, module, store = foreign
    linker = wasmrt.Linker(other)
    for attempt in (
        lambda: linker.instantiate(store, module),
        lambda: linker.instantiate_pre(module),
        lambda: linker.define_module(store, "m", module),
    ):
        with pytest.raises(wasmrt.WasmtimeError, match="^" + INSTANTIATION + "$"):
            attempt()


def test_linker_refuses_a_store_of_another_engine() -> None:
    engine = wasmrt.Engine()
    module = wasmrt.Module(engine, WAT)
    store = wasmrt.Store(wasmrt.Engine())
    linker = wasmrt.Linker(engine)
    with pytest.raises(wasmrt.WasmtimeError, match="^" + USAGE + "$"):
        linker.instantiate(store, module)
    with pytest.raises(wasmrt.WasmtimeError, match="^" + USAGE + "$"):
        linker.get_default(store, "")


def test_a_refused_instantiation_leaves_the_store_usable(foreign: Foreign) -> None:
    other, module, store = foreign
    with pytest.raises(wasmrt.WasmtimeError):
        wasmrt.Instance(store, module, [])
    own = wasmrt.Instance(store, wasmrt.Module(other, WAT), [])
    f = own.exports(store)["f"]
    assert isinstance(f, wasmrt.Func) and f(store) == 7


def test_the_same_engine_shared_by_two_stores_works() -> None:
    engine = wasmrt.Engine()
    module = wasmrt.Module(engine, WAT)
    for _ in range(2):
        store = wasmrt.Store(engine)
        f = wasmrt.Linker(engine).instantiate(store, module).exports(store)["f"]
        assert isinstance(f, wasmrt.Func) and f(store) == 7
