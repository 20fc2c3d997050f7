"""The try_alloc hook, its scoping, and the fallible containers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from wasmrt.alloc import (
    AllocKind,
    HostAlloc,
    TryDict,
    TryList,
    current_hook,
    install_hook,
    try_alloc,
)
from wasmrt.errors import MAX_REPORTED_SIZE, OutOfMemory, WasmtimeError


def refuse(size: int, kind: AllocKind, absorbing: bool) -> None:
    raise OutOfMemory(size)


def test_default_grants_everything() -> None:
    assert current_hook() is None
    try_alloc(1 << 40, AllocKind.MEMORY)


def test_hook_refuses_and_is_removed_on_exit() -> None:
    with install_hook(refuse):
        with pytest.raises(OutOfMemory) as info:
            try_alloc(123, AllocKind.TABLE)
    assert info.value.requested_allocation_size == 123
    assert isinstance(info.value, WasmtimeError)
    try_alloc(123, AllocKind.TABLE)


def test_hook_removed_even_when_block_raises() -> None:
    with pytest.raises(RuntimeError), install_hook(refuse):
        raise RuntimeError("boom")
    assert current_hook() is None


def test_hooks_nest() -> None:
    seen: list[str] = []
    with install_hook(lambda s, k, a: seen.append("outer")):
        with install_hook(lambda s, k, a: seen.append("inner")):
            try_alloc(1, AllocKind.OTHER)
        try_alloc(1, AllocKind.OTHER)
    assert seen == ["inner", "outer"]


def test_hook_is_per_thread() -> None:
    seen: list[int] = []
    errors: list[BaseException] = []

    def other() -> None:
        try:
            try_alloc(5, AllocKind.OTHER)  # no hook in a new thread
        except BaseException as e:  # recorded for the assertion below, then re-raised
            errors.append(e)
            raise

    with install_hook(lambda s, k, a: seen.append(s)):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert errors == [] and seen == []


def test_hook_is_inherited_by_asyncio_tasks() -> None:
    seen: list[AllocKind] = []

    async def task() -> None:
        try_alloc(1, AllocKind.FUNC)

    async def main() -> None:
        with install_hook(lambda s, k, a: seen.append(k)):
            await asyncio.create_task(task())

    asyncio.run(main())
    assert seen == [AllocKind.FUNC]


def test_absorbing_flag_reaches_hook() -> None:
    flags: list[bool] = []
    with install_hook(lambda s, k, a: flags.append(a)):
        try_alloc(65536, AllocKind.MEMORY, absorbing=True)
        try_alloc(8, AllocKind.LIST)
    assert flags == [True, False]


def test_out_of_memory_caps_huge_sizes_and_does_not_call_hook() -> None:
    calls: list[int] = []
    with install_hook(lambda s, k, a: calls.append(s)):
        e = OutOfMemory(10**30)
        str(e)
    assert e.requested_allocation_size == MAX_REPORTED_SIZE
    assert "out of memory (failed to allocate" in str(e)
    assert calls == []


def test_trylist_asks_on_growth_only() -> None:
    sizes: list[int] = []
    with install_hook(lambda s, k, a: sizes.append(s)):
        lst: TryList[int] = TryList()
        for i in range(100):
            lst.append(i)
    assert lst == list(range(100))
    assert 0 < len(sizes) <= 8  # doubling: O(log n) requests


def test_trylist_unchanged_when_refused() -> None:
    lst: TryList[int] = TryList.with_capacity(2)
    lst.append(1)
    lst.append(2)
    with install_hook(refuse), pytest.raises(OutOfMemory):
        lst.append(3)
    assert lst == [1, 2]
    with install_hook(refuse), pytest.raises(OutOfMemory):
        lst.extend([3, 4, 5])
    assert lst == [1, 2]


def test_trydict_asks_for_new_keys_and_stays_unchanged_when_refused() -> None:
    d: TryDict[str, int] = TryDict.with_capacity(1)
    d["a"] = 1
    with install_hook(refuse):
        d["a"] = 2  # existing key: no allocation
        with pytest.raises(OutOfMemory):
            d["b"] = 3
    assert d == {"a": 2}


def test_trydict_update_is_all_or_none() -> None:
    d: TryDict[str, int] = TryDict.with_capacity(2)
    d["a"] = 1
    calls: list[int] = []
    with install_hook(refuse), pytest.raises(OutOfMemory):
        d.update({"a": 10, "b": 2, "c": 3})  # two new keys, room for one
    assert d == {"a": 1}  # nothing inserted, not even the overwrite
    with install_hook(lambda s, k, a: calls.append(s)):
        d.update([("a", 10), ("b", 2), ("c", 3), ("d", 4)])
    assert d == {"a": 10, "b": 2, "c": 3, "d": 4}
    assert len(calls) == 1  # one reservation for all the new keys


def test_reserved_inserts_never_ask_and_refuse_without_room() -> None:
    d: TryDict[str, int] = TryDict()
    d.reserve(2, exact=True)
    lst: TryList[int] = TryList.with_capacity(1)
    with install_hook(refuse):  # any request would raise OutOfMemory
        d.put_reserved("a", 1)
        d.put_reserved("b", 2)
        d.put_reserved("a", 3)  # an existing key needs no room
        lst.append_reserved(7)
        with pytest.raises(RuntimeError, match="no reserved room"):
            d.put_reserved("c", 4)
        with pytest.raises(RuntimeError, match="no reserved room"):
            lst.append_reserved(8)
    assert d == {"a": 3, "b": 2}
    assert lst == [7]


def test_host_alloc_maps_the_hosts_refusal_to_out_of_memory() -> None:
    with pytest.raises(OutOfMemory) as ei:
        with HostAlloc(1 << 20):
            raise MemoryError  # what the host raises when it refuses
    assert ei.value.requested_allocation_size == 1 << 20
    assert ei.value.__cause__ is None and ei.value.__suppress_context__
    refused = OutOfMemory(5)
    with pytest.raises(OutOfMemory) as ei:  # a hook's refusal passes unchanged
        with HostAlloc(9):
            raise refused
    assert ei.value is refused
    with pytest.raises(ValueError):  # anything else is not an allocation failure
        with HostAlloc(9):
            raise ValueError("x")
    with HostAlloc(9):
        pass
