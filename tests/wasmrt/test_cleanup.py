"""Failure paths leave the runtime as they found it; guests cannot exhaust the host.

Through the public API (``import wasmrt``), for both allocators:

- a limiter refusal, an exhausted pool, a trapping start function and a
  segment out-of-bounds trap each leave pool counts and slots unchanged and
  re-raise the original exception object;
- ``Store.close()``, ``with Store(...)`` and garbage collection each release
  every instance count, memory, table and slot exactly once (a counting
  allocator records every call);
- fuel, epochs, the stack limit and the limiter stop a looping, recursing or
  growing guest, and the host stays responsive afterwards.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections import Counter
from collections.abc import Hashable
from typing import Any

import pytest

import wasmrt

PAGE = 65536


class CountingAllocator:
    """Wraps a real allocator and records every call, checking pairing as it goes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.live: dict[int, str] = {}
        self.instances = 0

    def validate_module(self, module: Any) -> None:
        self.inner.validate_module(module)

    def increment_core_instance_count(self) -> None:
        self.inner.increment_core_instance_count()
        self.calls["increment"] += 1
        self.instances += 1

    def decrement_core_instance_count(self) -> None:
        assert self.instances > 0, "decrement without increment"
        self.inner.decrement_core_instance_count()
        self.calls["decrement"] += 1
        self.instances -= 1

    def allocate_memory(self, store: Any, ty: Any, key: Hashable, index: int) -> tuple[int, Any]:
        slot, memory = self.inner.allocate_memory(store, ty, key, index)
        self.calls["allocate_memory"] += 1
        self.live[id(memory)] = "memory"
        return slot, memory

    def deallocate_memory(self, slot: int, memory: Any) -> None:
        assert self.live.pop(id(memory)) == "memory", "memory released twice"
        self.calls["deallocate_memory"] += 1
        self.inner.deallocate_memory(slot, memory)

    def allocate_table(self, store: Any, ty: Any, key: Hashable, index: int) -> tuple[int, Any]:
        slot, table = self.inner.allocate_table(store, ty, key, index)
        self.calls["allocate_table"] += 1
        self.live[id(table)] = "table"
        return slot, table

    def deallocate_table(self, slot: int, table: Any) -> None:
        assert self.live.pop(id(table)) == "table", "table released twice"
        self.calls["deallocate_table"] += 1
        self.inner.deallocate_table(slot, table)

    def purge_module(self, key: Hashable) -> None:
        self.inner.purge_module(key)

    def as_pooling(self) -> Any:
        return self.inner.as_pooling()

    def balanced(self) -> bool:
        c = self.calls
        return (
            not self.live
            and self.instances == 0
            and c["increment"] == c["decrement"]
            and c["allocate_memory"] == c["deallocate_memory"]
            and c["allocate_table"] == c["deallocate_table"]
        )


def counting_engine(w: Any, pooling: Any = None, **config: Any) -> tuple[Any, CountingAllocator]:
    """An engine whose allocator is wrapped in a ``CountingAllocator``."""
    from wasmrt.vm.allocator import InstanceAllocationStrategy

    holder: list[CountingAllocator] = []

    class Counting(InstanceAllocationStrategy):
        def build_allocator(self, memory_reservation: int | None = None) -> Any:
            holder.append(CountingAllocator(super().build_allocator(memory_reservation)))
            return holder[0]

    cfg = w.Config()
    for name, value in config.items():
        setattr(cfg, name, value)
    cfg.allocation_strategy = Counting(pooling)
    engine = w.Engine(cfg)
    assert holder, "Engine did not build its allocator through the strategy"
    return engine, holder[0]


def small_pool(w: Any, **knobs: int) -> Any:
    cfg = w.PoolingAllocationConfig()
    cfg.total_core_instances(knobs.pop("total_core_instances", 2))
    cfg.total_memories(knobs.pop("total_memories", 2))
    cfg.total_tables(knobs.pop("total_tables", 2))
    cfg.max_memory_size(knobs.pop("max_memory_size", 4 * PAGE))
    cfg.table_elements(knobs.pop("table_elements", 100))
    for name, value in knobs.items():
        getattr(cfg, name)(value)
    return cfg


