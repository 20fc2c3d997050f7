"""Resource limiters: defaults, StoreLimits semantics, set_limits, async adapter.

The first part tests ``wasmrt.runtime.limits`` on its own; the last part goes
through the public API (Store.set_limits / Store.limiter).
"""

from __future__ import annotations

import asyncio

import pytest

import wasmrt
from wasmrt.errors import WasmtimeError
from wasmrt.runtime.limits import (
    DEFAULT_INSTANCE_LIMIT,
    AsyncLimiterAdapter,
    ResourceLimiter,
    ResourceLimiterAsync,
    StoreLimits,
    StoreLimitsBuilder,
    context_error,
    drive_sync,
    format_context,
)

PAGE = 65536


def test_resource_limiter_defaults() -> None:
    lim = ResourceLimiter()
    assert lim.instances() == lim.tables() == lim.memories() == 10_000 == DEFAULT_INSTANCE_LIMIT
    assert lim.memory_growing(0, PAGE, None) is True
    assert lim.table_growing(0, 10, None) is True
    lim.memory_grow_failed(WasmtimeError("x"))  # logs, does not raise
    lim.table_grow_failed(WasmtimeError("x"))


def test_store_limits_defaults() -> None:
    lim = StoreLimitsBuilder().build()
    assert lim.memory_size is None and lim.table_elements is None
    assert (lim.instances(), lim.tables(), lim.memories()) == (10_000, 10_000, 10_000)
    assert lim.trap_on_grow_failure is False
    assert lim.memory_growing(0, 1 << 40, None) is True
    # The maximum is still respected by the default policy.
    assert lim.memory_growing(0, 2 * PAGE, PAGE) is False
    assert lim.table_growing(0, 5, 4) is False
    assert lim.table_growing(0, 4, 4) is True


def test_store_limits_per_memory_and_per_table() -> None:
    lim = StoreLimitsBuilder().memory_size(2 * PAGE).table_elements(3).build()
    # Each memory on its own may reach the limit: the limiter only sees one memory's size.
    assert lim.memory_growing(0, 2 * PAGE, None) is True
    assert lim.memory_growing(0, 2 * PAGE, None) is True
    assert lim.memory_growing(2 * PAGE, 3 * PAGE, None) is False
    assert lim.table_growing(0, 3, None) is True
    assert lim.table_growing(3, 4, None) is False


def test_store_limits_counts() -> None:
    lim = StoreLimitsBuilder().instances(1).tables(2).memories(3).build()
    assert (lim.instances(), lim.tables(), lim.memories()) == (1, 2, 3)


def test_trap_on_grow_failure_messages() -> None:
    lim = (
        StoreLimitsBuilder().memory_size(PAGE).table_elements(1).trap_on_grow_failure(True).build()
    )
    assert lim.memory_growing(0, PAGE, None) is True
    with pytest.raises(WasmtimeError) as e:
        lim.memory_growing(PAGE, 2 * PAGE, None)
    assert str(e.value) == f"forcing trap when growing memory to {2 * PAGE} bytes"
    with pytest.raises(WasmtimeError) as e:
        lim.table_growing(1, 2, None)
    assert str(e.value) == "forcing trap when growing table to 2 elements"
    # Refusal because of the maximum also traps.
    with pytest.raises(WasmtimeError, match="forcing trap when growing table to 9 elements"):
        StoreLimitsBuilder().trap_on_grow_failure(True).build().table_growing(0, 9, 8)


def test_grow_failed_hooks() -> None:
    cause = WasmtimeError("Memory maximum size exceeded")
    StoreLimits().memory_grow_failed(cause)  # does not raise
    trapping = StoreLimitsBuilder().trap_on_grow_failure(True).build()
    with pytest.raises(WasmtimeError) as e:
        trapping.memory_grow_failed(cause)
    assert str(e.value) == (
        "forcing a memory growth failure to be a trap\n\nCaused by:\n    Memory maximum size exceeded"
    )
    assert e.value.__cause__ is cause
    with pytest.raises(WasmtimeError) as e:
        trapping.table_grow_failed(WasmtimeError("Table maximum size exceeded"))
    assert str(e.value).startswith("forcing a table growth failure to be a trap\n\nCaused by:")


