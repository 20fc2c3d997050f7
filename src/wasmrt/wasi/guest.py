"""``GuestMemory``: bounds- and alignment-checked access to the caller's ``memory`` export.

Invariants:
- The memory is the calling instance's export named ``memory`` (the WASI
  ABI); it is looked up on first use, so functions that touch no memory
  work without one. A missing export raises ``WasmtimeError("missing
  required memory export")``.
- A pointer range outside the memory, or a typed pointer not aligned to its
  type, raises ``WasmtimeError`` (Wasmtime traps for these: "Pointer out of
  bounds" / "Pointer not aligned"); nothing is read or written then. As in
  Wasmtime, an empty range is in bounds wherever it starts, except an empty
  string (a path), which must still start inside the memory.
- Every copy *out of* guest memory into a host object asks
  ``try_alloc(n, AllocKind.WASI)`` first. Writes into guest memory allocate
  nothing on the host side.
- ``release()`` drops the view so the memory may grow or move afterwards.
"""

from __future__ import annotations

import struct
from typing import Any

from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import WasmtimeError
from wasmrt.runtime import Memory

__all__ = ["GuestMemory"]

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class GuestMemory:
    """The linear memory of the instance that made the current WASI call."""

    __slots__ = ("_caller", "_view")

    def __init__(self, caller: Any) -> None:
        self._caller = caller
        self._view: memoryview | None = None

    def view(self) -> memoryview:
        view = self._view
        if view is None:
            mem = self._caller.get("memory")
            if not isinstance(mem, Memory):
                raise WasmtimeError("missing required memory export")
            view = self._view = mem.get_buffer_ptr(self._caller)
        return view

    def release(self) -> None:
        view, self._view = self._view, None
        if view is not None:
            view.release()

    def check(self, ptr: int, size: int, align: int = 1) -> memoryview:
        """The view, after checking that ``[ptr, ptr+size)`` is in bounds and aligned."""
        view = self.view()
        if size and ptr + size > len(view):
            raise WasmtimeError(f"Pointer out of bounds: Region {{ start: {ptr}, len: {size} }}")
        if align > 1 and ptr % align:
            raise WasmtimeError(f"Pointer not aligned to {align}: Region {{ start: {ptr} }}")
        return view

    # Reads ---------------------------------------------------------------------

    def u8(self, ptr: int) -> int:
        return int(_U8.unpack_from(self.check(ptr, 1), ptr)[0])

    def u16(self, ptr: int) -> int:
        return int(_U16.unpack_from(self.check(ptr, 2, 2), ptr)[0])

    def u32(self, ptr: int) -> int:
        return int(_U32.unpack_from(self.check(ptr, 4, 4), ptr)[0])

    def u64(self, ptr: int) -> int:
        return int(_U64.unpack_from(self.check(ptr, 8, 8), ptr)[0])

    def unpack(self, fmt: struct.Struct, ptr: int, align: int) -> tuple[Any, ...]:
        return fmt.unpack_from(self.check(ptr, fmt.size, align), ptr)

    def read(self, ptr: int, size: int) -> bytes:
        """A host copy of ``size`` bytes at ``ptr``."""
        view = self.check(ptr, size)
        try_alloc(size, AllocKind.WASI)
        return bytes(view[ptr : ptr + size])

    def string(self, ptr: int, size: int) -> str:
        """A UTF-8 string (``ILSEQ`` errno for invalid UTF-8, via ``UnicodeDecodeError``).

        Unlike other regions, an empty string must still lie in memory (Wasmtime's rule).
        """
        if ptr + size > len(self.view()):
            raise WasmtimeError(f"Pointer out of bounds: Region {{ start: {ptr}, len: {size} }}")
        data = self.read(ptr, size)
        try_alloc(size, AllocKind.WASI)
        return data.decode("utf-8")

    def iovecs(self, ptr: int, count: int) -> list[tuple[int, int]]:
        """``(buf, len)`` pairs of an iovec array, each checked to lie in memory."""
        self.check(ptr, 8 * count, 4)
        try_alloc(16 * count, AllocKind.WASI)
        out = []
        view = self.view()
        for i in range(count):
            buf, n = struct.unpack_from("<II", view, ptr + 8 * i)
            self.check(buf, n)
            out.append((buf, n))
        return out

    # Writes --------------------------------------------------------------------

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        view = self.check(ptr, n)
        view[ptr : ptr + n] = data

    def put_u8(self, ptr: int, value: int) -> None:
        _U8.pack_into(self.check(ptr, 1), ptr, value)

    def put_u16(self, ptr: int, value: int) -> None:
        _U16.pack_into(self.check(ptr, 2, 2), ptr, value)

    def put_u32(self, ptr: int, value: int) -> None:
        _U32.pack_into(self.check(ptr, 4, 4), ptr, value)

    def put_u64(self, ptr: int, value: int) -> None:
        _U64.pack_into(self.check(ptr, 8, 8), ptr, value)

    def pack(self, fmt: struct.Struct, ptr: int, align: int, *values: Any) -> None:
        fmt.pack_into(self.check(ptr, fmt.size, align), ptr, *values)