MODULE = """
(module
  (memory (export "mem") 1 3)
  (table (export "tab") 2 funcref)
  (global (export "g") (mut i32) (i32.const 7))
  (func $f (export "f") (result i32) (i32.const 42))
  (elem (i32.const 0) $f)
  (data (i32.const 8) "hello"))
"""

ALLOCATORS = ["on-demand", "pooling"]


def metrics_or_none(engine: Any) -> Any:
    return engine.pooling_allocator_metrics()


def live(metrics: Any) -> tuple[int, int, int]:
    return metrics.core_instances(), metrics.memories(), metrics.tables()


# --- (3) failure paths leave counts and slots unchanged ------------------------------


@pytest.mark.parametrize("strategy", ALLOCATORS)
def test_limiter_refusal_and_error_leave_no_trace(strategy: str) -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w) if strategy == "pooling" else None)
    module = w.Module(engine, MODULE)
    err = w.WasmtimeError("limiter exploded")

    class Policy(w.ResourceLimiter):  # type: ignore[misc,name-defined]
        mode = "refuse"

        def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
            if self.mode == "raise":
                raise err
            return self.mode != "refuse"

    store = w.Store(engine)
    policy = Policy()
    store.limiter(policy)
    with pytest.raises(w.WasmtimeError):
        w.Instance(store, module, [])
    assert counter.balanced()
    policy.mode = "raise"
    with pytest.raises(w.WasmtimeError) as e:
        w.Instance(store, module, [])
    assert e.value is err
    assert counter.balanced()
    metrics = metrics_or_none(engine)
    if metrics is not None:
        assert live(metrics) == (0, 0, 0)
    policy.mode = "allow"
    inst = w.Instance(store, module, [])
    assert inst.exports(store)["f"](store) == 42
    store.close()
    assert counter.balanced()


def test_exhausted_pool_leaves_no_trace() -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w, total_memories=1, total_tables=2))
    metrics = engine.pooling_allocator_metrics()
    module = w.Module(engine, MODULE)
    holder = w.Store(engine)
    w.Instance(holder, module, [])
    assert live(metrics) == (1, 1, 1)
    store = w.Store(engine)
    with pytest.raises(w.PoolConcurrencyLimitError) as e:
        w.Instance(store, module, [])
    assert (e.value.limit, e.value.kind) == (1, "memory stripe 0")
    assert live(metrics) == (1, 1, 1)
    holder.close()
    assert live(metrics) == (0, 0, 0)
    w.Instance(store, module, [])
    store.close()
    assert counter.balanced()


def test_exhausted_instance_and_table_pools() -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w, total_core_instances=1, total_tables=1))
    metrics = engine.pooling_allocator_metrics()
    module = w.Module(engine, MODULE)
    s1 = w.Store(engine)
    w.Instance(s1, module, [])
    with pytest.raises(w.PoolConcurrencyLimitError, match="for core instances reached"):
        w.Instance(w.Store(engine), module, [])
    s1.close()
    engine2, counter2 = counting_engine(w, small_pool(w, total_tables=1))
    m2 = engine2.pooling_allocator_metrics()
    module2 = w.Module(engine2, MODULE)
    s2 = w.Store(engine2)
    w.Instance(s2, module2, [])
    with pytest.raises(w.PoolConcurrencyLimitError, match="for tables reached"):
        w.Instance(w.Store(engine2), module2, [])
    assert live(m2) == (1, 1, 1)
    s2.close()
    assert live(metrics) == live(m2) == (0, 0, 0)
    assert counter.balanced() and counter2.balanced()


@pytest.mark.parametrize("strategy", ALLOCATORS)
def test_trapping_start_function_leaves_no_trace(strategy: str) -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w) if strategy == "pooling" else None)
    module = w.Module(
        engine,
        "(module (memory 1) (table 1 funcref) (func $s unreachable) (start $s))",
    )
    store = w.Store(engine)
    with pytest.raises(w.Trap) as e:
        w.Instance(store, module, [])
    assert e.value.trap_code == w.TrapCode.UNREACHABLE
    assert counter.balanced()
    metrics = metrics_or_none(engine)
    if metrics is not None:
        assert live(metrics) == (0, 0, 0)
    store.close()
    assert counter.balanced()


