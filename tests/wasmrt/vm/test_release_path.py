"""One release path per instance (``vm.instance.deallocate_module``) and one charge per store.

- A failed instantiation gives back every memory (through the allocator, and
  its bytes), every table and the instance count, exactly once; closing the
  store afterwards releases nothing twice.
- ``Store.close`` releases each instance through the same path, once.
- Creating a store asks ``try_alloc`` for one STORE allocation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import wasmrt
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.vm import instance as vm_instance
from wasmrt.vm.memory import LinearMemory

TRAPPING_START = """
(module
  (memory (export "m") 1)
  (table 2 funcref)
  (data (i32.const 0) "\\2a")
  (func $start unreachable)
  (start $start))
"""

OK = '(module (memory (export "m") 1) (table 1 funcref))'


@pytest.fixture
def released(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[int]]:
    """Counts ``LinearMemory.release`` calls per memory object id."""
    calls: Counter[int] = Counter()
    real = LinearMemory.release

    def spy(self: LinearMemory) -> None:
        calls[id(self)] += 1
        real(self)

    monkeypatch.setattr(LinearMemory, "release", spy)
    yield calls


@pytest.fixture
def deallocations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    seen: list[Any] = []
    real = vm_instance.deallocate_module

    def spy(allocator: Any, inst: Any) -> None:
        seen.append(inst)
        real(allocator, inst)

    monkeypatch.setattr(vm_instance, "deallocate_module", spy)
    # StoreCore.close calls it through its own module's name.
    monkeypatch.setattr("wasmrt.vm.store.deallocate_module", spy)
    yield seen


def _pooling_engine() -> wasmrt.Engine:
    config = wasmrt.Config()
    config.allocation_strategy = wasmrt.PoolingAllocationConfig().total_memories(2)
    return wasmrt.Engine(config)


@pytest.mark.parametrize("pooling", [False, True], ids=["on-demand", "pooling"])
def test_failed_instantiation_releases_memory_bytes_once(
    pooling: bool, released: Counter[int], deallocations: list[Any]
) -> None:
    engine = _pooling_engine() if pooling else wasmrt.Engine()
    store = wasmrt.Store(engine)
    module = wasmrt.Module(engine, TRAPPING_START)
    with pytest.raises(wasmrt.Trap):
        wasmrt.Instance(store, module, [])
    assert len(deallocations) == 1
    (inst,) = deallocations
    assert inst.released and not inst.mem_slots and not inst.table_slots
    (mem,) = inst.mems
    assert mem.size == 0 and len(mem.data) == 0  # the bytes went back, not just the slot
    assert sum(released.values()) >= 1
    before = Counter(released)
    store.close()
    assert released == before  # nothing released twice
    if pooling:
        pool = engine.ptr().allocator.as_pooling()
        assert pool is not None and pool.is_empty()


def test_store_close_releases_each_instance_once(deallocations: list[Any]) -> None:
    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    module = wasmrt.Module(engine, OK)
    a = wasmrt.Instance(store, module, [])._instance
    b = wasmrt.Instance(store, module, [])._instance
    store.close()
    assert deallocations == [b, a]
    assert a.released and b.released
    assert a.mems[0].size == 0 and b.mems[0].size == 0


def test_a_store_is_charged_once() -> None:
    engine = wasmrt.Engine()
    kinds: Counter[AllocKind] = Counter()

    def hook(size: int, kind: AllocKind, absorbing: bool) -> None:
        kinds[kind] += 1

    with install_hook(hook):
        store = wasmrt.Store(engine)
    assert kinds[AllocKind.STORE] == 1
    store.close()
