"""Slot index allocation with module affinity (Wasmtime's ``ModuleAffinityIndexAllocator``).

Invariants:
- Every slot is in exactly one state: *cold* (never used), *used* (handed
  out, with the affinity it was requested for), or *warm* (used before, free
  now, remembering its affinity).
- Warm slots are kept in one least-recently-freed-first order, and per
  affinity in the same order; both views always hold the same set.
- ``alloc(affinity)`` picks, in this order: the most recently freed warm slot
  affine to ``affinity``; then, while fewer than ``max_unused_warm_slots``
  slots are warm, a cold slot (lowest index first) before the least recently
  used warm slot; otherwise the least recently used warm slot before a cold
  one. It returns ``None`` only when every slot is used.
- ``free(slot)`` accepts only a used slot (``ValueError`` otherwise), so a
  double free is detected rather than corrupting the pool.
- Not thread-safe by itself: the pooling allocator serialises access.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["ModuleAffinityIndexAllocator", "SimpleIndexAllocator"]

_USED = 1
_WARM = 2
_COLD = 0


class ModuleAffinityIndexAllocator:
    """Hands out slot indices ``0 .. capacity-1`` preferring slots warm for the same module."""

    def __init__(self, capacity: int, max_unused_warm_slots: int) -> None:
        if capacity < 0 or max_unused_warm_slots < 0:
            raise ValueError("capacity and max_unused_warm_slots must not be negative")
        self._capacity = capacity
        self._max_warm = max_unused_warm_slots
        self._state: list[int] = [_COLD] * capacity
        self._affinity: list[Hashable | None] = [None] * capacity
        self._next_cold = 0
        # slot -> None, ordered least recently freed first.
        self._warm: OrderedDict[int, None] = OrderedDict()
        self._affine: dict[Hashable, OrderedDict[int, None]] = {}

    def __len__(self) -> int:
        """Total number of slots."""
        return self._capacity

    @property
    def capacity(self) -> int:
        return self._capacity

    def num_used(self) -> int:
        return sum(1 for s in self._state if s == _USED)

    def is_empty(self) -> bool:
        """No slot is in use."""
        return all(s != _USED for s in self._state)

    def unused_warm_slots(self) -> int:
        return len(self._warm)

    def is_used(self, slot: int) -> bool:
        return 0 <= slot < self._capacity and self._state[slot] == _USED

    def affinity_of(self, slot: int) -> Hashable | None:
        return self._affinity[slot]

    def warm_slots(self) -> list[int]:
        """Warm slots, least recently freed first (for tests and diagnostics)."""
        return list(self._warm)

    def used_slots(self) -> list[int]:
        """The slots handed out, lowest first."""
        return [i for i, s in enumerate(self._state) if s == _USED]

    def problems(self) -> list[str]:
        """Broken invariants of the free structures (empty when consistent; diagnostics)."""
        out: list[str] = []
        warm_state = {i for i, s in enumerate(self._state) if s == _WARM}
        if set(self._warm) != warm_state:
            out.append(
                f"warm list {sorted(self._warm)} != slots in the warm state {sorted(warm_state)}"
            )
        for affinity, slots in self._affine.items():
            for slot in slots:
                if slot not in self._warm or self._affinity[slot] != affinity:
                    out.append(f"slot {slot} listed warm for an affinity it does not hold")
        cold = [i for i, s in enumerate(self._state) if s == _COLD]
        if any(i < self._next_cold for i in cold):
            out.append(f"cold slots {cold} below the next cold slot {self._next_cold}")
        if any(s == _COLD for s in self._state[: self._next_cold]) or any(
            s != _COLD for s in self._state[self._next_cold :]
        ):
            out.append("a slot past the next cold slot was used")
        return sorted(set(out))

    def alloc(self, affinity: Hashable | None = None) -> int | None:
        slot = self._pick_affine(affinity)
        if slot is None:
            if len(self._warm) < self._max_warm:
                slot = self._pick_cold()
                if slot is None:
                    slot = self._pick_warm()
            else:
                slot = self._pick_warm()
                if slot is None:
                    slot = self._pick_cold()
        if slot is None:
            return None
        self._state[slot] = _USED
        self._affinity[slot] = affinity
        return slot

    def alloc_affine_and_clear_affinity(self, affinity: Hashable) -> int | None:
        """Take a warm slot affine to ``affinity`` (if any) and mark it used with no affinity."""
        slot = self._pick_affine(affinity)
        if slot is None:
            return None
        self._state[slot] = _USED
        self._affinity[slot] = None
        return slot

    def free(self, slot: int) -> None:
        if not self.is_used(slot):
            raise ValueError(f"slot {slot} is not in use")
        self._state[slot] = _WARM
        self._warm[slot] = None
        affinity = self._affinity[slot]
        if affinity is not None:
            self._affine.setdefault(affinity, OrderedDict())[slot] = None

    def affine_keys(self) -> list[Hashable]:
        return list(self._affine)

    # Internal pickers: each removes the slot from the free structures.

    def _pick_affine(self, affinity: Hashable | None) -> int | None:
        if affinity is None:
            return None
        slots = self._affine.get(affinity)
        if not slots:
            return None
        slot = next(reversed(slots))  # most recently freed
        self._remove_warm(slot)
        return slot

    def _pick_warm(self) -> int | None:
        if not self._warm:
            return None
        slot = next(iter(self._warm))  # least recently freed
        self._remove_warm(slot)
        return slot

    def _pick_cold(self) -> int | None:
        if self._next_cold >= self._capacity:
            return None
        slot = self._next_cold
        self._next_cold += 1
        return slot

    def _remove_warm(self, slot: int) -> None:
        del self._warm[slot]
        affinity = self._affinity[slot]
        if affinity is not None:
            slots = self._affine[affinity]
            del slots[slot]
            if not slots:
                del self._affine[affinity]


class SimpleIndexAllocator(ModuleAffinityIndexAllocator):
    """An index allocator without affinity (Wasmtime uses it for tables and stacks)."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, 0)

    def alloc(self, affinity: Hashable | None = None) -> int | None:
        return super().alloc(None)