@pytest.mark.parametrize("strategy", ALLOCATORS)
def test_host_exception_in_start_is_the_same_object(strategy: str) -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w) if strategy == "pooling" else None)
    module = w.Module(
        engine,
        '(module (import "" "h" (func $h)) (memory 1) (table 1 funcref) (start $h))',
    )
    store = w.Store(engine)
    boom = KeyError("host says no")

    def host() -> None:
        raise boom

    func = w.Func(store, w.FuncType([], []), host)
    with pytest.raises(KeyError) as e:
        w.Instance(store, module, [func])
    assert e.value is boom
    assert counter.balanced()
    store.close()
    assert counter.balanced()


@pytest.mark.parametrize("strategy", ALLOCATORS)
@pytest.mark.parametrize(
    ("segment", "code"),
    [
        ('(data (i32.const 65535) "ab")', "MEMORY_OUT_OF_BOUNDS"),
        ("(elem (i32.const 1) $f $f)", "TABLE_OUT_OF_BOUNDS"),
    ],
)
def test_segment_out_of_bounds_leaves_no_trace(strategy: str, segment: str, code: str) -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w) if strategy == "pooling" else None)
    module = w.Module(engine, f"(module (memory 1) (table 1 funcref) (func $f) {segment})")
    store = w.Store(engine)
    with pytest.raises(w.Trap) as e:
        w.Instance(store, module, [])
    assert e.value.trap_code == getattr(w.TrapCode, code)
    assert counter.balanced()
    metrics = metrics_or_none(engine)
    if metrics is not None:
        assert live(metrics) == (0, 0, 0)
    store.close()


# --- (4) close / with / gc release everything exactly once ------------------------


def _instantiate_many(w: Any, engine: Any, store: Any, n: int = 2) -> None:
    module = w.Module(engine, MODULE)
    for _ in range(n):
        w.Instance(store, module, [])
    # Host-created memories and tables do not go through the allocator.
    w.Memory(store, w.MemoryType(w.Limits(1, None)))
    w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(1, None)), None)


@pytest.mark.parametrize("strategy", ALLOCATORS)
def test_close_releases_exactly_once(strategy: str) -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w) if strategy == "pooling" else None)
    store = w.Store(engine)
    _instantiate_many(w, engine, store)
    assert counter.calls["increment"] == 2 and counter.calls["allocate_memory"] == 2
    assert counter.calls["allocate_table"] == 2
    store.close()
    assert counter.balanced()
    store.close()  # idempotent: nothing released twice
    assert counter.calls["deallocate_memory"] == 2
    assert counter.balanced()
    metrics = metrics_or_none(engine)
    if metrics is not None:
        assert live(metrics) == (0, 0, 0)


@pytest.mark.parametrize("strategy", ALLOCATORS)
def test_with_store_releases_exactly_once(strategy: str) -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w) if strategy == "pooling" else None)
    with w.Store(engine) as store:
        _instantiate_many(w, engine, store)
        assert not counter.balanced()
    assert counter.balanced()
    assert counter.calls["deallocate_table"] == 2
    with pytest.raises(ValueError, match="already closed"):
        store.set_epoch_deadline(1)


@pytest.mark.parametrize("strategy", ALLOCATORS)
def test_garbage_collection_releases_exactly_once(strategy: str) -> None:
    w = wasmrt
    engine, counter = counting_engine(w, small_pool(w) if strategy == "pooling" else None)

    def scope() -> weakref.ref[Any]:
        store = w.Store(engine)
        _instantiate_many(w, engine, store)
        return weakref.ref(store)

    ref = scope()
    gc.collect()
    assert ref() is None, "the store was not collected"
    assert counter.balanced()
    assert counter.calls["deallocate_memory"] == 2
    metrics = metrics_or_none(engine)
    if metrics is not None:
        assert live(metrics) == (0, 0, 0)