def test_context_chain_formatting() -> None:
    assert format_context("outer") == "outer"
    assert format_context("a", "b", "c") == "a\n\nCaused by:\n    0: b\n    1: c"
    inner = context_error("middle", ValueError("root"))
    outer = context_error("top", inner)
    assert str(outer) == "top\n\nCaused by:\n    0: middle\n    1: root"


def test_from_set_limits_fresh_and_negative_means_default() -> None:
    first = StoreLimits.from_set_limits(memory_size=PAGE, table_elements=1, instances=2)
    assert (first.memory_size, first.table_elements, first.instances()) == (PAGE, 1, 2)
    second = StoreLimits.from_set_limits(tables=5)
    assert second is not first
    # Fields not passed again are back to their defaults.
    assert second.memory_size is None and second.table_elements is None
    assert (second.instances(), second.tables(), second.memories()) == (10_000, 5, 10_000)
    zero = StoreLimits.from_set_limits(memory_size=0)
    assert zero.memory_growing(0, PAGE, None) is False
    assert zero.memory_growing(0, 0, None) is True
    with pytest.raises(TypeError):
        StoreLimits.from_set_limits(memory_size="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        StoreLimits.from_set_limits(instances=1.5)  # type: ignore[arg-type]


def test_builder_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        StoreLimitsBuilder().memory_size(-1)
    with pytest.raises(TypeError):
        StoreLimitsBuilder().instances("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        StoreLimitsBuilder().trap_on_grow_failure(1)  # type: ignore[arg-type]


class CountingAsync(ResourceLimiterAsync):
    def __init__(self, suspend: bool) -> None:
        self.suspend = suspend
        self.calls: list[tuple[str, int, int, int | None]] = []

    async def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        self.calls.append(("memory", current, desired, maximum))
        if self.suspend:
            await asyncio.sleep(0)
        return desired <= 2 * PAGE

    async def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        self.calls.append(("table", current, desired, maximum))
        if self.suspend:
            await asyncio.sleep(0)
        return desired <= 2

    def instances(self) -> int:
        return 7


def test_async_limiter_predecided_answers_are_consumed() -> None:
    inner = CountingAsync(suspend=True)
    adapter = AsyncLimiterAdapter(inner)
    assert adapter.instances() == 7

    async def scenario() -> list[bool]:
        a = await adapter.predecide_memory(0, 3 * PAGE, None)
        b = await adapter.predecide_table(0, 1, None)
        return [a, b]

    assert asyncio.run(scenario()) == [False, True]
    # The synchronous protocol (what the vm calls) consumes the answers without re-asking.
    assert adapter.memory_growing(0, 3 * PAGE, None) is False
    assert adapter.table_growing(0, 1, None) is True
    assert len(inner.calls) == 2
    # Without a pre-decided answer, a suspending limiter cannot be driven synchronously.
    with pytest.raises(WasmtimeError, match="use the `_async` variant"):
        adapter.memory_growing(0, PAGE, None)


def test_async_limiter_decides_only_inside_an_async_scope() -> None:
    inner = CountingAsync(suspend=False)
    adapter = AsyncLimiterAdapter(inner)
    # Outside an ``*_async`` operation a sync decision is refused, as in Wasmtime.
    with pytest.raises(WasmtimeError, match="use the `_async` variant"):
        adapter.memory_growing(0, PAGE, None)
    assert inner.calls == []
    # Inside a scope on the loop's own thread, a coroutine that never suspends is driven.
    with adapter.async_scope():
        assert adapter.in_async_scope
        assert adapter.memory_growing(0, PAGE, None) is True
        assert adapter.memory_growing(0, 3 * PAGE, None) is False
        assert adapter.table_growing(0, 3, None) is False
    assert not adapter.in_async_scope


def test_async_limiter_errors_propagate_unchanged() -> None:
    err = RuntimeError("no")

    class Raising(ResourceLimiterAsync):
        async def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
            raise err

    adapter = AsyncLimiterAdapter(Raising())
    with adapter.async_scope(), pytest.raises(RuntimeError) as e:
        adapter.memory_growing(0, PAGE, None)
    assert e.value is err
    with pytest.raises(RuntimeError) as e:
        asyncio.run(adapter.predecide_memory(0, PAGE, None))
    assert e.value is err


def test_async_defaults_and_drive_sync() -> None:
    lim = ResourceLimiterAsync()
    assert drive_sync(lim.memory_growing(0, PAGE, None), "x") is True
    assert drive_sync(lim.table_growing(0, 1, None), "x") is True
    assert lim.instances() == lim.tables() == lim.memories() == 10_000
    lim.memory_grow_failed(WasmtimeError("x"))


# --- through the public API ---------------------------------------------------------


def test_set_limits_memory_size_zero_refuses_memory() -> None:
    w = wasmrt
    store = w.Store()
    store.set_limits(memory_size=0)
    with pytest.raises(w.WasmtimeError):
        w.Memory(store, w.MemoryType(w.Limits(1, None)))
    store.set_limits()  # fresh limits: back to defaults
    w.Memory(store, w.MemoryType(w.Limits(1, None)))


def test_set_limits_table_elements() -> None:
    w = wasmrt
    store = w.Store()
    store.set_limits(table_elements=1)
    w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(1, None)), None)
    with pytest.raises(w.WasmtimeError):
        w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(2, None)), None)


