"""Slot index allocation: cold/warm order, module affinity, max_unused_warm_slots."""

from __future__ import annotations

import pytest

from wasmrt.vm.allocator.index_allocator import (
    ModuleAffinityIndexAllocator,
    SimpleIndexAllocator,
)


def take(a: ModuleAffinityIndexAllocator, affinity: str | None) -> int:
    slot = a.alloc(affinity)
    assert slot is not None
    return slot


def test_cold_slots_in_order_then_exhausted() -> None:
    a = ModuleAffinityIndexAllocator(3, 100)
    assert [a.alloc("m"), a.alloc("m"), a.alloc("m")] == [0, 1, 2]
    assert a.alloc("m") is None
    assert not a.is_empty()
    assert a.num_used() == 3


def test_zero_capacity() -> None:
    a = ModuleAffinityIndexAllocator(0, 10)
    assert a.alloc("m") is None
    assert a.is_empty()


def test_affine_slot_reused_most_recent_first() -> None:
    a = ModuleAffinityIndexAllocator(4, 100)
    s0, s1, s2 = take(a, "m"), take(a, "m"), take(a, "other")
    a.free(s0)
    a.free(s2)
    a.free(s1)
    assert a.unused_warm_slots() == 3
    # Most recently freed slot affine to "m" is s1, then s0.
    assert a.alloc("m") == s1
    assert a.alloc("m") == s0
    # "m" has no affine slot left; warm count (1) < max (100): a cold slot comes first.
    assert a.alloc("m") == 3
    # No cold slot left: the least recently used warm slot (s2, affine to "other").
    assert a.alloc("m") == s2
    assert a.alloc("m") is None


def test_warm_slots_evicted_lru_when_over_threshold() -> None:
    a = ModuleAffinityIndexAllocator(4, 1)
    s0, s1 = take(a, "a"), take(a, "b")
    a.free(s0)
    a.free(s1)
    assert a.warm_slots() == [s0, s1]
    # 2 warm slots >= max 1: take the LRU warm slot rather than a cold one.
    assert a.alloc("c") == s0
    # Now 1 warm slot >= max 1 still: LRU warm again.
    assert a.alloc("d") == s1
    # No warm left: cold slots.
    assert a.alloc("e") == 2


def test_max_unused_warm_slots_zero_always_prefers_warm() -> None:
    a = ModuleAffinityIndexAllocator(3, 0)
    s = take(a, "a")
    a.free(s)
    assert a.alloc("b") == s


def test_free_unknown_or_double_free_raises() -> None:
    a = ModuleAffinityIndexAllocator(2, 10)
    with pytest.raises(ValueError):
        a.free(0)
    s = a.alloc(None)
    assert s is not None
    a.free(s)
    with pytest.raises(ValueError):
        a.free(s)
    with pytest.raises(ValueError):
        a.free(99)


def test_affinity_none_never_affine() -> None:
    a = ModuleAffinityIndexAllocator(2, 10)
    s = a.alloc(None)
    assert s is not None
    a.free(s)
    assert a.affine_keys() == []
    assert a.affinity_of(s) is None


def test_alloc_affine_and_clear_affinity() -> None:
    a = ModuleAffinityIndexAllocator(3, 10)
    s = a.alloc("m")
    assert s is not None
    a.free(s)
    assert a.alloc_affine_and_clear_affinity("x") is None
    assert a.alloc_affine_and_clear_affinity("m") == s
    a.free(s)
    assert a.affine_keys() == []
    assert a.unused_warm_slots() == 1


def test_simple_allocator_ignores_affinity_and_reuses_warm() -> None:
    a = SimpleIndexAllocator(2)
    s0 = a.alloc("m")
    a.free(s0)  # type: ignore[arg-type]
    assert a.affine_keys() == []
    assert a.alloc("n") == s0
    assert a.alloc("n") == 1
    assert a.alloc("n") is None
    assert len(a) == 2


def test_negative_capacity_rejected() -> None:
    with pytest.raises(ValueError):
        ModuleAffinityIndexAllocator(-1, 0)
