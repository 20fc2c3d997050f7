"""The pooling allocator on its own: config, validation messages, caps, slots, reset, metrics.

The vm constructors are replaced by small fakes (``monkeypatch`` on the
module attributes the allocator calls), so these tests do not depend on
``wasmrt.vm``.
"""

from __future__ import annotations

from typing import Any

import pytest

from wasmrt import ir
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.errors import OutOfMemory, PoolConcurrencyLimitError, WasmtimeError
from wasmrt.vm.allocator import (
    NO_SLOT,
    InstanceAllocationStrategy,
    InstanceAllocator,
    MpkEnabled,
    OnDemandInstanceAllocator,
    PoolingAllocationConfig,
    PoolingInstanceAllocator,
)
from wasmrt.vm.allocator import on_demand as on_demand_mod
from wasmrt.vm.allocator import pooling as pooling_mod

PAGE = 65536


class FakeMemory:
    def __init__(
        self,
        store: Any,
        ty: ir.MemoryType,
        *,
        max_pages_cap: int | None = None,
        reservation_cap: int | None = None,
    ) -> None:
        if getattr(store, "refuse", False):
            raise WasmtimeError("memory minimum size of 1 pages exceeds memory limits")
        self.store = store
        self.ty = ty
        self.size = ty.limits.min * PAGE
        self.data = bytearray(self.size)
        self.max_pages = max_pages_cap
        self.reservation = reservation_cap


class FakeTable:
    def __init__(
        self, store: Any, ty: ir.TableType, init: Any = None, *, max_cap: int | None = None
    ) -> None:
        if getattr(store, "refuse", False):
            raise WasmtimeError("table minimum size of 1 elements exceeds table limits")
        self.elements: list[Any] = [None] * ty.limits.min
        self.max = max_cap


class FakeStore:
    refuse = False


@pytest.fixture(autouse=True)
def fake_vm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pooling_mod, "LinearMemory", FakeMemory)
    monkeypatch.setattr(pooling_mod, "TableInstance", FakeTable)
    monkeypatch.setattr(on_demand_mod, "LinearMemory", FakeMemory)
    monkeypatch.setattr(on_demand_mod, "TableInstance", FakeTable)


def mem(min_pages: int, max_pages: int | None = None) -> ir.MemoryType:
    return ir.MemoryType(ir.Limits(min_pages, max_pages))


def table(min_elems: int, max_elems: int | None = None) -> ir.TableType:
    return ir.TableType("funcref", ir.Limits(min_elems, max_elems))


def module(mems: int = 0, tables: int = 0, mem_min: int = 1, table_min: int = 1) -> ir.Module:
    return ir.Module(
        mems=[mem(mem_min) for _ in range(mems)],
        tables=[table(table_min) for _ in range(tables)],
    )


def pool(**knobs: int) -> PoolingInstanceAllocator:
    cfg = PoolingAllocationConfig()
    for name, value in knobs.items():
        getattr(cfg, name)(value)
    return PoolingInstanceAllocator(cfg)


# --- configuration ---------------------------------------------------------------


def test_config_defaults_and_getters() -> None:
    cfg = PoolingAllocationConfig()
    assert cfg.get_total_core_instances() == 1000
    assert cfg.get_total_memories() == 1000
    assert cfg.get_total_tables() == 1000
    assert cfg.get_total_stacks() == 1000
    assert cfg.get_total_gc_heaps() == 1000
    assert cfg.get_total_component_instances() == 1000
    assert cfg.get_max_memories_per_module() == 1
    assert cfg.get_max_tables_per_module() == 1
    assert cfg.get_max_memory_size() == 4 << 30
    assert cfg.get_table_elements() == 20_000
    assert cfg.get_max_core_instance_size() == 1 << 20
    assert cfg.get_max_component_instance_size() == 1 << 20
    assert cfg.get_max_unused_warm_slots() == 100
    assert cfg.get_decommit_batch_size() == 1
    assert cfg.get_linear_memory_keep_resident() == 0
    assert cfg.get_table_keep_resident() == 0
    assert cfg.get_async_stack_keep_resident() == 0
    assert cfg.get_memory_protection_keys() is MpkEnabled.DISABLE
    assert cfg.get_max_memory_protection_keys() == 16


