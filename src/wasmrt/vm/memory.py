"""``LinearMemory``: a wasm linear memory backed by one reserved buffer.

Invariants:
- ``size == pages * 65536``; ``len(data) >= size`` and every byte at or past
  ``size`` is zero (memory never shrinks, so bytes past ``size`` were never
  written). Bounds checks (generated code, bulk ops, the API) use ``size``,
  never ``len(data)``.
- ``data`` is the reservation: an anonymous private ``mmap`` of
  ``reserve_bytes`` (the kernel zero-fills pages lazily, so creation is O(1)
  whatever the reservation), or a ``bytearray`` where such a mapping is
  unavailable or refused. Both support the buffer protocol, ``data[i]``,
  slices and slice assignment, which is all anyone may use.
- The reservation is ``min(max bytes, reservation_cap)`` but at least the
  initial size; ``reservation_cap`` defaults to ``DEFAULT_RESERVATION``
  (4 GiB, Wasmtime's static-memory reservation on 64-bit hosts), so a
  32-bit memory normally never moves.
- Growth inside the reservation only bumps ``size``; the buffer object is
  never replaced, so views the embedder holds stay valid. Growth past it
  copies into a larger buffer (Wasmtime's "memory may move"); an unpinned
  ``bytearray`` is extended in place.
- ``release()`` (pool slot reset, store teardown) leaves ``data`` an empty
  ``bytearray`` and ``size == pages == 0``; a mapping's touched pages are
  dropped at once (``MADV_DONTNEED``, as Wasmtime resets a slot), so a stale
  view reads zeros, never the departed tenant's bytes, and the mapping is
  unmapped when its last reference goes.
- Spare mappings: a released mapping that nothing else references (no view,
  no running frame: checked with ``sys.getrefcount``) has its touched pages
  dropped (reads zeros again) and is kept in ``_SPARE`` (at most
  ``MAX_SPARE``) for the next ``reserve_buffer`` of the same length, which
  saves the mmap/munmap system calls of a fresh store's memory. A mapping
  someone may still read is never reused, so no one ever sees another
  tenant's bytes.
- Creation and growth ask the store's limiter (``memory_growing`` /
  ``memory_grow_failed``, Wasmtime's rules) with ``maximum =
  limiter_maximum``: ``max_pages * 65536`` (the type's maximum clamped by
  the pool's ``max_pages_cap``), or ``None`` when neither bounds the memory and ``try_alloc(bytes,
  AllocKind.MEMORY)`` for the *accessible* bytes before touching memory;
  refusals from wasm (``from_wasm=True``) become -1, from the embedder
  ``GrowRefused`` (a refused ``try_alloc`` raises ``OutOfMemory``). Reserved-but-inaccessible address space is not charged (as in
  Wasmtime, it is not committed memory).
- The host refusing the bytes themselves (``MemoryError`` from a buffer's
  creation or growth; a refused mapping first falls back to a ``bytearray``)
  is the same outcome as the hook refusing them (``alloc.HostAlloc``):
  ``OutOfMemory`` from creation and embedder growth, -1 from wasm, and the
  memory unchanged (growth asks for double the room first, then exactly).
"""

from __future__ import annotations

import mmap
import sys
from typing import Any

from wasmrt import ir
from wasmrt.alloc import AllocKind, HostAlloc, try_alloc
from wasmrt.errors import OutOfMemory, ResourceLimitExceeded
from wasmrt.observe import created
from wasmrt.vm.growth import refuse_growth

__all__ = ["DEFAULT_RESERVATION", "PAGE_SIZE", "LinearMemory", "reserve_buffer"]

PAGE_SIZE = 65536
MAX_PAGES = 65536
#: Default cap on the up-front reservation (bytes) of one memory: a whole 32-bit memory.
DEFAULT_RESERVATION = 4 << 30
#: Reservation used when the host refuses an anonymous mapping (eagerly zeroed).
FALLBACK_RESERVATION = 16 << 20

_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0)
_MAP_FLAGS = (
    getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0) | _MAP_NORESERVE
    if hasattr(mmap, "MAP_PRIVATE")
    else None
)
_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)

Buffer = bytearray | mmap.mmap

#: Released, zeroed, unreferenced mappings kept for reuse (see module doc).
_SPARE: list[mmap.mmap] = []
MAX_SPARE = 8
_getrefcount = sys.getrefcount
#: Zeros appended per step when a ``bytearray`` memory grows in chunks.
_ZERO_CHUNK = 32 << 20


def reserve_buffer(nbytes: int, at_least: int = 0) -> Buffer:
    """A zeroed buffer of ``nbytes`` (an anonymous mapping when possible).

    If the host refuses the mapping (no ``mmap``, strict overcommit, address
    space limits) the fallback is a ``bytearray`` of
    ``max(at_least, min(nbytes, FALLBACK_RESERVATION))`` bytes.
    """
    if nbytes > 0 and _MAP_FLAGS is not None:
        for i in range(len(_SPARE) - 1, -1, -1):
            if len(_SPARE[i]) == nbytes:
                try:
                    return _SPARE.pop(i)
                except IndexError:  # another thread took it meanwhile
                    break
        try:
            return mmap.mmap(-1, nbytes, flags=_MAP_FLAGS)
        except (OSError, ValueError, OverflowError):
            pass
    return bytearray(max(at_least, min(nbytes, FALLBACK_RESERVATION)))


