"""``Managed``: the lifecycle shared by objects that own a runtime handle.

Invariants:
- A managed object holds exactly one handle until ``close()``; ``close()`` is
  idempotent and releases the handle through ``_delete`` at most once.
- After ``close()`` (or after ``_consume()`` handed the handle to another
  object) every use goes through ``ptr()`` and raises
  ``ValueError('already closed')``; an object whose handle was never set
  raises ``ValueError('never initialized')``.
- ``with X(...) as x:`` closes on exit and ``__del__`` closes as well, so a
  forgotten object still releases its handle when collected. While wasm runs
  (``wasmrt.vm.deferred.RUNNING``), ``__del__`` only parks the object
  (``wasmrt.vm.deferred``): the collector may have called it a few frames below
  the recursion limit, deep in wasm recursion, where closing could not run.
  The close then happens at the next outermost wasm exit or store creation.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from wasmrt.vm.deferred import PENDING as _PENDING
from wasmrt.vm.deferred import RUNNING as _RUNNING
from wasmrt.vm.deferred import Deferred as _Deferred

T = TypeVar("T")

_UNSET: Any = object()


class Managed(Generic[T]):
    """Base class of the public objects that own a handle (Config, Engine, Store...)."""

    _managed_ptr: Any = _UNSET

    def _delete(self, ptr: T) -> None:
        """Release ``ptr``; subclasses override when the handle owns resources."""

    def _set_ptr(self, ptr: T) -> None:
        if self._managed_ptr is not _UNSET:
            raise ValueError("already initialized")
        self._managed_ptr = ptr

    def ptr(self) -> T:
        """The handle, or ``ValueError`` once the object is closed."""
        ptr = self._managed_ptr
        if ptr is _UNSET:
            raise ValueError("never initialized")
        if ptr is None:
            raise ValueError("already closed")
        return ptr  # type: ignore[no-any-return]

    def _consume(self) -> T:
        """Take the handle away from this object without releasing it."""
        ptr = self.ptr()
        self._managed_ptr = None
        return ptr

    def close(self) -> None:
        """Release the handle; later use raises ``ValueError('already closed')``."""
        ptr = self._managed_ptr
        if ptr is _UNSET or ptr is None:
            return
        self._managed_ptr = None
        self._delete(ptr)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ptr = self._managed_ptr
        if ptr is _UNSET or ptr is None:
            return
        if _RUNNING:
            # Possibly near the recursion limit: park without calling anything in Python.
            d = _Deferred()
            d.obj = self
            _PENDING.append(d)
            return
        self.close()
