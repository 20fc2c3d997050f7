"""``LinearMemory``: a wasm linear memory backed by one ``bytearray``.

Invariants:
- ``size == pages * 65536``; ``len(data) >= size`` and every byte at or past
  ``size`` is zero (memory never shrinks, so bytes past ``size`` were never
  written).
- Growth inside the reservation (``len(data)``) only bumps ``size``; the
  ``bytearray`` object is never replaced, so views the embedder holds stay
  valid. Growth past it extends the bytearray in place when no view pins it,
  and otherwise replaces it (Wasmtime's "memory may move").
- The reservation is ``min(max bytes, reservation_cap)`` but at least the
  initial size; ``reservation_cap`` defaults to ``DEFAULT_RESERVATION``.
- Creation and growth ask the store's limiter (``memory_growing`` /
  ``memory_grow_failed``, Wasmtime's rules) and ``try_alloc(bytes,
  AllocKind.MEMORY)`` before touching memory; refusals from wasm
  (``from_wasm=True``) become -1, from the embedder an error.
"""

from __future__ import annotations

from typing import Any

from wasmrt import ir
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory, ResourceLimitExceeded, WasmtimeError

__all__ = ["DEFAULT_RESERVATION", "PAGE_SIZE", "LinearMemory"]

PAGE_SIZE = 65536
MAX_PAGES = 65536
#: Default cap on the up-front reservation (bytes) of one memory.
DEFAULT_RESERVATION = 16 << 20


class LinearMemory:
    __slots__ = ("__weakref__", "data", "max_pages", "pages", "size", "store", "ty")

    def __init__(
        self,
        store: Any,
        ty: ir.MemoryType,
        *,
        max_pages_cap: int | None = None,
        reservation_cap: int | None = None,
    ) -> None:
        lim = ty.limits
        self.store = store
        self.ty = ty
        max_pages = MAX_PAGES if lim.max is None else lim.max
        if max_pages_cap is not None:
            max_pages = min(max_pages, max_pages_cap)
        self.max_pages = max_pages
        min_bytes = lim.min * PAGE_SIZE
        limiter = getattr(store, "limiter", None)
        if limiter is not None:
            maximum = None if lim.max is None else lim.max * PAGE_SIZE
            if not limiter.memory_growing(0, min_bytes, maximum):
                raise ResourceLimitExceeded(
                    f"memory minimum size of {lim.min} pages exceeds memory limits"
                )
        if lim.min > max_pages:
            raise ResourceLimitExceeded(
                f"memory minimum size of {lim.min} pages exceeds memory limits"
            )
        cap = DEFAULT_RESERVATION if reservation_cap is None else reservation_cap
        reserve = max(min_bytes, min(max_pages * PAGE_SIZE, cap))
        try_alloc(min_bytes, AllocKind.MEMORY)
        self.data = bytearray(reserve)
        self.size = min_bytes
        self.pages = lim.min

    def __repr__(self) -> str:
        return f"LinearMemory(pages={self.pages}, max_pages={self.max_pages})"

    def grow(self, delta: int, *, from_wasm: bool = False) -> int:
        """Grow by ``delta`` pages; the old size in pages, or -1 when refused/failed.

        From the embedder (``from_wasm=False``) a refusal raises ``WasmtimeError``
        and a refused ``try_alloc`` raises ``OutOfMemory``.
        """
        old = self.pages
        if delta == 0:
            return old
        new = old + delta
        limiter = getattr(self.store, "limiter", None)
        if new > MAX_PAGES:
            err = WasmtimeError("memory growth exceeds memory type's limits")
            if limiter is not None:
                limiter.memory_grow_failed(err)
            return self._fail(err, from_wasm)
        if limiter is not None:
            lim_max = self.ty.limits.max
            maximum = None if lim_max is None else lim_max * PAGE_SIZE
            if not limiter.memory_growing(self.size, new * PAGE_SIZE, maximum):
                return self._fail(
                    WasmtimeError("failed to grow memory: refused by limiter"), from_wasm
                )
        if new > self.max_pages:
            err = WasmtimeError("Memory maximum size exceeded")
            if limiter is not None:
                limiter.memory_grow_failed(err)
            return self._fail(err, from_wasm)
        nbytes = delta * PAGE_SIZE
        try:
            try_alloc(nbytes, AllocKind.MEMORY, absorbing=from_wasm)
        except OutOfMemory:
            if from_wasm:
                return -1
            raise
        new_size = new * PAGE_SIZE
        if new_size > len(self.data):
            target = min(max(new_size, 2 * len(self.data)), self.max_pages * PAGE_SIZE)
            extra = target - len(self.data)
            try:
                self.data.extend(bytes(extra))
            except BufferError:
                fresh = bytearray(target)
                fresh[: self.size] = self.data[: self.size]
                self.data = fresh
        self.size = new_size
        self.pages = new
        return old

    @staticmethod
    def _fail(err: WasmtimeError, from_wasm: bool) -> int:
        if from_wasm:
            return -1
        raise err