def test_every_setter_has_a_getter_and_chains() -> None:
    cfg = PoolingAllocationConfig()
    setters = [
        n
        for n in dir(cfg)
        if not n.startswith(("_", "get_", "are_", "is_")) and n not in ("copy", "build_allocator")
    ]
    assert len(setters) >= 20
    for name in setters:
        assert hasattr(cfg, "get_" + name), name
        current = getattr(cfg, "get_" + name)()
        assert getattr(cfg, name)(current) is cfg
    assert cfg.total_memories(3).total_tables(4) is cfg
    assert (cfg.get_total_memories(), cfg.get_total_tables()) == (3, 4)


def test_config_rejects_bad_values() -> None:
    cfg = PoolingAllocationConfig()
    with pytest.raises(TypeError):
        cfg.total_memories("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cfg.total_memories(True)
    with pytest.raises(WasmtimeError):
        cfg.total_memories(-1)
    with pytest.raises(WasmtimeError):
        cfg.total_memories(2**32)
    assert cfg.get_total_memories() == 1000


def test_allocator_copies_config() -> None:
    cfg = PoolingAllocationConfig().total_core_instances(1)
    a = PoolingInstanceAllocator(cfg)
    cfg.total_core_instances(5)
    a.increment_core_instance_count()
    with pytest.raises(PoolConcurrencyLimitError):
        a.increment_core_instance_count()
    assert a.config.get_total_core_instances() == 1


def test_engine_creation_fails_when_max_memory_size_exceeds_reservation() -> None:
    cfg = PoolingAllocationConfig().max_memory_size(0x100010000)
    with pytest.raises(WasmtimeError) as e:
        InstanceAllocationStrategy.pooling(cfg).build_allocator(memory_reservation=0x10000)
    assert str(e.value) == (
        "maximum memory size of 0x100010000 bytes exceeds the configured "
        "memory reservation of 0x10000 bytes"
    )
    # Without an explicit reservation, or with one large enough, it builds.
    assert InstanceAllocationStrategy.pooling(cfg).build_allocator().as_pooling() is not None
    assert cfg.build_allocator(memory_reservation=0x100010000).as_pooling() is not None


def test_mpk_enable_is_refused() -> None:
    cfg = PoolingAllocationConfig().memory_protection_keys("enable")
    with pytest.raises(WasmtimeError, match="mpk is disabled on this system"):
        PoolingInstanceAllocator(cfg)
    assert PoolingAllocationConfig.are_memory_protection_keys_available() is False
    PoolingInstanceAllocator(PoolingAllocationConfig().memory_protection_keys(MpkEnabled.AUTO))


def test_strategy_coercion() -> None:
    assert not InstanceAllocationStrategy.coerce(None).is_pooling
    assert not InstanceAllocationStrategy.coerce("on-demand").is_pooling
    assert InstanceAllocationStrategy.coerce("pooling").is_pooling
    cfg = PoolingAllocationConfig().total_memories(2)
    strat = InstanceAllocationStrategy.coerce(cfg)
    assert strat.pooling_config == cfg
    assert strat == InstanceAllocationStrategy.pooling(cfg)
    with pytest.raises(WasmtimeError):
        InstanceAllocationStrategy.coerce("bogus")
    with pytest.raises(TypeError):
        InstanceAllocationStrategy.coerce(3)
    a = InstanceAllocationStrategy.on_demand().build_allocator()
    assert isinstance(a, OnDemandInstanceAllocator)
    assert isinstance(a, InstanceAllocator)
    assert isinstance(strat.build_allocator(), InstanceAllocator)


def test_pool_bookkeeping_asks_try_alloc() -> None:
    seen: list[tuple[int, AllocKind]] = []

    def hook(size: int, kind: AllocKind, absorbing: bool) -> None:
        seen.append((size, kind))
        raise OutOfMemory(size)

    with install_hook(hook), pytest.raises(OutOfMemory):
        pool(total_memories=3, total_tables=2)
    assert seen == [(5 * 8, AllocKind.ENGINE)]


# --- validation ------------------------------------------------------------------


def test_validate_memories_per_module() -> None:
    a = pool()
    a.validate_module(module(mems=1, tables=1))
    with pytest.raises(WasmtimeError) as e:
        a.validate_module(module(mems=2))
    assert str(e.value) == (
        "module memory does not fit in pooling allocator requirements\n\nCaused by:\n"
        "    defined memories count of 2 exceeds the per-instance limit of 1"
    )


def test_validate_memory_size() -> None:
    a = pool(max_memory_size=PAGE)
    a.validate_module(module(mems=1, mem_min=1))
    m = ir.Module(
        imports=[ir.Import("env", "m", "memory", mem(0))],
        mems=[mem(2)],
    )
    with pytest.raises(WasmtimeError) as e:
        pool(max_memory_size=PAGE, max_memories_per_module=2).validate_module(m)
    assert str(e.value) == (
        "module memory does not fit in pooling allocator requirements\n\nCaused by:\n"
        "    0: memory index 1 is unsupported in this pooling allocator configuration\n"
        "    1: memory has a minimum byte size of 131072 which exceeds the limit of 65536 bytes"
    )


def test_validate_tables() -> None:
    with pytest.raises(WasmtimeError) as e:
        pool().validate_module(module(tables=2))
    assert str(e.value).endswith("defined tables count of 2 exceeds the per-instance limit of 1")
    assert str(e.value).startswith("module table does not fit in pooling allocator requirements")
    with pytest.raises(WasmtimeError) as e:
        pool(max_tables_per_module=5, total_tables=2).validate_module(module(tables=3))
    assert str(e.value).endswith("defined tables count of 3 exceeds the total tables limit of 2")
    with pytest.raises(WasmtimeError) as e:
        pool(table_elements=10).validate_module(module(tables=1, table_min=11))
    assert str(e.value) == (
        "module table does not fit in pooling allocator requirements\n\nCaused by:\n"
        "    table index 0 has a minimum element size of 11 which exceeds the limit of 10"
    )
    pool(table_elements=10).validate_module(module(tables=1, table_min=10))


def test_validate_order_memory_before_table() -> None:
    with pytest.raises(WasmtimeError, match="module memory does not fit"):
        pool().validate_module(module(mems=2, tables=2))


def test_validate_instance_size() -> None:
    big = ir.Module(funcs=[ir.Function(0) for _ in range(100)], types=[ir.FuncType((), ())])
    pool(max_core_instance_size=100_000).validate_module(big)
    with pytest.raises(WasmtimeError) as e:
        pool(max_core_instance_size=1000).validate_module(big)
    msg = str(e.value)
    assert msg.startswith(
        "module instance size does not fit in pooling allocator requirements\n\nCaused by:\n"
        "    instance allocation for this module requires "
    )
    assert "which exceeds the configured maximum of 1008 bytes; breakdown" in msg
    assert "bytes - func refs" in msg


def test_on_demand_validates_everything() -> None:
    OnDemandInstanceAllocator().validate_module(module(mems=5, tables=5, mem_min=70000))


# --- instance counts -------------------------------------------------------------


def test_core_instance_cap() -> None:
    a = pool(total_core_instances=2)
    m = a.metrics()
    a.increment_core_instance_count()
    a.increment_core_instance_count()
    with pytest.raises(PoolConcurrencyLimitError) as e:
        a.increment_core_instance_count()
    assert (e.value.limit, e.value.kind) == (2, "core instances")
    assert str(e.value) == "maximum concurrent limit of 2 for core instances reached"
    assert m.core_instances() == 2
    a.decrement_core_instance_count()
    a.increment_core_instance_count()
    a.decrement_core_instance_count()
    a.decrement_core_instance_count()
    assert m.core_instances() == 0
    with pytest.raises(ValueError):
        a.decrement_core_instance_count()


def test_component_instance_cap() -> None:
    a = pool(total_component_instances=0)
    with pytest.raises(PoolConcurrencyLimitError, match="component instances"):
        a.increment_component_instance_count()
    assert a.metrics().component_instances() == 0


# --- memory and table slots ------------------------------------------------------


def test_memory_slots_cap_and_release() -> None:
    a = pool(total_memories=2)
    m = a.metrics()
    store = FakeStore()
    s0, m0 = a.allocate_memory(store, mem(1), "mod", 0)
    s1, m1 = a.allocate_memory(store, mem(1), "mod", 0)
    assert {s0, s1} == {0, 1}
    with pytest.raises(PoolConcurrencyLimitError) as e:
        a.allocate_memory(store, mem(1), "mod", 0)
    assert (e.value.limit, e.value.kind) == (2, "memory stripe 0")
    assert m.memories() == 2
    a.deallocate_memory(s0, m0)
    a.deallocate_memory(s1, m1)
    assert m.memories() == 0
    assert m.unused_warm_memories() == 2
    assert a.is_empty()


def test_table_slots_cap() -> None:
    a = pool(total_tables=1)
    s, t = a.allocate_table(FakeStore(), table(1), "mod", 0)
    with pytest.raises(PoolConcurrencyLimitError) as e:
        a.allocate_table(FakeStore(), table(1), "mod", 0)
    assert (e.value.limit, e.value.kind) == (1, "tables")
    a.deallocate_table(s, t)
    assert a.metrics().tables() == 0
    assert a.metrics().unused_warm_tables() == 1


def test_failed_construction_leaves_no_trace() -> None:
    a = pool(total_memories=1, total_tables=1)
    m = a.metrics()
    before = m.snapshot()
    refusing = FakeStore()
    refusing.refuse = True
    with pytest.raises(WasmtimeError, match="exceeds memory limits"):
        a.allocate_memory(refusing, mem(1), "mod", 0)
    with pytest.raises(WasmtimeError, match="exceeds table limits"):
        a.allocate_table(refusing, table(1), "mod", 0)
    after = m.snapshot()
    assert after["memories"] == before["memories"] == 0
    assert after["tables"] == 0
    # The single slot is still usable.
    s, mm = a.allocate_memory(FakeStore(), mem(1), "mod", 0)
    a.deallocate_memory(s, mm)
    assert a.is_empty()


def test_oom_in_construction_propagates_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    err = OutOfMemory(65536)

    def boom(*args: object, **kwargs: object) -> None:
        raise err

    monkeypatch.setattr(pooling_mod, "LinearMemory", boom)
    a = pool(total_memories=1)
    with pytest.raises(OutOfMemory) as e:
        a.allocate_memory(FakeStore(), mem(1), "mod", 0)
    assert e.value is err
    assert a.is_empty()


def test_memory_affinity_reuses_same_slot() -> None:
    a = pool(total_memories=3)
    store = FakeStore()
    sa, ma = a.allocate_memory(store, mem(1), "A", 0)
    sb, mb = a.allocate_memory(store, mem(1), "B", 0)
    a.deallocate_memory(sa, ma)
    a.deallocate_memory(sb, mb)
    s, m = a.allocate_memory(store, mem(1), "A", 0)
    assert s == sa
    a.deallocate_memory(s, m)
    s, m = a.allocate_memory(store, mem(1), "B", 0)
    assert s == sb
    a.deallocate_memory(s, m)
    # Another memory index of A is a different affinity: gets the cold slot.
    s, m = a.allocate_memory(store, mem(1), "A", 1)
    assert s == 2
    a.deallocate_memory(s, m)


def test_purge_module_clears_affinity() -> None:
    a = pool(total_memories=2)
    s, m = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    a.deallocate_memory(s, m)
    a.purge_module("A")
    assert a._memory_index.affine_keys() == []
    assert a.metrics().unused_warm_memories() == 1


def test_runtime_clamps() -> None:
    a = pool(max_memory_size=3 * PAGE, table_elements=7)
    s, m = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    assert m.max_pages == 3
    a.deallocate_memory(s, m)
    s, m = a.allocate_memory(FakeStore(), mem(1, 2), "A", 0)
    assert m.max_pages == 2
    a.deallocate_memory(s, m)
    s, t = a.allocate_table(FakeStore(), table(1), "A", 0)
    assert t.max == 7
    a.deallocate_table(s, t)
    s, t = a.allocate_table(FakeStore(), table(1, 3), "A", 0)
    assert t.max == 3
    a.deallocate_table(s, t)
    with pytest.raises(WasmtimeError, match="minimum byte size of 262144"):
        a.allocate_memory(FakeStore(), mem(4), "A", 0)
    assert a.is_empty()


def test_reset_detaches_the_old_tenant() -> None:
    a = pool(total_memories=1, total_tables=1, linear_memory_keep_resident=PAGE)
    s, m = a.allocate_memory(FakeStore(), mem(2), "A", 0)
    m.data[:] = b"\xaa" * len(m.data)
    view = memoryview(m.data)  # a pinned view must not break deallocation
    a.deallocate_memory(s, m)
    assert (m.data, m.size) == (bytearray(), 0)  # the old tenant no longer sees anything
    view.release()
    assert a.metrics().unused_memory_bytes_resident() == PAGE
    s2, m2 = a.allocate_memory(FakeStore(), mem(2), "B", 0)
    assert s2 == s and m2.data == bytearray(2 * PAGE)
    a.deallocate_memory(s2, m2)
    ts, t = a.allocate_table(FakeStore(), table(3), "A", 0)
    secret = object()
    t.elements[:] = [secret] * 3
    a.deallocate_table(ts, t)
    assert t.elements == []


def test_resident_bytes_metrics() -> None:
    a = pool(
        total_memories=10,
        total_tables=10,
        linear_memory_keep_resident=PAGE,
        table_keep_resident=PAGE,
    )
    m = a.metrics()
    assert m.unused_memory_bytes_resident() == 0
    assert m.unused_table_bytes_resident() == 0
    live = []
    for _ in range(3):
        live.append(("m", *a.allocate_memory(FakeStore(), mem(2), "A", 0)))
        live.append(("t", *a.allocate_table(FakeStore(), table(1), "A", 0)))
    assert m.unused_memory_bytes_resident() == 0
    for kind, slot, obj in live:
        if kind == "m":
            a.deallocate_memory(slot, obj)
        else:
            a.deallocate_table(slot, obj)
    assert m.unused_warm_memories() == 3
    assert m.unused_warm_tables() == 3
    assert m.unused_memory_bytes_resident() == 3 * PAGE  # capped by keep_resident
    assert m.unused_table_bytes_resident() == 3 * 4096  # one host page per small table
    s, mm = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    assert m.unused_memory_bytes_resident() == 2 * PAGE
    a.deallocate_memory(s, mm)
    assert m.snapshot()["stacks"] == 0
    assert m.unused_stack_bytes_resident() is None


def test_zero_keep_resident_reports_nothing() -> None:
    a = pool(total_memories=1)
    s, mm = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    a.deallocate_memory(s, mm)
    assert a.metrics().unused_memory_bytes_resident() == 0


def test_decommit_batching_and_flush_on_exhaustion() -> None:
    a = pool(total_memories=2, decommit_batch_size=2)
    m = a.metrics()
    s0, m0 = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    s1, m1 = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    a.deallocate_memory(s0, m0)
    # Queued, not yet free; live count already down.
    assert m.memories() == 1
    assert m.unused_warm_memories() == 0
    # Pool looks full, so the allocator flushes the queue and retries.
    s2, m2 = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    assert s2 == s0
    a.deallocate_memory(s1, m1)
    a.deallocate_memory(s2, m2)  # second queued entry: batch reached, flushed
    assert m.unused_warm_memories() == 2
    assert a.is_empty()


def test_double_deallocate_is_detected() -> None:
    a = pool(total_memories=1, total_tables=1)
    s, mm = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    a.deallocate_memory(s, mm)
    with pytest.raises(ValueError):
        a.deallocate_memory(s, mm)
    ts, t = a.allocate_table(FakeStore(), table(1), "A", 0)
    a.deallocate_table(ts, t)
    with pytest.raises(ValueError):
        a.deallocate_table(ts, t)
    assert a.metrics().memories() == 0
    assert a.metrics().tables() == 0


def test_on_demand_allocator() -> None:
    a = OnDemandInstanceAllocator()
    a.increment_core_instance_count()
    a.decrement_core_instance_count()
    s, m = a.allocate_memory(FakeStore(), mem(1), "A", 0)
    assert s == NO_SLOT and isinstance(m, FakeMemory) and m.max_pages is None
    a.deallocate_memory(s, m)
    s, t = a.allocate_table(FakeStore(), table(2), "A", 0)
    assert s == NO_SLOT and t.elements == [None, None]
    a.deallocate_table(s, t)
    a.purge_module("A")
    assert a.as_pooling() is None