def _extend_zeros(data: bytearray, n: int) -> None:
    """Append ``n`` zero bytes to ``data``; on ``MemoryError`` nothing is appended.

    One step when the host has room for the growth twice over (``bytes(n)``
    is calloc'd, so the copy touches only the new pages); otherwise, if it
    has room once (checked by that same temporary, which fails at once when
    it has not), in chunks that need no temporary as large as the growth.
    """
    try:
        data += bytes(n)
        return
    except MemoryError:
        bytes(n)  # the host has not even room for it once: fail fast
    start = len(data)
    zeros = memoryview(bytes(min(n, _ZERO_CHUNK)))
    try:
        while (need := start + n - len(data)) > 0:
            data += zeros if need >= len(zeros) else zeros[:need]
    except MemoryError:
        del data[start:]  # give back what was taken: the host is short of memory
        raise


class LinearMemory:
    __slots__ = (
        "__weakref__",
        "data",
        "limiter_maximum",
        "max_pages",
        "pages",
        "size",
        "store",
        "ty",
    )

    data: Buffer

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
        #: The ``maximum`` the limiter is told (Wasmtime passes the clamped maximum).
        self.limiter_maximum: int | None = (
            None if lim.max is None and max_pages_cap is None else max_pages * PAGE_SIZE
        )
        min_bytes = lim.min * PAGE_SIZE
        limiter = getattr(store, "limiter", None)
        if limiter is not None:
            if not limiter.memory_growing(0, min_bytes, self.limiter_maximum):
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
        with HostAlloc(min_bytes):
            self.data = reserve_buffer(reserve, min_bytes)
        self.size = min_bytes
        self.pages = lim.min
        created(self)

    def __repr__(self) -> str:
        return f"LinearMemory(pages={self.pages}, max_pages={self.max_pages})"

    def release(self) -> None:
        """Detach the bytes: ``data`` becomes empty and the old contents unreachable."""
        old = self.data
        size = self.size
        self.data = bytearray()
        self.size = 0
        self.pages = 0
        if isinstance(old, mmap.mmap) and _MADV_DONTNEED is not None:
            # Free the touched pages now (a view or a running frame may still
            # hold the mapping; they read zeros). The mapping itself goes when
            # its last reference does, unless no one else holds it: then it is
            # kept for reuse (``_SPARE``). References: ``old`` and the argument.
            if size:
                old.madvise(_MADV_DONTNEED, 0, min(size, len(old)))
            if _getrefcount(old) == 2 and len(_SPARE) < MAX_SPARE:
                _SPARE.append(old)

    def grow(self, delta: int, *, from_wasm: bool = False) -> int:
        """Grow by ``delta`` pages; the old size in pages, or -1 when refused/failed.

        From the embedder (``from_wasm=False``) a refusal raises ``GrowRefused``
        and a refused ``try_alloc`` raises ``OutOfMemory``.
        """
        old = self.pages
        if delta == 0:
            return old
        new = old + delta
        limiter = getattr(self.store, "limiter", None)
        if new > MAX_PAGES:
            return self._fail("memory growth exceeds memory type's limits", from_wasm, limiter)
        if limiter is not None:
            if not limiter.memory_growing(self.size, new * PAGE_SIZE, self.limiter_maximum):
                return self._fail("failed to grow memory: refused by limiter", from_wasm)
        if new > self.max_pages:
            return self._fail("Memory maximum size exceeded", from_wasm, limiter)
        nbytes = delta * PAGE_SIZE
        new_size = new * PAGE_SIZE
        try:
            try_alloc(nbytes, AllocKind.MEMORY, absorbing=from_wasm)
            if new_size > len(self.data):
                with HostAlloc(nbytes):
                    self._enlarge(new_size)
        except OutOfMemory:  # the hook's refusal or the host's (``HostAlloc``)
            if from_wasm:
                return -1
            raise
        self.size = new_size
        self.pages = new
        return old

    def _enlarge(self, new_size: int) -> None:
        """Make ``data`` hold at least ``new_size`` bytes, keeping the first ``size``.

        Asks for room to double first; if the host refuses that, for exactly
        ``new_size``. Raises ``MemoryError`` with nothing changed.
        """
        data = self.data
        target = min(max(new_size, 2 * len(data)), self.max_pages * PAGE_SIZE)
        try:
            self._resize(data, target, new_size)
        except MemoryError:
            if target == new_size:
                raise
            self._resize(data, new_size, new_size)

    def _resize(self, data: Buffer, target: int, new_size: int) -> None:
        if isinstance(data, bytearray):
            try:
                _extend_zeros(data, target - len(data))
                return
            except BufferError:  # a view pins it: move instead
                pass
        fresh = reserve_buffer(target, new_size)
        fresh[: self.size] = memoryview(data)[: self.size]
        self.data = fresh

    @staticmethod
    def _fail(message: str, from_wasm: bool, failed_to: Any = None) -> int:
        """``refuse_growth``; ``failed_to`` (a limiter) hears of it first."""
        return refuse_growth(
            message, from_wasm, None if failed_to is None else failed_to.memory_grow_failed
        )