def test_wasm_grow_returns_minus_one_and_embedder_grow_raises() -> None:
    w = wasmrt
    store = w.Store()
    store.set_limits(memory_size=2 * PAGE)
    module = w.Module(
        store.engine,
        """(module (memory (export "m") 1)
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))""",
    )
    inst = w.Instance(store, module, [])
    grow = inst.exports(store)["grow"]
    assert grow(store, 1) == 1
    assert grow(store, 1) == -1
    mem = inst.exports(store)["m"]
    with pytest.raises(w.WasmtimeError, match="failed to grow memory by `1`"):
        mem.grow(store, 1)
    assert mem.size(store) == 2


def test_instance_count_limit_message() -> None:
    w = wasmrt
    store = w.Store()
    store.set_limits(instances=1)
    module = w.Module(store.engine, "(module)")
    w.Instance(store, module, [])
    with pytest.raises(
        w.WasmtimeError, match="resource limit exceeded: instance count too high at 2"
    ):
        w.Instance(store, module, [])


def test_custom_limiter_three_way() -> None:
    w = wasmrt
    err = RuntimeError("limiter says no")

    class Policy(ResourceLimiter):
        def __init__(self) -> None:
            self.mode = "allow"
            self.seen: list[tuple[int, int, int | None]] = []

        def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
            self.seen.append((current, desired, maximum))
            if self.mode == "raise":
                raise err
            return self.mode == "allow"

    policy = Policy()
    store = w.Store()
    store.limiter(policy)
    module = w.Module(
        store.engine,
        """(module (memory 1 4)
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))""",
    )
    inst = w.Instance(store, module, [])
    assert policy.seen[0] == (0, PAGE, 4 * PAGE)  # creation asks with current 0
    grow = inst.exports(store)["grow"]
    assert grow(store, 1) == 1
    policy.mode = "refuse"
    assert grow(store, 1) == -1
    policy.mode = "raise"
    with pytest.raises(RuntimeError) as e:
        grow(store, 1)
    assert e.value is err  # the limiter's own exception object, unchanged
    policy.mode = "allow"
    assert grow(store, 1) == 2  # the store is still usable


def test_async_limiter_through_the_store() -> None:
    w = wasmrt
    store = w.Store()
    inner = CountingAsync(suspend=False)
    store.limiter(inner)
    adapter = store.get_limiter()
    assert isinstance(adapter, AsyncLimiterAdapter) and adapter.inner is inner
    # Sync APIs are rejected on a store with an async limiter (tests/wasmrt/test_async.py
    # covers the ``*_async`` variants).
    with pytest.raises(w.WasmtimeError, match="use `Memory.new_async`"):
        w.Memory(store, w.MemoryType(w.Limits(1, None)))
    assert inner.calls == []
