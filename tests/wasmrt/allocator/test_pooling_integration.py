"""The pooling allocator through the public API: OOM sweep on one slot, tenant isolation,
metrics, clamping and Module-time validation.

Skipped, naming the missing piece, until the vm, compiler and public API exist.
"""

from __future__ import annotations

from typing import Any

import pytest

import wasmrt
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.errors import OutOfMemory

PAGE = 65536


class FailNth:
    """An allocation hook that refuses exactly the ``n``-th request (0-based)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0
        self.raised: OutOfMemory | None = None
        self.absorbed = False

    def __call__(self, size: int, kind: AllocKind, absorbing: bool) -> None:
        self.calls += 1
        if self.calls == self.n + 1:
            self.raised = OutOfMemory(size)
            self.absorbed = absorbing
            raise self.raised


def pooling_engine(w: Any, **knobs: int) -> Any:
    pool = w.PoolingAllocationConfig()
    pool.total_core_instances(knobs.pop("total_core_instances", 1))
    pool.total_memories(knobs.pop("total_memories", 1))
    pool.total_tables(knobs.pop("total_tables", 1))
    pool.max_memory_size(knobs.pop("max_memory_size", 4 * PAGE))
    pool.table_elements(knobs.pop("table_elements", 64))
    for name, value in knobs.items():
        getattr(pool, name)(value)
    cfg = w.Config()
    cfg.allocation_strategy = w.InstanceAllocationStrategy.pooling(pool)
    return w.Engine(cfg)


def live(metrics: Any) -> tuple[int, int, int]:
    return metrics.core_instances(), metrics.memories(), metrics.tables()


RICH = """
(module
  (import "" "host" (func $host (param i32) (result i32)))
  (import "" "g" (global $gi i32))
  (memory (export "mem") 1 2)
  (table (export "tab") 4 funcref)
  (global $g (export "g") (mut i32) (global.get $gi))
  (func $f (export "f") (param i32) (result i32)
    (i32.add (call $host (local.get 0)) (global.get $g)))
  (func $start
    (i32.store (i32.const 100) (i32.const 0x01020304))
    (global.set $g (i32.add (global.get $g) (i32.const 1))))
  (elem (i32.const 1) $f $start)
  (data (i32.const 8) "initial data")
  (start $start))
"""


def rich_imports(w: Any, store: Any) -> list[Any]:
    host = w.Func(store, w.FuncType([w.ValType.i32()], [w.ValType.i32()]), lambda x: x * 2)
    g = w.Global(store, w.GlobalType(w.ValType.i32(), False), w.Val.i32(10))
    return [host, g]


# --- (1) one slot, OOM at every allocation of an instantiation ---------------------


def test_oom_at_every_allocation_never_leaks_the_single_slot() -> None:
    w = wasmrt
    engine = pooling_engine(w)
    metrics = engine.pooling_allocator_metrics()
    module = w.Module(engine, RICH)
    failures = 0
    for n in range(10_000):
        store = w.Store(engine)
        imports = rich_imports(w, store)
        hook = FailNth(n)
        try:
            with install_hook(hook):
                w.Instance(store, module, imports)
        except OutOfMemory as e:
            assert e is hook.raised, f"iteration {n}: a different OutOfMemory surfaced"
            failures += 1
            assert live(metrics) == (0, 0, 0), f"iteration {n} leaked: {metrics!r}"
            # Hook removed: the single slot is free again, instantiation works.
            inst = w.Instance(store, module, imports)
            assert inst.exports(store)["f"](store, 1) == 2 + 11
            assert live(metrics) == (1, 1, 1)
            store.close()
            assert live(metrics) == (0, 0, 0)
            continue
        # No OOM was injected: the sweep has covered every allocation.
        assert hook.raised is None or hook.absorbed, f"iteration {n}: missed OOM"
        store.close()
        break
    else:
        pytest.fail("instantiation never completed without injection")
    assert failures > 3
    assert live(metrics) == (0, 0, 0)
    assert engine.ptr().allocator.as_pooling().is_empty()


# --- (2) tenant isolation --------------------------------------------------------

TENANT = """
(module
  (memory (export "mem") 1 2)
  (table (export "tab") 3 funcref)
  (func $secret (export "secret") (result i32) (i32.const 1337))
  (func (export "grow") (result i32) (memory.grow (i32.const 1))))
"""

OTHER = """
(module
  (memory (export "mem") 1 2)
  (table (export "tab") 3 funcref)
  (func (export "grow") (result i32) (memory.grow (i32.const 1)))
  (data (i32.const 0) "B"))
