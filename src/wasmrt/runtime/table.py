"""``Table``: a table handle.

Invariants:
- A ``Table`` is a plain handle: a vm ``TableInstance`` plus its
  ``StoreCore``. Host-created tables bypass the instance allocator (no
  count), but the vm still asks the limiter and ``try_alloc``.
- Values are converted with ``Val``'s rules before anything changes, so a
  bad ``init``/``val`` raises ``TypeError`` with the table untouched.
- ``get`` out of range returns ``None``; a non-null funcref gives a
  ``Func``, a truthy externref payload the object itself, and anything
  falsy (null included) the ``Val`` wrapper, which compares ``== None``.
- ``set`` out of range and a failed ``grow`` raise ``WasmtimeError``
  (embedder APIs never raise ``Trap``).
- On a store with an async limiter the sync ``Table(...)``/``grow`` raise
  ``WasmtimeError`` (outside an ``*_async`` operation); ``new_async`` and
  ``grow_async`` await the limiter's decision first
  (``AsyncLimiterAdapter.predecide_table``), then do the same work.
"""

from __future__ import annotations

import asyncio
from typing import Any

from wasmrt.errors import WasmtimeError
from wasmrt.runtime import _core
from wasmrt.runtime.func import from_core, to_core
from wasmrt.runtime.limits import async_adapter_of, require_sync
from wasmrt.runtime.types import TableType
from wasmrt.runtime.val import Val

__all__ = ["Table"]

_U64 = (1 << 64) - 1
#: The vm's bound on table sizes (and the ``maximum`` it reports for unbounded tables).
_MAX_ELEMENTS = 0xFFFFFFFF
_WRONG_STORE = "object used with the wrong store"
_OOB = "wasm trap: undefined element: out of bounds table access"


class Table:
    """A table of references: ``Table(store, TableType(...), init)``."""

    __slots__ = ("_store", "_table")

    def __init__(self, store: Any, ty: TableType, init: Any) -> None:
        tty = ty.ptr()
        core = store._context()
        init_core = to_core(core, tty.elem, init)
        require_sync(core, "Table.new")
        self._store = core
        self._table = _core.new_table(core, tty, init_core)

    @classmethod
    async def new_async(cls, store: Any, ty: TableType, init: Any) -> Table:
        """``Table(store, ty, init)`` for a store whose limiter is a ``ResourceLimiterAsync``."""
        tty = ty.ptr()
        core = store._context()
        init_core = to_core(core, tty.elem, init)
        adapter = async_adapter_of(core)
        if adapter is None:
            return cls(store, ty, init)
        with adapter.async_scope(asyncio.get_running_loop()):
            await adapter.predecide_table(0, tty.limits.min, tty.limits.max)
            return cls._from_core(core, _core.new_table(core, tty, init_core))

    @classmethod
    def _from_core(cls, store_core: Any, table: Any) -> Table:
        out: Table = cls.__new__(cls)
        out._store = store_core
        out._table = table
        return out

    def _tab(self, store: Any) -> Any:
        if store._context() is not self._store:
            raise WasmtimeError(_WRONG_STORE)
        return self._table

    def type(self, store: Any) -> TableType:
        return TableType._from_ir(_core.table_type(self._tab(store)))

    def size(self, store: Any) -> int:
        return len(_core.table_elements(self._tab(store)))

    def _grow_args(self, store: Any, amt: int, init: Any) -> tuple[Any, int, Any]:
        tab = self._tab(store)
        if not isinstance(amt, int):
            raise TypeError(f"'{type(amt).__name__}' object cannot be interpreted as an integer")
        init_core = to_core(self._store, _core.table_type(tab).elem, init)
        return tab, amt & _U64, init_core

    def grow(self, store: Any, amt: int, init: Any) -> int:
        """Grow by ``amt`` elements set to ``init``; returns the previous size."""
        tab, delta, init_core = self._grow_args(store, amt, init)
        require_sync(self._store, "Table.grow")
        return self._grow(tab, delta, init_core)

    async def grow_async(self, store: Any, amt: int, init: Any) -> int:
        """``grow`` for a store whose limiter is a ``ResourceLimiterAsync``.

        The limiter's decision is awaited first; the grow itself is synchronous.
        """
        tab, delta, init_core = self._grow_args(store, amt, init)
        adapter = async_adapter_of(self._store)
        if adapter is None:
            return self._grow(tab, delta, init_core)
        with adapter.async_scope(asyncio.get_running_loop()):
            old = len(_core.table_elements(tab))
            if delta > 0 and old + delta <= _MAX_ELEMENTS:
                await adapter.predecide_table(old, old + delta, _core.table_limiter_maximum(tab))
            return self._grow(tab, delta, init_core)

    def _grow(self, tab: Any, delta: int, init_core: Any) -> int:
        old = _core.table_grow(tab, delta, init_core)
        if old < 0:
            raise WasmtimeError(f"failed to grow table by `{delta}`")
        return old

    def get(self, store: Any, idx: int) -> Any:
        tab = self._tab(store)
        elements = _core.table_elements(tab)
        if not 0 <= idx < len(elements):
            return None
        kind = _core.table_type(tab).elem
        value = from_core(self._store, kind, _core.table_get(tab, idx))
        if value:
            return value
        return Val(kind, value)

    def set(self, store: Any, idx: int, val: Any) -> None:
        tab = self._tab(store)
        value = to_core(self._store, _core.table_type(tab).elem, val)
        elements = _core.table_elements(tab)
        if not 0 <= idx < len(elements):
            raise WasmtimeError(_OOB)
        elements[idx] = value
