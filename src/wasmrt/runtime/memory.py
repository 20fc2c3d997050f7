"""``Memory``: a linear memory handle.

Invariants:
- A ``Memory`` is a plain handle: a vm ``LinearMemory`` plus its
  ``StoreCore``; every method takes the store and checks it.
- Host-created memories (``Memory(store, ty)``) bypass the instance
  allocator and do not count toward store or pool limits, but the vm still
  asks the store's limiter and ``try_alloc`` for their bytes.
- ``read``/``write`` follow Python slice rules exactly as wasmtime-py
  (1.11): ``read`` never raises for a bad range and returns a copy;
  ``write`` raises ``IndexError`` when the resolved start is >= the length
  (checked before the empty-write shortcut) or the end is past it.
- Only ``data_len`` bytes are ever visible, even if the vm reserved more.
- ``grow`` raises ``WasmtimeError("failed to grow memory by `N`")`` where
  the wasm instruction would return -1.
- On a store with an async limiter (``ResourceLimiterAsync``) the sync
  ``Memory(...)``/``grow`` raise ``WasmtimeError`` (outside an ``*_async``
  operation); ``new_async``/``grow_async`` await the limiter's decision
  first (``AsyncLimiterAdapter.predecide_memory``), then do the same work.
- ``get_buffer_ptr`` returns a ``memoryview`` of the live bytes. While a view
  is alive the vm cannot resize the buffer beyond its reservation, so
  re-derive views after growing instead of keeping them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from wasmrt.errors import WasmtimeError
from wasmrt.runtime import _core
from wasmrt.runtime.limits import async_adapter_of, require_sync
from wasmrt.runtime.types import MemoryType

__all__ = ["Memory"]

_WRONG_STORE = "object used with the wrong store"
_PAGE = 65536
_MAX_PAGES = 65536


def _type_max_bytes(ty: Any) -> int | None:
    """The ``maximum`` the vm passes to ``memory_growing`` for a memory of ir type ``ty``."""
    hi = ty.limits.max
    return None if hi is None else hi * _PAGE


class _DataPointer:
    """``data_ptr``'s result: indexable and assignable bytes of the live memory."""

    __slots__ = ("_mem",)

    def __init__(self, mem: Any) -> None:
        self._mem = mem

    def _view(self) -> bytearray:
        return _core.memory_data(self._mem)

    def __getitem__(self, key: int | slice) -> Any:
        size = _core.memory_data_len(self._mem)
        if isinstance(key, slice):
            start, stop, step = key.indices(size)
            return bytes(self._view()[start:stop:step])
        if not 0 <= key < size:
            raise IndexError("index out of range")
        return self._view()[key]

    def __setitem__(self, key: int | slice, value: Any) -> None:
        size = _core.memory_data_len(self._mem)
        data = self._view()
        if isinstance(key, slice):
            start, stop, step = key.indices(size)
            value = bytes(value)
            if len(range(start, stop, step)) != len(value):
                raise ValueError("cannot change the size of a wasm memory through data_ptr")
            data[start:stop:step] = value
            return
        if not 0 <= key < size:
            raise IndexError("index out of range")
        data[key] = value

    def __len__(self) -> int:
        return _core.memory_data_len(self._mem)


