"""``PoolingInstanceAllocator.slot_state()`` and the index allocators' ``problems()``:
occupancy and bookkeeping as plain data, empty ``problems`` while consistent."""

from __future__ import annotations

import wasmrt
from wasmrt.vm.allocator.index_allocator import ModuleAffinityIndexAllocator

WAT = '(module (memory 1) (table 2 funcref) (func (export "f") (result i32) i32.const 1))'


def pooled_engine() -> wasmrt.Engine:
    cfg = wasmrt.Config()
    pool = wasmrt.PoolingAllocationConfig()
    pool.total_memories(2)
    pool.total_tables(2)
    pool.total_core_instances(2)
    cfg.allocation_strategy = pool
    return wasmrt.Engine(cfg)


def test_slot_state_follows_a_store_and_stays_consistent() -> None:
    engine = pooled_engine()
    pool = engine.ptr().allocator.as_pooling()
    assert pool.slot_state()["memory_slots_used"] == []
    store = wasmrt.Store(engine)
    wasmrt.Instance(store, wasmrt.Module(engine, WAT), [])
    state = pool.slot_state()
    assert state["memory_slots_used"] == [0] and state["table_slots_used"] == [0]
    assert state["problems"] == []
    store.close()
    state = pool.slot_state()
    assert state["memory_slots_used"] == [] and state["table_slots_used"] == []
    assert state["problems"] == []
    assert 0 in state["warm_memory_slots"] or ("memory", 0) in state["decommit_queue"]


def test_a_slot_in_use_without_a_tenant_is_a_problem() -> None:
    engine = pooled_engine()
    pool = engine.ptr().allocator.as_pooling()
    store = wasmrt.Store(engine)
    wasmrt.Instance(store, wasmrt.Module(engine, WAT), [])
    tenant = pool._table_slots[0].tenant
    pool._table_slots[0].tenant = None  # what a deallocation that forgets the slot leaves
    try:
        assert pool.slot_state()["problems"] == ["table slot 0 in use without a tenant"]
    finally:
        pool._table_slots[0].tenant = tenant
    store.close()


def test_index_allocator_problems() -> None:
    a = ModuleAffinityIndexAllocator(3, 3)
    s = a.alloc("m")
    assert s is not None
    a.free(s)
    assert a.problems() == []
    a._warm.pop(s)  # a warm slot lost from the warm list
    assert any("warm list" in p for p in a.problems())