# --- (5) guests cannot exhaust the host ------------------------------------------------

LOOP = """
(module
  (import "" "tick" (func $tick))
  (func (export "spin") (loop $l (br $l)))
  (func (export "spin_tick") (loop $l (call $tick) (br $l)))
  (func $rec (export "recurse") (call $rec))
  (func (export "answer") (result i32) (i32.const 42)))
"""


def test_fuel_stops_infinite_loop() -> None:
    w = wasmrt
    cfg = w.Config()
    cfg.consume_fuel = True
    engine = w.Engine(cfg)
    store = w.Store(engine)
    tick = w.Func(store, w.FuncType([], []), lambda: None)
    inst = w.Instance(store, w.Module(engine, LOOP), [tick])
    store.set_fuel(10_000)
    with pytest.raises(w.Trap) as e:
        inst.exports(store)["spin"](store)
    assert e.value.trap_code == w.TrapCode.OUT_OF_FUEL
    assert store.get_fuel() == 0
    store.set_fuel(100)
    assert inst.exports(store)["answer"](store) == 42


def test_epoch_from_host_function_stops_loop() -> None:
    w = wasmrt
    cfg = w.Config()
    cfg.epoch_interruption = True
    engine = w.Engine(cfg)
    store = w.Store(engine)
    ticks = []

    def tick() -> None:
        ticks.append(1)
        if len(ticks) == 5:
            engine.increment_epoch()

    inst = w.Instance(store, w.Module(engine, LOOP), [w.Func(store, w.FuncType([], []), tick)])
    store.set_epoch_deadline(1)
    with pytest.raises(w.Trap) as e:
        inst.exports(store)["spin_tick"](store)
    assert e.value.trap_code == w.TrapCode.INTERRUPT
    assert len(ticks) >= 5
    store.set_epoch_deadline(1)
    assert inst.exports(store)["answer"](store) == 42


def test_epoch_from_another_thread_stops_loop() -> None:
    w = wasmrt
    cfg = w.Config()
    cfg.epoch_interruption = True
    engine = w.Engine(cfg)
    store = w.Store(engine)
    tick = w.Func(store, w.FuncType([], []), lambda: None)
    inst = w.Instance(store, w.Module(engine, LOOP), [tick])
    store.set_epoch_deadline(1)
    # Started before the call; whenever it runs, the deadline is reached.
    bumper = threading.Thread(target=engine.increment_epoch)
    bumper.start()
    try:
        with pytest.raises(w.Trap) as e:
            inst.exports(store)["spin"](store)
    finally:
        bumper.join()
    assert e.value.trap_code == w.TrapCode.INTERRUPT
    store.set_epoch_deadline(1)
    assert inst.exports(store)["answer"](store) == 42


def test_infinite_recursion_is_stack_overflow() -> None:
    w = wasmrt
    store = w.Store()
    tick = w.Func(store, w.FuncType([], []), lambda: None)
    inst = w.Instance(store, w.Module(store.engine, LOOP), [tick])
    with pytest.raises(w.Trap) as e:
        inst.exports(store)["recurse"](store)
    assert e.value.trap_code == w.TrapCode.STACK_OVERFLOW
    assert inst.exports(store)["answer"](store) == 42


def test_unbounded_grow_stops_when_limiter_refuses() -> None:
    w = wasmrt
    store = w.Store()
    store.set_limits(memory_size=4 * PAGE)
    module = w.Module(
        store.engine,
        """(module (memory (export "m") 1)
             (func (export "grow_forever") (result i32) (local $n i32)
               (block $done
                 (loop $l
                   (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
                   (local.set $n (i32.add (local.get $n) (i32.const 1)))
                   (br $l)))
               (local.get $n))
             (func (export "answer") (result i32) (i32.const 42)))""",
    )
    inst = w.Instance(store, module, [])
    assert inst.exports(store)["grow_forever"](store) == 3
    assert inst.exports(store)["m"].size(store) == 4
    assert inst.exports(store)["answer"](store) == 42
