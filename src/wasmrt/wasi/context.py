"""``WasiCtx``: one store's WASI state — arguments, environment and the descriptor table.

Invariants:
- The table maps guest descriptor numbers to ``Descriptor`` objects; it is a
  ``TryDict`` (``AllocKind.WASI``), and every insertion reserves its slot
  and asks ``try_alloc`` *before* the host resource exists (``reserve``),
  so an ``OutOfMemory`` leaves the table unchanged and opens nothing.
- A new descriptor takes the lowest free number (POSIX's rule); 0-2 are
  stdin/stdout/stderr, preopens follow from 3 in configuration order.
- Each descriptor owns at most one host descriptor and closes it exactly
  once (``close``); stdio inherited from the process is never closed.
- ``close()`` (the store's release path) closes every descriptor left.
"""

from __future__ import annotations

import os
import stat as _stat
from typing import Any

from wasmrt.alloc import SLOT_SIZE, AllocKind, TryDict, try_alloc
from wasmrt.wasi.config import StdioSpec, WasiSpec
from wasmrt.wasi.errno import Errno, WasiErrno

__all__ = ["DESCRIPTOR_COST", "DirDesc", "Descriptor", "FileDesc", "StdioDesc", "WasiCtx"]

#: Bytes charged for one descriptor record.
DESCRIPTOR_COST = 128

# Filetypes.
FT_UNKNOWN = 0
FT_BLOCK = 1
FT_CHAR = 2
FT_DIR = 3
FT_FILE = 4
FT_SOCKET_STREAM = 6
FT_SYMLINK = 7


def filetype_of(mode: int) -> int:
    if _stat.S_ISREG(mode):
        return FT_FILE
    if _stat.S_ISDIR(mode):
        return FT_DIR
    if _stat.S_ISLNK(mode):
        return FT_SYMLINK
    if _stat.S_ISCHR(mode):
        return FT_CHAR
    if _stat.S_ISBLK(mode):
        return FT_BLOCK
    if _stat.S_ISSOCK(mode):
        return FT_SOCKET_STREAM
    return FT_UNKNOWN


class Descriptor:
    """A guest descriptor; subclasses own at most one host descriptor."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class StdioDesc(Descriptor):
    """stdin (0), stdout (1) or stderr (2) as configured."""

    __slots__ = ("index", "spec")

    def __init__(self, index: int, spec: StdioSpec) -> None:
        super().__init__(spec.fd if spec.kind == "file" else -1)
        self.index = index
        self.spec = spec

    @property
    def host_fd(self) -> int:
        """The host descriptor reads/writes go to (-1 for null and custom streams)."""
        if self.spec.kind == "inherit":
            return self.spec.fd
        return self.fd

    def isatty(self) -> bool:
        fd = self.host_fd
        return fd >= 0 and os.isatty(fd)


class DirDesc(Descriptor):
    """A host directory; ``preopen`` is its guest name if it was preopened."""

    __slots__ = ("dir_perms", "file_perms", "preopen")

    def __init__(self, fd: int, preopen: str | None, dir_perms: int, file_perms: int) -> None:
        super().__init__(fd)
        self.preopen = preopen
        self.dir_perms = dir_perms
        self.file_perms = file_perms

    def require(self, perm: int) -> None:
        """``PERM`` unless the directory grants ``perm`` (1 read, 2 write)."""
        if not self.dir_perms & perm:
            raise WasiErrno(Errno.PERM)


class FileDesc(Descriptor):
    """An open host file (not a directory)."""

    __slots__ = ("append", "nonblock", "readable", "sync_flags", "writable")

    def __init__(
        self, fd: int, readable: bool, writable: bool, append: bool, nonblock: bool, sync: int
    ) -> None:
        super().__init__(fd)
        self.readable = readable
        self.writable = writable
        self.append = append
        self.nonblock = nonblock
        self.sync_flags = sync


class WasiCtx:
    """The WASI state of one store (see module doc)."""

    def __init__(self, spec: WasiSpec) -> None:
        try_alloc(SLOT_SIZE * (len(spec.argv) + len(spec.env)) + 256, AllocKind.WASI)
        self.args = [a.encode("utf-8") + b"\0" for a in spec.argv]
        self.environ = [f"{k}={v}".encode() + b"\0" for k, v in spec.env]
        self.table: TryDict[int, Descriptor] = TryDict.with_capacity(
            3 + len(spec.preopens), kind=AllocKind.WASI
        )
        try_alloc(DESCRIPTOR_COST * (3 + len(spec.preopens)), AllocKind.WASI)
        # No allocation can fail from here on: the spec's descriptors move in.
        for i, s in enumerate(spec.stdio):
            self.table[i] = StdioDesc(i, s)
        for n, p in enumerate(spec.preopens):
            self.table[3 + n] = DirDesc(p.fd, p.guest_path, p.dir_perms, p.file_perms)
        spec.stdio = [StdioSpec("null"), StdioSpec("null"), StdioSpec("null")]
        spec.preopens = []

    # The table -----------------------------------------------------------------

    def get(self, fd: int) -> Descriptor:
        desc = self.table.get(fd)
        if desc is None:
            raise WasiErrno(Errno.BADF)
        return desc

    def reserve(self) -> int:
        """The number the next ``insert`` will use, its slot and record already granted."""
        fd = 0
        while fd in self.table:
            fd += 1
        self.table.reserve(len(self.table) + 1)
        try_alloc(DESCRIPTOR_COST, AllocKind.WASI)
        return fd

    def insert(self, fd: int, desc: Descriptor) -> None:
        """Add ``desc`` as ``fd`` (after ``reserve``: allocates nothing more)."""
        self.table[fd] = desc

    def remove(self, fd: int) -> Descriptor:
        desc = self.table.pop(fd, None)
        if desc is None:
            raise WasiErrno(Errno.BADF)
        return desc

    def renumber(self, src: int, dst: int) -> None:
        """Move ``src`` onto ``dst`` (closing what ``dst`` held); both must be open."""
        desc = self.get(src)
        old = self.get(dst)
        if src == dst:
            return
        del self.table[src]
        self.table[dst] = desc
        old.close()

    def close(self) -> None:
        """Close every descriptor (the store is going away)."""
        descs = list(self.table.values())
        self.table.clear()
        for d in descs:
            d.close()

    def describe(self) -> dict[int, str]:
        """A summary of the table (tests compare it before and after a failed call)."""
        out = {}
        for n, d in self.table.items():
            out[n] = f"{type(d).__name__}:{d.fd}"
        return out


def host_context(obj: Any) -> WasiCtx:
    if not isinstance(obj, WasiCtx):
        raise TypeError("not a WASI context")
    return obj