"""


@pytest.mark.parametrize("keep_resident", [0, PAGE, 3 * PAGE])
@pytest.mark.parametrize("second", ["same module", "other module"])
def test_reused_slot_never_shows_previous_tenant(keep_resident: int, second: str) -> None:
    w = wasmrt
    engine = pooling_engine(
        w, linear_memory_keep_resident=keep_resident, table_keep_resident=keep_resident
    )
    metrics = engine.pooling_allocator_metrics()
    tenant = w.Module(engine, TENANT)
    store = w.Store(engine)
    inst = w.Instance(store, tenant, [])
    ex = inst.exports(store)
    assert ex["grow"](store) == 1
    mem = ex["mem"]
    secret = bytes((i * 7 + 0xA5) & 0xFF or 1 for i in range(mem.data_len(store)))
    mem.write(store, secret, 0)
    tab = ex["tab"]
    for i in range(3):
        tab.set(store, i, ex["secret"])
    store.close()
    assert live(metrics) == (0, 0, 0)
    assert metrics.unused_warm_memories() == 1
    assert metrics.unused_memory_bytes_resident() == min(keep_resident, 2 * PAGE)

    module = tenant if second == "same module" else w.Module(engine, OTHER)
    store2 = w.Store(engine)
    inst2 = w.Instance(store2, module, [])
    ex2 = inst2.exports(store2)
    mem2 = ex2["mem"]
    assert mem2.size(store2) == 1
    expected = bytearray(PAGE)
    if module is not tenant:
        expected[0:1] = b"B"
    assert mem2.read(store2, 0, PAGE) == expected
    assert ex2["grow"](store2) == 1
    assert mem2.read(store2, PAGE, 2 * PAGE) == bytearray(PAGE)
    # A null element comes back as a Val that compares equal to None (wasmtime-py).
    assert all(ex2["tab"].get(store2, i) == None for i in range(3))  # noqa: E711
    assert metrics.unused_warm_memories() == 0
    store2.close()
    assert live(metrics) == (0, 0, 0)


# --- metrics, clamping, validation -------------------------------------------------


def test_metrics_follow_instances() -> None:
    w = wasmrt
    engine = pooling_engine(
        w,
        total_core_instances=10,
        total_memories=10,
        total_tables=10,
        linear_memory_keep_resident=PAGE,
        table_keep_resident=PAGE,
    )
    metrics = engine.pooling_allocator_metrics()
    assert isinstance(metrics, w.PoolingAllocatorMetrics)
    module = w.Module(engine, '(module (memory (export "m") 1) (table 1 funcref))')
    stores = []
    for _ in range(3):
        s = w.Store(engine)
        w.Instance(s, module, [])
        stores.append(s)
    assert live(metrics) == (3, 3, 3)
    assert metrics.unused_warm_memories() == 0
    for s in stores:
        s.close()
    assert live(metrics) == (0, 0, 0)
    assert metrics.unused_warm_memories() == 3
    assert metrics.unused_warm_tables() == 3
    assert metrics.unused_memory_bytes_resident() == 3 * PAGE
    assert metrics.unused_table_bytes_resident() == 3 * 4096
    assert metrics.stacks() == metrics.gc_heaps() == 0
    # Host-created memories never use the pool.
    s = w.Store(engine)
    w.Memory(s, w.MemoryType(w.Limits(1, None)))
    assert metrics.memories() == 0
    s.close()


def test_on_demand_engine_has_no_metrics() -> None:
    w = wasmrt
    assert w.Engine().pooling_allocator_metrics() is None


def test_pool_clamps_growth() -> None:
    w = wasmrt
    engine = pooling_engine(w, max_memory_size=2 * PAGE, table_elements=3)
    store = w.Store(engine)
    module = w.Module(
        engine,
        """(module (memory (export "m") 1) (table (export "t") 1 funcref)
             (func (export "grow") (result i32) (memory.grow (i32.const 1)))
             (func (export "tgrow") (result i32) (table.grow (ref.null func) (i32.const 1))))""",
    )
    ex = w.Instance(store, module, []).exports(store)
    assert ex["grow"](store) == 1
    assert ex["grow"](store) == -1
    with pytest.raises(w.WasmtimeError, match="failed to grow memory by `1`"):
        ex["m"].grow(store, 1)
    assert ex["tgrow"](store) == 1
    assert ex["tgrow"](store) == 2
    assert ex["tgrow"](store) == -1
    with pytest.raises(w.WasmtimeError, match="failed to grow table by `1`"):
        ex["t"].grow(store, 1, None)
    store.close()


def test_module_that_cannot_fit_fails_at_module_creation() -> None:
    w = wasmrt
    engine = pooling_engine(w, max_memory_size=PAGE)
    with pytest.raises(w.WasmtimeError) as e:
        w.Module(engine, "(module (memory 2))")
    assert "module memory does not fit in pooling allocator requirements" in str(e.value)
    assert "memory has a minimum byte size of 131072 which exceeds the limit of 65536 bytes" in str(
        e.value
    )
    with pytest.raises(w.WasmtimeError, match="defined tables count of 2 exceeds the per-instance"):
        w.Module(engine, "(module (table 1 funcref) (table 1 funcref))")
    with pytest.raises(w.WasmtimeError, match="table index 0 has a minimum element size of 65"):
        w.Module(engine, "(module (table 65 funcref))")
    # Imported memories are not the pool's business.
    w.Module(engine, '(module (import "" "m" (memory 5)))')


def test_engine_rejects_max_memory_size_above_reservation() -> None:
    w = wasmrt
    pool = w.PoolingAllocationConfig().max_memory_size(0x100010000)
    cfg = w.Config()
    cfg.memory_reservation = 0x10000
    cfg.allocation_strategy = w.InstanceAllocationStrategy.pooling(pool)
    with pytest.raises(w.WasmtimeError, match="exceeds the configured memory reservation"):
        w.Engine(cfg)


def test_serialized_module_is_validated_against_the_pool() -> None:
    w = wasmrt
    data = w.Module(w.Engine(), "(module (memory 2))").serialize()
    engine = pooling_engine(w, max_memory_size=PAGE)
    with pytest.raises(w.WasmtimeError, match="does not fit in pooling allocator"):
        w.Module.deserialize(engine, data)


@pytest.mark.parametrize("strategy", ["on-demand", "pooling", "pooling-config", "strategy"])
def test_allocation_strategy_accepts_every_form(strategy: str) -> None:
    w = wasmrt
    from wasmrt.vm.allocator import InstanceAllocationStrategy, PoolingAllocationConfig

    value: Any = {
        "on-demand": "on-demand",
        "pooling": "pooling",
        "pooling-config": PoolingAllocationConfig().total_memories(2),
        "strategy": InstanceAllocationStrategy.pooling(),
    }[strategy]
    cfg = w.Config()
    cfg.allocation_strategy = value
    engine = w.Engine(cfg)
    metrics = engine.pooling_allocator_metrics()
    assert (metrics is None) == (strategy == "on-demand")
    store = w.Store(engine)
    inst = w.Instance(store, w.Module(engine, '(module (memory (export "m") 1))'), [])
    assert inst.exports(store)["m"].size(store) == 1
    if metrics is not None:
        assert metrics.memories() == 1


def test_allocation_strategy_rejects_bad_values() -> None:
    w = wasmrt
    cfg = w.Config()
    with pytest.raises(w.WasmtimeError, match="unknown allocation strategy"):
        cfg.allocation_strategy = "bogus"
    with pytest.raises(TypeError):
        cfg.allocation_strategy = 3
    with pytest.raises(AttributeError):
        _ = cfg.allocation_strategy
    cfg.allocation_strategy = None  # back to the default
    assert w.Engine(cfg).pooling_allocator_metrics() is None


@pytest.mark.parametrize("pooling", [False, True])
def test_memory_reservation_reaches_allocator_memories(pooling: bool) -> None:
    w = wasmrt
    from wasmrt.vm.allocator import PoolingAllocationConfig

    cfg = w.Config()
    cfg.memory_reservation = 2 * PAGE
    if pooling:
        cfg.allocation_strategy = PoolingAllocationConfig().max_memory_size(2 * PAGE)
    engine = w.Engine(cfg)
    store = w.Store(engine)
    module = w.Module(engine, '(module (memory (export "m") 1))')
    mem = w.Instance(store, module, []).exports(store)["m"]
    host = w.Memory(store, w.MemoryType(w.Limits(1, None)))
    # Both the instance's memory (allocator) and the host one reserve exactly 2 pages.
    assert len(mem._memory.data) == 2 * PAGE
    assert len(host._memory.data) == 2 * PAGE
    assert mem.grow(store, 1) == 1
    if pooling:
        with pytest.raises(w.WasmtimeError):
            mem.grow(store, 1)  # clamped to max_memory_size
