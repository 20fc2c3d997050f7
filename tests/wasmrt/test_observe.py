"""``wasmrt.observe``: an installed observer hears of every vm object created and of every
grow (from wasm and from the embedder), failed or not; uninstalled, nothing is called."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import wasmrt
from wasmrt.observe import current_observer, install_observer

R = TypeVar("R")

WAT = """(module
  (memory (export "mem") 1 2)
  (table (export "tab") 1 funcref)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "tgrow") (param i32) (result i32)
    (table.grow (ref.null func) (local.get 0))))"""


class Recorder:
    def __init__(self) -> None:
        self.created: list[str] = []
        self.operations: list[tuple[str, str, object]] = []

    def created_obj(self, obj: object) -> None:
        self.created.append(type(obj).__name__)

    def operation(self, name: str, subject: object, run: Callable[[], R]) -> R:
        result = run()
        self.operations.append((name, type(subject).__name__, result))
        return result


class Observer:
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def created(self, obj: object) -> None:
        self.rec.created_obj(obj)

    def operation(self, name: str, subject: object, run: Callable[[], R]) -> R:
        return self.rec.operation(name, subject, run)


def run_module() -> None:
    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    inst = wasmrt.Instance(store, wasmrt.Module(engine, WAT), [])
    ex: Any = inst.exports(store)
    assert ex["grow"](store, 1) == 1
    assert ex["grow"](store, 5) == -1  # past the maximum: a failed grow
    assert ex["tgrow"](store, 2) == 1
    ex["mem"].grow(store, 0)


def test_the_observer_sees_creations_and_grows() -> None:
    rec = Recorder()
    with install_observer(Observer(rec)):
        run_module()
    assert current_observer() is None
    for kind in ("StoreCore", "CompiledModule", "ModuleInstance", "LinearMemory", "TableInstance"):
        assert kind in rec.created
    assert ("memory.grow", "LinearMemory", 1) in rec.operations
    assert ("memory.grow", "LinearMemory", -1) in rec.operations
    assert ("table.grow", "TableInstance", 1) in rec.operations
    assert ("memory.grow", "LinearMemory", 2) in rec.operations  # the embedder's grow


def test_a_replaced_grow_is_still_observed(monkeypatch: Any) -> None:
    from_wasm: list[bool] = []
    real = wasmrt.vm.LinearMemory.grow

    def grow(self: Any, delta: int, **kw: Any) -> int:
        from_wasm.append(bool(kw.get("from_wasm")))
        return int(real(self, delta, **kw))

    monkeypatch.setattr(wasmrt.vm.LinearMemory, "grow", grow)
    rec = Recorder()
    with install_observer(Observer(rec)):
        run_module()
    assert [n for n, _, _ in rec.operations].count("memory.grow") == 3
    assert from_wasm[:2] == [True, True]


def test_without_an_observer_nothing_is_recorded() -> None:
    rec = Recorder()
    run_module()
    assert rec.created == [] and rec.operations == []
