"""Async embeddings: a ``ResourceLimiterAsync`` and the ``*_async`` API variants.

The limiter below really suspends: each decision awaits a future that the
event loop resolves on a later iteration (no sleeps), so it can only be
answered through the async variants.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import wasmrt as w
from wasmrt.runtime.limits import AsyncLimiterAdapter, ResourceLimiterAsync

PAGE = 65536

WAT = """
(module
  (memory (export "mem") 1 10)
  (table (export "tab") 1 10 funcref)
  (func (export "grow_mem") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "grow_tab") (param i32) (result i32)
    (table.grow (ref.null func) (local.get 0)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
"""


class Suspending(ResourceLimiterAsync):
    """Allows memories up to ``max_pages`` and tables up to ``max_elems``, after suspending."""

    def __init__(self, max_pages: int = 3, max_elems: int = 3) -> None:
        self.max_pages = max_pages
        self.max_elems = max_elems
        self.calls: list[tuple[str, int, int, int | None]] = []

    async def _suspend(self, answer: bool) -> bool:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        loop.call_soon(fut.set_result, answer)
        return await fut

    async def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        self.calls.append(("memory", current, desired, maximum))
        return await self._suspend(desired <= self.max_pages * PAGE)

    async def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        self.calls.append(("table", current, desired, maximum))
        return await self._suspend(desired <= self.max_elems)


def setup(limiter: ResourceLimiterAsync | None = None) -> tuple[w.Store, w.Module, Suspending]:
    engine = w.Engine()
    store = w.Store(engine)
    lim = limiter if limiter is not None else Suspending()
    store.limiter_async(lim)
    assert isinstance(lim, Suspending)
    return store, w.Module(engine, WAT), lim


def test_sync_apis_are_rejected_with_an_async_limiter() -> None:
    store, module, lim = setup()
    with pytest.raises(w.WasmtimeError, match="use `Instance.new_async`"):
        w.Instance(store, module, [])
    with pytest.raises(w.WasmtimeError, match="use `Linker.instantiate_async`"):
        w.Linker(store.engine).instantiate(store, module)
    with pytest.raises(w.WasmtimeError, match="use `InstancePre.instantiate_async`"):
        w.Linker(store.engine).instantiate_pre(module).instantiate(store)
    with pytest.raises(w.WasmtimeError, match="use `Memory.new_async`"):
        w.Memory(store, w.MemoryType(w.Limits(1, None)))
    with pytest.raises(w.WasmtimeError, match="use `Table.new_async`"):
        w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(1, None)), None)
    assert lim.calls == []
    with pytest.raises(TypeError):
        store.limiter_async(object())


def test_instantiate_call_and_grow_async() -> None:
    store, module, lim = setup()

    async def scenario() -> None:
        inst = await w.Instance.new_async(store, module, [])
        ex: Any = inst.exports(store)
        assert lim.calls == [("memory", 0, PAGE, 10 * PAGE), ("table", 0, 1, 10)]
        # Sync APIs stay rejected between async operations.
        with pytest.raises(w.WasmtimeError, match="use `Func.call_async`"):
            ex["add"](store, 1, 2)
        with pytest.raises(w.WasmtimeError, match="use `Memory.grow_async`"):
            ex["mem"].grow(store, 1)
        with pytest.raises(w.WasmtimeError, match="use `Table.grow_async`"):
            ex["tab"].grow(store, 1, None)
        assert await ex["add"].call_async(store, 40, 2) == 42
        # memory.grow inside wasm awaits the limiter while the call runs.
        assert await ex["grow_mem"].call_async(store, 1) == 1
        assert await ex["grow_mem"].call_async(store, 5) == -1  # refused: -1, not an error
        assert await ex["mem"].grow_async(store, 1) == 2
        with pytest.raises(w.WasmtimeError, match="failed to grow memory by `1`"):
            await ex["mem"].grow_async(store, 1)
        assert ex["mem"].size(store) == 3
        assert await ex["grow_tab"].call_async(store, 1) == 1
        assert await ex["tab"].grow_async(store, 1, None) == 2
        with pytest.raises(w.WasmtimeError, match="failed to grow table by `1`"):
            await ex["tab"].grow_async(store, 1, None)
        assert ex["tab"].size(store) == 3
        assert await ex["mem"].grow_async(store, 0) == 3  # delta 0: the limiter is not asked

    asyncio.run(scenario())
    assert ("memory", 2 * PAGE, 3 * PAGE, 10 * PAGE) in lim.calls
    assert ("table", 2, 3, 10) in lim.calls
    adapter = store.get_limiter()
    assert isinstance(adapter, AsyncLimiterAdapter) and not adapter.in_async_scope


def test_linker_and_instance_pre_async() -> None:
    store, module, lim = setup()
    linker = w.Linker(store.engine)
    pre = linker.instantiate_pre(module)

    async def scenario() -> tuple[int, int]:
        a = await linker.instantiate_async(store, module)
        b = await pre.instantiate_async(store)
        fa: Any = a.exports(store)["add"]
        fb: Any = b.exports(store)["add"]
        assert isinstance(fa, w.Func) and isinstance(fb, w.Func)
        return await fa.call_async(store, 1, 2), await fb.call_async(store, 3, 4)

    assert asyncio.run(scenario()) == (3, 7)
    assert [c[0] for c in lim.calls] == ["memory", "table", "memory", "table"]


def test_host_memory_and_table_async() -> None:
    store, _, lim = setup()

    async def scenario() -> None:
        mem = await w.Memory.new_async(store, w.MemoryType(w.Limits(2, None)))
        assert mem.size(store) == 2
        with pytest.raises(w.WasmtimeError):
            await w.Memory.new_async(store, w.MemoryType(w.Limits(4, None)))
        tab = await w.Table.new_async(
            store, w.TableType(w.ValType.funcref(), w.Limits(1, None)), None
        )
        assert tab.size(store) == 1

    asyncio.run(scenario())
    assert lim.calls[0] == ("memory", 0, 2 * PAGE, None)
    assert lim.calls[-1] == ("table", 0, 1, None)


def test_limiter_error_and_host_exception_propagate_unchanged() -> None:
    err = RuntimeError("limiter says no")

    class Raising(Suspending):
        async def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
            if desired > PAGE:
                raise err
            return True

    store, module, _ = setup(Raising())
    host_err = KeyError("host")

    def host() -> None:
        raise host_err

    async def scenario() -> None:
        inst = await w.Instance.new_async(store, module, [])
        with pytest.raises(RuntimeError) as e:
            await inst.exports(store)["mem"].grow_async(store, 1)  # type: ignore[union-attr,call-arg]
        assert e.value is err
        f = w.Func(store, w.FuncType([], []), host)
        with pytest.raises(KeyError) as k:
            await f.call_async(store)
        assert k.value is host_err

    asyncio.run(scenario())


def test_host_function_may_use_sync_apis_during_call_async() -> None:
    store, module, lim = setup()
    seen: list[int] = []

    async def scenario() -> None:
        inst = await w.Instance.new_async(store, module, [])
        mem: Any = inst.exports(store)["mem"]
        assert isinstance(mem, w.Memory)

        def grow_from_host() -> None:
            seen.append(mem.grow(store, 1))  # sync API inside an async call: allowed

        f = w.Func(store, w.FuncType([], []), grow_from_host)
        await f.call_async(store)

    asyncio.run(scenario())
    assert seen == [1]
    assert lim.calls[-1] == ("memory", PAGE, 2 * PAGE, 10 * PAGE)


def test_async_variants_without_an_async_limiter() -> None:
    engine = w.Engine()
    store = w.Store(engine)
    module = w.Module(engine, WAT)

    async def scenario() -> int:
        inst = await w.Instance.new_async(store, module, [])
        ex: Any = inst.exports(store)
        assert await ex["mem"].grow_async(store, 1) == 1
        assert await ex["tab"].grow_async(store, 1, None) == 1
        return int(await ex["add"].call_async(store, 2, 3))

    assert asyncio.run(scenario()) == 5
