"""A refused ``Memory.grow``/``Table.grow`` leaves no exception-frame cycle
(issue 14): once the embedder drops the error and closes the store, the
memory, the table and the store go at once, by reference counting, without
waiting for the cyclic collector.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import wasmrt as w
from wasmrt.alloc import refusing_after


@pytest.fixture
def no_collector() -> Iterator[None]:
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _memory(store: w.Store) -> Any:
    return w.Memory(store, w.MemoryType(w.Limits(1, 2)))


def _table(store: w.Store) -> Any:
    return w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(1, 2)), None)


def _grow(obj: Any, store: w.Store, delta: int) -> None:
    if isinstance(obj, w.Memory):
        obj.grow(store, delta)
    else:
        obj.grow(store, delta, None)


def _refused_then_dropped(make: Callable[[w.Store], Any], refuse: str) -> list[weakref.ref[Any]]:
    engine = w.Engine()
    store = w.Store(engine)
    obj = make(store)
    if refuse == "limiter":
        store.set_limits(memory_size=65536, table_elements=1)
    with pytest.raises(w.WasmtimeError):
        if refuse == "hook":
            with w.install_hook(refusing_after(0)):
                _grow(obj, store, 1)
        else:
            _grow(obj, store, 5 if refuse == "maximum" else 1)
    core = obj._memory if isinstance(obj, w.Memory) else obj._table
    refs = [weakref.ref(core), weakref.ref(store.ptr())]
    store.close()
    return refs


@pytest.mark.parametrize("refuse", ["maximum", "limiter", "hook"])
@pytest.mark.parametrize("make", [_memory, _table], ids=["memory", "table"])
def test_refused_grow_frees_without_the_collector(
    no_collector: None, make: Callable[[w.Store], Any], refuse: str
) -> None:
    refs = _refused_then_dropped(make, refuse)
    assert [r() for r in refs] == [None, None]
