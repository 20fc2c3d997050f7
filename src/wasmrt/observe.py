"""A debug seam: an observer told of the runtime objects created and the fallible operations run.

Testing tools (oomfuzz) install an :class:`Observer` to check what the
runtime itself cannot see: that an object a run created is gone when the run
is (deep leaks), and that an operation that failed left its subject exactly
as before (atomicity). The runtime never depends on it.

Invariants:
- Zero cost when unset beyond one ``ContextVar.get`` and a ``None`` test per
  created object or observed operation; nothing here allocates through
  ``try_alloc``, so observing never changes a run's allocation count.
- The observer lives in a ``contextvars.ContextVar`` like the allocation
  hook: each thread has its own, each asyncio task a copy of its creator's.
- ``created(obj)`` is called once per vm object of the kinds listed in
  ``OBSERVED_KINDS`` (store core, module instance, linear memory, table,
  compiled module), at the end of its constructor.
- ``operation(name, subject, run)`` wraps one fallible operation on
  ``subject`` (``memory.grow``, ``table.grow``): it must call ``run()``
  exactly once and return its result or let its exception out unchanged.
  The operation failed when ``run()`` raised or returned -1. The callers
  of an observed operation go through this module (``grow_memory``,
  ``grow_table``: generated code and the embedder API), so the methods and
  their allocation sites are unchanged, and a replaced method is observed
  too.
- The runtime imports no testing tool: the observer is handed in by
  :func:`install_observer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

__all__ = [
    "OBSERVED_KINDS",
    "Observer",
    "created",
    "current_observer",
    "grow_memory",
    "grow_table",
    "install_observer",
]

#: What ``created`` reports (the vm classes' names).
OBSERVED_KINDS = ("StoreCore", "ModuleInstance", "LinearMemory", "TableInstance", "CompiledModule")

R = TypeVar("R")


class Observer(Protocol):
    """What a testing tool implements to watch the runtime."""

    def created(self, obj: object) -> None:
        """A vm object of one of the ``OBSERVED_KINDS`` was constructed."""
        ...

    def operation(self, name: str, subject: object, run: Callable[[], R]) -> R:
        """Run one fallible operation on ``subject`` (``run()`` exactly once)."""
        ...


_OBSERVER: ContextVar[Observer | None] = ContextVar("wasmrt_observer", default=None)


def current_observer() -> Observer | None:
    return _OBSERVER.get()


def created(obj: object) -> None:
    """Tell the installed observer (if any) that ``obj`` was constructed."""
    obs = _OBSERVER.get()
    if obs is not None:
        obs.created(obj)


def grow_memory(memory: Any, delta: int, from_wasm: bool) -> int:
    """``memory.grow(delta, from_wasm=...)``, observed as ``memory.grow`` when observing.

    Callers (generated code, the embedder API) grow through here rather than in the
    method, so the operation stays observed whatever ``grow`` is bound to.
    """
    obs = _OBSERVER.get()
    if obs is None:
        return int(memory.grow(delta, from_wasm=from_wasm))
    return obs.operation(
        "memory.grow", memory, lambda: int(memory.grow(delta, from_wasm=from_wasm))
    )


def grow_table(table: Any, delta: int, init: Any, from_wasm: bool) -> int:
    """``table.grow(delta, init, from_wasm=...)``, observed as ``table.grow`` when observing."""
    obs = _OBSERVER.get()
    if obs is None:
        return int(table.grow(delta, init, from_wasm=from_wasm))
    return obs.operation(
        "table.grow", table, lambda: int(table.grow(delta, init, from_wasm=from_wasm))
    )


@contextmanager
def install_observer(observer: Observer | None) -> Iterator[Observer | None]:
    """Install ``observer`` for the current context while the block runs (nestable)."""
    token = _OBSERVER.set(observer)
    try:
        yield observer
    finally:
        _OBSERVER.reset(token)