class Memory:
    """A linear memory: ``Memory(store, MemoryType(Limits(min, max)))``."""

    __slots__ = ("_memory", "_store")

    def __init__(self, store: Any, ty: MemoryType) -> None:
        core = store._context()
        info = ty.ptr()
        require_sync(core, "Memory.new")
        self._store = core
        self._memory = _core.new_memory(core, info)

    @classmethod
    async def new_async(cls, store: Any, ty: MemoryType) -> Memory:
        """``Memory(store, ty)`` for a store whose limiter is a ``ResourceLimiterAsync``."""
        core = store._context()
        info = ty.ptr()
        adapter = async_adapter_of(core)
        if adapter is None:
            return cls(store, ty)
        with adapter.async_scope(asyncio.get_running_loop()):
            lim = info.ir.limits
            await adapter.predecide_memory(0, lim.min * _PAGE, _type_max_bytes(info.ir))
            return cls._from_core(core, _core.new_memory(core, info))

    @classmethod
    def _from_core(cls, store_core: Any, memory: Any) -> Memory:
        out: Memory = cls.__new__(cls)
        out._store = store_core
        out._memory = memory
        return out

    def _mem(self, store: Any) -> Any:
        if store._context() is not self._store:
            raise WasmtimeError(_WRONG_STORE)
        return self._memory

    def type(self, store: Any) -> MemoryType:
        return MemoryType._from_ir(_core.memory_type(self._mem(store)))

    def _grow_target(self, store: Any, delta: int) -> Any:
        if not isinstance(delta, int):
            raise TypeError("expected an int")
        if delta < 0:
            raise WasmtimeError("cannot grow by negative amount")
        return self._mem(store)

    def grow(self, store: Any, delta: int) -> int:
        """Grow by ``delta`` pages; returns the previous size in pages."""
        mem = self._grow_target(store, delta)
        require_sync(self._store, "Memory.grow")
        return self._grow(mem, delta)

    async def grow_async(self, store: Any, delta: int) -> int:
        """``grow`` for a store whose limiter is a ``ResourceLimiterAsync``.

        The limiter's decision is awaited first; the grow itself is synchronous.
        """
        mem = self._grow_target(store, delta)
        adapter = async_adapter_of(self._store)
        if adapter is None:
            return self._grow(mem, delta)
        with adapter.async_scope(asyncio.get_running_loop()):
            pages = _core.memory_pages(mem)
            if delta > 0 and pages + delta <= _MAX_PAGES:
                await adapter.predecide_memory(
                    _core.memory_data_len(mem),
                    (pages + delta) * _PAGE,
                    _core.memory_limiter_maximum(mem),
                )
            return self._grow(mem, delta)

    def _grow(self, mem: Any, delta: int) -> int:
        old = _core.memory_grow(mem, delta)
        if old < 0:
            raise WasmtimeError(f"failed to grow memory by `{delta}`")
        return old

    def size(self, store: Any) -> int:
        """The size in pages."""
        return _core.memory_pages(self._mem(store))

    def data_len(self, store: Any) -> int:
        """The size in bytes."""
        return _core.memory_data_len(self._mem(store))

    def page_size(self, store: Any) -> int:
        self._mem(store)
        return 65536

    def page_size_log2(self, store: Any) -> int:
        self._mem(store)
        return 16

    def data_ptr(self, store: Any) -> _DataPointer:
        """An unchecked-by-type, bounds-checked byte view: ``data_ptr(store)[i] = b``."""
        return _DataPointer(self._mem(store))

    def get_buffer_ptr(self, store: Any, size: int | None = None, offset: int = 0) -> memoryview:
        """A writable zero-copy view of ``size`` bytes at ``offset`` (default: all)."""
        mem = self._mem(store)
        length = _core.memory_data_len(mem)
        if size is None:
            size = length - offset
        if offset < 0 or size < 0 or offset + size > length:
            raise IndexError("index out of range")
        return memoryview(_core.memory_data(mem))[offset : offset + size]

    def read(self, store: Any, start: int | None = 0, stop: int | None = None) -> bytearray:
        """A copy of ``memory[start:stop]`` (slice rules; never raises for a bad range)."""
        mem = self._mem(store)
        size = _core.memory_data_len(mem)
        lo, hi, _ = slice(start, stop, None).indices(size)
        if hi - lo <= 0:
            return bytearray()
        return bytearray(_core.memory_data(mem)[lo:hi])

    def write(self, store: Any, value: bytes | bytearray, start: int | None = None) -> int:
        """Write ``value`` at ``start`` (slice rules); returns the bytes written."""
        mem = self._mem(store)
        size = _core.memory_data_len(mem)
        lo = slice(start, None).indices(size)[0]
        if lo >= size:
            raise IndexError("index out of range")
        if not isinstance(value, bytearray):
            value = bytearray(value)
        n = len(value)
        if n == 0:
            return 0
        if lo + n > size:
            raise IndexError("index out of range")
        _core.memory_data(mem)[lo : lo + n] = value
        return n
