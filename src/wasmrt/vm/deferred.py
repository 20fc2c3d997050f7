"""Finalizers deferred while wasm runs: a collector pass deep in wasm recursion needs no stack.

Wasm call depth is bounded by the Python recursion limit (``StoreCore.call``),
so while wasm runs a thread may be a handful of frames below the limit. The
cyclic collector can start at any allocation, including there (for instance
while a ``RecursionError`` unwinds and allocates its traceback), and run
``__del__`` methods of unrelated garbage. A finalizer that needs a few frames
(closing a store walks its instances and the allocator) would then fail with
``RecursionError`` and be reported as unraisable.

Invariants:
- ``RUNNING`` is ``vm.store``'s registry of the outermost wasm entries running
  now (all threads): non-empty exactly while some thread is inside wasm.
- A wasmrt finalizer with real work (``Managed.__del__``) does nothing itself
  while ``RUNNING`` is non-empty: it parks a ``Deferred`` holding the object
  in ``PENDING``, which needs no Python frame beyond the ``__del__`` itself.
- ``drain()`` empties ``PENDING`` one entry at a time; each ``Deferred``'s own
  ``__del__`` then closes its object, so an error there is reported exactly
  as a ``__del__``'s would have been (Python's unraisable hook). It runs at
  the outermost exit of ``StoreCore.call`` (the stack is shallow there) and
  when a store is created, so a parked object is closed no later than the
  next time some thread leaves wasm or builds a store.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PENDING", "RUNNING", "Deferred", "defer", "drain"]

#: Recursion limits needed by the outermost wasm entries running now (``vm.store._NEEDS``).
RUNNING: list[int] = []
#: ``Deferred`` finalizers waiting for a shallow stack.
PENDING: list[Deferred] = []


class Deferred:
    """Closes ``obj`` when dropped (by ``drain``)."""

    __slots__ = ("obj",)

    obj: Any

    def __del__(self) -> None:
        self.obj.close()


def defer(obj: Any) -> None:
    """Park ``obj`` (something with ``close()``) until the next ``drain``."""
    d = Deferred()
    d.obj = obj
    PENDING.append(d)


def drain() -> None:
    """Run the parked finalizers (call only where the stack is shallow)."""
    pop = PENDING.pop
    while PENDING:
        pop()
