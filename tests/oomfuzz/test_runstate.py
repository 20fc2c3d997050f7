"""``oomfuzz.runstate``: snapshots compare what a user can observe, operations are judged
only when they fail for lack of memory, and referrer chains name the culprit."""

from __future__ import annotations

import math
from typing import Any

import pytest

import oomfuzz
import wasmrt
from oomfuzz.inject import Injector
from oomfuzz.runstate import RunState, describe, recording, referrer_chain
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory

_HELD: dict[str, Any] = {}


def test_nan_globals_and_closed_stores_compare_stably() -> None:
    store = wasmrt.Store(wasmrt.Engine())
    g = wasmrt.Global(store, wasmrt.GlobalType(wasmrt.ValType.f64(), True), math.nan)
    assert describe(g) == describe(g)
    store.close()
    assert describe(store) is None
    assert describe(object()) is None


def test_memory_snapshot_sees_contents_and_size() -> None:
    store = wasmrt.Store(wasmrt.Engine())
    mem = wasmrt.Memory(store, wasmrt.MemoryType(wasmrt.Limits(1, 3)))
    before = describe(mem)
    mem.write(store, b"x", 100)
    assert describe(mem) != before
    after_write = describe(mem)
    mem.grow(store, 1)
    assert describe(mem) != after_write


def test_an_operation_is_judged_only_when_it_failed_for_memory() -> None:
    data = {"n": 0}
    rec = RunState()
    with recording(rec), Injector(mode="transient", fail_at=0).installed():
        oomfuzz.state(lambda: dict(data), "data")
        with pytest.raises(ValueError), oomfuzz.operation("not about memory"):
            data["n"] = 1
            raise ValueError("a host error")
        with oomfuzz.operation("succeeds"):
            data["n"] = 2
        with pytest.raises(OutOfMemory), oomfuzz.operation("fails for memory"):
            data["n"] = 3
            try_alloc(8, AllocKind.OTHER)
    assert [v.operation for v in rec.violations] == ["fails for memory"]
    assert "state data: before {'n': 2}, after {'n': 3}" in rec.violations[0].describe()


def test_an_operation_outside_any_run_just_runs() -> None:
    with oomfuzz.operation("nothing recorded"):
        pass


def test_registrations_inside_a_run_end_with_it() -> None:
    rec = RunState()
    with recording(rec):
        oomfuzz.state(lambda: 1, "one")
        oomfuzz.track(RunState(), "tracked")
    assert len(rec.providers) == 1 and len(rec.tracked) == 1
    refs = rec.finish()
    assert rec.providers == [] and rec.tracked == []
    assert [label for label, _ in refs] == ["tracked"]


class Holder:
    def __init__(self, item: object) -> None:
        self.item = item


def test_referrer_chains_name_the_root() -> None:
    target = RunState()
    _HELD["slot"] = Holder(target)
    try:
        chain = referrer_chain(target)
        assert chain.startswith(f"module {__name__}['_HELD'] -> dict['slot'] -> Holder")
        assert chain.endswith("RunState")
    finally:
        _HELD.clear()

    def keeper(x: object = target) -> object:
        return x

    chain = referrer_chain(target)
    assert "keeper (default arguments)" in chain or "local 'target'" in chain
