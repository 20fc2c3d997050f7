"""The ``wasi_snapshot_preview1`` host functions.

Invariants:
- ``FUNCTIONS`` maps every preview 1 import name to its wasm signature and
  its implementation ``impl(ctx, mem, *args) -> None``; arguments arrive
  unsigned (i32 as u32, i64 as u64). An implementation reports a WASI error
  by raising ``WasiErrno``; returning means ``SUCCESS``.
- Results follow Wasmtime's preview 1 (checked side by side with
  wasmtime-py): stdio descriptors are streams (``SPIPE`` for seeks,
  ``BADF`` for file-only calls), directories are not files (``BADF``),
  ``fd_allocate`` is ``NOTSUP``, ``fd_fdstat_set_rights`` is ``NOTSUP`` (rights
  are reported, never enforced, as in Wasmtime), sockets do not exist
  (``NOTSOCK`` on any open descriptor, ``BADF`` otherwise), ``proc_raise``
  is ``NOTSUP``, CPU-time clocks are ``BADF``; ``path_open`` with a
  ``sync``/``dsync``/``rsync`` flag is ``NOTSUP``. ``poll_oneoff`` takes its
  subscriptions in order and fails the whole call on the first bad one
  (``INVAL`` for a CPU-time or unknown clock or unknown clock flags, ``BADF``
  for a descriptor that is not a file or the matching standard stream);
  ready fd events report ``nbytes`` 1, and ``hangup`` for a file read at its
  end.
- Invalid enum or flag values and out-of-bounds or misaligned pointers make
  the call fail with ``WasmtimeError`` (Wasmtime traps for them); an
  errno is only ever the result of a valid call.
- Host resources are acquired only after every allocation the call needs
  was granted (``WasiCtx.reserve`` before ``open``), so ``OutOfMemory``
  aborts the call with no descriptor opened, moved or closed.
- Guest paths go through ``sandbox.resolve`` only; no other host path
  operation is made with guest input.
"""

from __future__ import annotations

import os
import select
import stat as _stat
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX host
    fcntl = None  # type: ignore[assignment]

from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import WasmtimeError
from wasmrt.runtime import ExitTrap
from wasmrt.wasi.context import (
    FT_CHAR,
    FT_DIR,
    FT_UNKNOWN,
    DirDesc,
    FileDesc,
    StdioDesc,
    WasiCtx,
    filetype_of,
)
from wasmrt.wasi.errno import Errno, WasiErrno, from_oserror
from wasmrt.wasi.guest import GuestMemory
from wasmrt.wasi.sandbox import resolve

__all__ = ["FUNCTIONS", "MODULE", "Impl"]

MODULE = "wasi_snapshot_preview1"

Impl = Callable[..., None]

# Rights ----------------------------------------------------------------------
R_FD_DATASYNC = 1 << 0
R_FD_READ = 1 << 1
R_FD_SEEK = 1 << 2
R_FD_FDSTAT_SET_FLAGS = 1 << 3
R_FD_SYNC = 1 << 4
R_FD_TELL = 1 << 5
R_FD_WRITE = 1 << 6
R_FD_ADVISE = 1 << 7
R_FD_ALLOCATE = 1 << 8
R_PATH_FILESTAT_SET_SIZE = 1 << 19
R_FD_READDIR = 1 << 14
R_FD_FILESTAT_SET_SIZE = 1 << 22
R_ALL = (1 << 30) - 1
#: What Wasmtime reports for a preopened directory (base, inheriting).
PREOPEN_RIGHTS = (0x7B7FE00, 0xFF7FFFF)
_WRITE_RIGHTS = R_FD_WRITE | R_FD_DATASYNC | R_FD_ALLOCATE | R_FD_FILESTAT_SET_SIZE

# Flags -----------------------------------------------------------------------
FDFLAG_APPEND = 1
FDFLAG_DSYNC = 2
FDFLAG_NONBLOCK = 4
FDFLAG_RSYNC = 8
FDFLAG_SYNC = 16
_FDFLAGS_ALL = 31
O_CREAT = 1
O_DIRECTORY = 2
O_EXCL = 4
O_TRUNC = 8
_OFLAGS_ALL = 15
LOOKUP_FOLLOW = 1
FST_ATIM = 1
FST_ATIM_NOW = 2
FST_MTIM = 4
FST_MTIM_NOW = 8
_FST_ALL = 15
_SDFLAGS_ALL = 3
_RIFLAGS_ALL = 3

_FILESTAT = struct.Struct("<QQBxxxxxxxQQQQQ")
_FDSTAT = struct.Struct("<BxHxxxxQQ")
_DIRENT = struct.Struct("<QQIBxxx")
_SUBSCRIPTION = struct.Struct("<QB7xIxxxxQQH6x")
_SUB_FD = struct.Struct("<QB7xI")
_EVENT = struct.Struct("<QHBxxxxxQH6x")

_U32_MAX = (1 << 32) - 1
_I64_MAX = (1 << 63) - 1


def _invalid(kind: str) -> WasmtimeError:
    return WasmtimeError(f"Invalid {kind}")


def _check_flags(value: int, allowed: int, kind: str) -> None:
    if value & ~allowed:
        raise _invalid(f"flag value {kind}")


def _os(err: OSError) -> WasiErrno:
    return WasiErrno(from_oserror(err))


def _file(ctx: WasiCtx, fd: int) -> FileDesc:
    desc = ctx.get(fd)
    if not isinstance(desc, FileDesc):
        raise WasiErrno(Errno.BADF)
    return desc


def _seekable(ctx: WasiCtx, fd: int) -> FileDesc:
    desc = ctx.get(fd)
    if isinstance(desc, StdioDesc):
        raise WasiErrno(Errno.SPIPE)
    if not isinstance(desc, FileDesc):
        raise WasiErrno(Errno.BADF)
    return desc


def _dir(ctx: WasiCtx, fd: int) -> DirDesc:
    desc = ctx.get(fd)
    if isinstance(desc, FileDesc):
        raise WasiErrno(Errno.NOTDIR)
    if not isinstance(desc, DirDesc):
        raise WasiErrno(Errno.BADF)
    return desc


def _host_fd(ctx: WasiCtx, fd: int) -> int:
    """A file's or directory's host descriptor (``BADF`` for stdio)."""
    desc = ctx.get(fd)
    if isinstance(desc, (FileDesc, DirDesc)):
        return desc.fd
    raise WasiErrno(Errno.BADF)


# Arguments, environment, clocks, random, scheduling ----------------------------


def _put_strings(mem: GuestMemory, items: list[bytes], ptrs: int, buf: int) -> None:
    mem.check(ptrs, 4 * len(items), 4)
    mem.check(buf, sum(len(s) for s in items))
    for s in items:
        mem.put_u32(ptrs, buf)
        mem.write(buf, s)
        ptrs += 4
        buf += len(s)


def args_get(ctx: WasiCtx, mem: GuestMemory, argv: int, buf: int) -> None:
    _put_strings(mem, ctx.args, argv, buf)


def args_sizes_get(ctx: WasiCtx, mem: GuestMemory, count_ptr: int, size_ptr: int) -> None:
    mem.put_u32(count_ptr, len(ctx.args))
    mem.put_u32(size_ptr, sum(len(a) for a in ctx.args))


def environ_get(ctx: WasiCtx, mem: GuestMemory, environ: int, buf: int) -> None:
    _put_strings(mem, ctx.environ, environ, buf)


def environ_sizes_get(ctx: WasiCtx, mem: GuestMemory, count_ptr: int, size_ptr: int) -> None:
    mem.put_u32(count_ptr, len(ctx.environ))
    mem.put_u32(size_ptr, sum(len(e) for e in ctx.environ))


def _clock(clock_id: int) -> int:
    if clock_id > 3:
        raise _invalid("enum value Clockid")
    if clock_id >= 2:
        raise WasiErrno(Errno.BADF)
    return clock_id


def clock_res_get(ctx: WasiCtx, mem: GuestMemory, clock_id: int, out: int) -> None:
    _clock(clock_id)
    mem.put_u64(out, 1)


def _now(clock_id: int) -> int:
    return time.time_ns() if clock_id == 0 else time.monotonic_ns()


def clock_time_get(ctx: WasiCtx, mem: GuestMemory, clock_id: int, precision: int, out: int) -> None:
    mem.put_u64(out, _now(_clock(clock_id)))


def random_get(ctx: WasiCtx, mem: GuestMemory, buf: int, size: int) -> None:
    mem.check(buf, size)
    try_alloc(size, AllocKind.WASI)
    mem.write(buf, os.urandom(size))


def sched_yield(ctx: WasiCtx, mem: GuestMemory) -> None:
    time.sleep(0)


def proc_exit(ctx: WasiCtx, mem: GuestMemory, code: int) -> None:
    if code >= 126:
        raise WasmtimeError("exit with invalid exit status outside of [0..126)")
    raise ExitTrap(code=code)


def proc_raise(ctx: WasiCtx, mem: GuestMemory, sig: int) -> None:
    if sig > 30:
        raise _invalid("enum value Signal")
    raise WasiErrno(Errno.NOTSUP)


# Descriptors -------------------------------------------------------------------


def fd_close(ctx: WasiCtx, mem: GuestMemory, fd: int) -> None:
    ctx.remove(fd).close()


def fd_renumber(ctx: WasiCtx, mem: GuestMemory, fd: int, to: int) -> None:
    ctx.renumber(fd, to)


def fd_advise(
    ctx: WasiCtx, mem: GuestMemory, fd: int, offset: int, length: int, advice: int
) -> None:
    if advice > 5:
        raise _invalid("enum value Advice")
    desc = _file(ctx, fd)
    if offset > _I64_MAX or length > _I64_MAX:
        raise WasiErrno(Errno.INVAL)
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    try:
        advise(desc.fd, offset, length, advice)
    except OSError as e:
        raise _os(e) from None


def fd_allocate(ctx: WasiCtx, mem: GuestMemory, fd: int, offset: int, length: int) -> None:
    _file(ctx, fd)
    raise WasiErrno(Errno.NOTSUP)


def fd_datasync(ctx: WasiCtx, mem: GuestMemory, fd: int) -> None:
    desc = _file(ctx, fd)
    sync = getattr(os, "fdatasync", os.fsync)
    try:
        sync(desc.fd)
    except OSError as e:
        raise _os(e) from None


def fd_sync(ctx: WasiCtx, mem: GuestMemory, fd: int) -> None:
    desc = _file(ctx, fd)
    try:
        os.fsync(desc.fd)
    except OSError as e:
        raise _os(e) from None


def _fdstat(ctx: WasiCtx, fd: int) -> tuple[int, int, int, int]:
    desc = ctx.get(fd)
    if isinstance(desc, StdioDesc):
        rights = R_FD_READ if desc.index == 0 else R_FD_WRITE
        return (FT_CHAR if desc.isatty() else FT_UNKNOWN), 0, rights, rights
    if isinstance(desc, DirDesc):
        if desc.preopen is not None:
            return FT_DIR, 0, PREOPEN_RIGHTS[0], PREOPEN_RIGHTS[1]
        rights = R_ALL & ~(
            R_FD_SEEK | R_FD_FILESTAT_SET_SIZE | R_PATH_FILESTAT_SET_SIZE | R_FD_WRITE
        )
        return FT_DIR, 0, rights, rights
    assert isinstance(desc, FileDesc)
    try:
        ftype = filetype_of(os.fstat(desc.fd).st_mode)
    except OSError as e:
        raise _os(e) from None
    rights = R_ALL
    if not desc.readable:
        rights &= ~(R_FD_READ | R_FD_READDIR)
    if not desc.writable:
        rights &= ~R_FD_WRITE
    flags = desc.sync_flags
    if desc.append:
        flags |= FDFLAG_APPEND
    if desc.nonblock:
        flags |= FDFLAG_NONBLOCK
    return ftype, flags, rights, rights


def fd_fdstat_get(ctx: WasiCtx, mem: GuestMemory, fd: int, out: int) -> None:
    mem.check(out, _FDSTAT.size, 8)
    mem.pack(_FDSTAT, out, 8, *_fdstat(ctx, fd))


def fd_fdstat_set_flags(ctx: WasiCtx, mem: GuestMemory, fd: int, flags: int) -> None:
    _check_flags(flags, _FDFLAGS_ALL, "Fdflags")
    desc = _file(ctx, fd)
    if flags & (FDFLAG_DSYNC | FDFLAG_SYNC | FDFLAG_RSYNC):
        raise WasiErrno(Errno.INVAL)
    append = bool(flags & FDFLAG_APPEND)
    if append != desc.append:
        if fcntl is None:
            raise WasiErrno(Errno.NOTSUP)
        try:
            cur = fcntl.fcntl(desc.fd, fcntl.F_GETFL)
            new = (cur | os.O_APPEND) if append else (cur & ~os.O_APPEND)
            fcntl.fcntl(desc.fd, fcntl.F_SETFL, new)
        except OSError as e:
            raise _os(e) from None
    desc.append = append
    desc.nonblock = bool(flags & FDFLAG_NONBLOCK)


def fd_fdstat_set_rights(ctx: WasiCtx, mem: GuestMemory, fd: int, base: int, inh: int) -> None:
    _check_flags(base, R_ALL, "Rights")
    _check_flags(inh, R_ALL, "Rights")
    _host_fd(ctx, fd)
    raise WasiErrno(Errno.NOTSUP)


def _filestat_of(st: os.stat_result) -> tuple[int, ...]:
    return (
        st.st_dev,
        st.st_ino,
        filetype_of(st.st_mode),
        st.st_nlink,
        st.st_size,
        st.st_atime_ns,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def fd_filestat_get(ctx: WasiCtx, mem: GuestMemory, fd: int, out: int) -> None:
    mem.check(out, _FILESTAT.size, 8)
    desc = ctx.get(fd)
    if isinstance(desc, StdioDesc):
        ftype = FT_CHAR if desc.isatty() else FT_UNKNOWN
        mem.pack(_FILESTAT, out, 8, 0, 0, ftype, 0, 0, 0, 0, 0)
        return
    try:
        st = os.fstat(desc.fd)
    except OSError as e:
        raise _os(e) from None
    mem.pack(_FILESTAT, out, 8, *_filestat_of(st))


def fd_filestat_set_size(ctx: WasiCtx, mem: GuestMemory, fd: int, size: int) -> None:
    desc = _file(ctx, fd)
    if size > _I64_MAX:
        raise WasiErrno(Errno.INVAL)
    try:
        os.ftruncate(desc.fd, size)
    except OSError as e:
        raise _os(e) from None


def _new_times(target: Any, atim: int, mtim: int, flags: int, follow: bool, **kw: Any) -> None:
    """``utimensat``-style update: each time is kept, set to a value, or set to now."""
    _check_flags(flags, _FST_ALL, "Fstflags")
    if flags & FST_ATIM and flags & FST_ATIM_NOW or flags & FST_MTIM and flags & FST_MTIM_NOW:
        raise WasiErrno(Errno.INVAL)
    if not flags:
        return
    try:
        st = os.stat(target, follow_symlinks=follow, **kw)
        now = time.time_ns()
        a = atim if flags & FST_ATIM else now if flags & FST_ATIM_NOW else st.st_atime_ns
        m = mtim if flags & FST_MTIM else now if flags & FST_MTIM_NOW else st.st_mtime_ns
        os.utime(target, ns=(a, m), follow_symlinks=follow, **kw)
    except OSError as e:
        raise _os(e) from None


def fd_filestat_set_times(
    ctx: WasiCtx, mem: GuestMemory, fd: int, atim: int, mtim: int, flags: int
) -> None:
    _check_flags(flags, _FST_ALL, "Fstflags")
    host = _host_fd(ctx, fd)
    _new_times(host, atim, mtim, flags, True)


# Reading and writing -------------------------------------------------------------


def _gather(mem: GuestMemory, iovs: int, count: int) -> bytes:
    parts = mem.iovecs(iovs, count)
    total = sum(n for _, n in parts)
    try_alloc(total, AllocKind.WASI)
    view = mem.view()
    return b"".join(bytes(view[p : p + n]) for p, n in parts)


def _scatter(mem: GuestMemory, parts: list[tuple[int, int]], data: bytes) -> None:
    pos = 0
    for ptr, n in parts:
        if pos >= len(data):
            break
        chunk = data[pos : pos + n]
        mem.write(ptr, chunk)
        pos += len(chunk)


def _write_stdio(desc: StdioDesc, data: bytes) -> int:
    kind = desc.spec.kind
    if kind == "null":
        return len(data)
    if kind == "custom":
        assert desc.spec.callback is not None
        out = desc.spec.callback(data)
        return len(data) if out is None else int(out)
    if kind == "inherit":
        stream = sys.stdout if desc.index == 1 else sys.stderr
        stream.flush()
    return os.write(desc.host_fd, data)


def fd_write(ctx: WasiCtx, mem: GuestMemory, fd: int, iovs: int, count: int, out: int) -> None:
    desc = ctx.get(fd)
    mem.check(out, 4, 4)
    if isinstance(desc, StdioDesc):
        if desc.index == 0:
            raise WasiErrno(Errno.BADF)
        data = _gather(mem, iovs, count)
        try:
            n = _write_stdio(desc, data)
        except OSError as e:
            raise _os(e) from None
    elif isinstance(desc, FileDesc):
        data = _gather(mem, iovs, count)
        if not desc.writable:
            raise WasiErrno(Errno.BADF)
        try:
            n = os.write(desc.fd, data)
        except OSError as e:
            raise _os(e) from None
    else:
        raise WasiErrno(Errno.BADF)
    mem.put_u32(out, n)


def fd_pwrite(
    ctx: WasiCtx, mem: GuestMemory, fd: int, iovs: int, count: int, offset: int, out: int
) -> None:
    desc = _seekable(ctx, fd)
    mem.check(out, 4, 4)
    if not desc.writable:
        raise WasiErrno(Errno.BADF)
    if offset > _I64_MAX:
        raise WasiErrno(Errno.INVAL)
    data = _gather(mem, iovs, count)
    try:
        n = os.pwrite(desc.fd, data, offset)
    except OSError as e:
        raise _os(e) from None
    mem.put_u32(out, n)


def _read_stdio(desc: StdioDesc, size: int) -> bytes:
    if desc.spec.kind in ("null", "custom"):
        return b""
    return os.read(desc.host_fd, size)


def fd_read(ctx: WasiCtx, mem: GuestMemory, fd: int, iovs: int, count: int, out: int) -> None:
    desc = ctx.get(fd)
    mem.check(out, 4, 4)
    parts = mem.iovecs(iovs, count)
    total = min(sum(n for _, n in parts), _U32_MAX)
    if isinstance(desc, StdioDesc):
        if desc.index != 0:
            raise WasiErrno(Errno.BADF)
        try_alloc(total, AllocKind.WASI)
        try:
            data = _read_stdio(desc, total)
        except OSError as e:
            raise _os(e) from None
    elif isinstance(desc, FileDesc):
        if not desc.readable:
            raise WasiErrno(Errno.BADF)
        try_alloc(total, AllocKind.WASI)
        try:
            data = os.read(desc.fd, total)
        except OSError as e:
            raise _os(e) from None
    else:
        raise WasiErrno(Errno.BADF)
    _scatter(mem, parts, data)
    mem.put_u32(out, len(data))


def fd_pread(
    ctx: WasiCtx, mem: GuestMemory, fd: int, iovs: int, count: int, offset: int, out: int
) -> None:
    desc = _seekable(ctx, fd)
    mem.check(out, 4, 4)
    if not desc.readable:
        raise WasiErrno(Errno.BADF)
    if offset > _I64_MAX:
        raise WasiErrno(Errno.INVAL)
    parts = mem.iovecs(iovs, count)
    total = min(sum(n for _, n in parts), _U32_MAX)
    try_alloc(total, AllocKind.WASI)
    try:
        data = os.pread(desc.fd, total, offset)
    except OSError as e:
        raise _os(e) from None
    _scatter(mem, parts, data)
    mem.put_u32(out, len(data))


def fd_seek(ctx: WasiCtx, mem: GuestMemory, fd: int, offset: int, whence: int, out: int) -> None:
    if whence > 2:
        raise _invalid("enum value Whence")
    desc = _seekable(ctx, fd)
    mem.check(out, 8, 8)
    signed = offset - (1 << 64) if offset > _I64_MAX else offset
    how = (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END)[whence]
    try:
        pos = os.lseek(desc.fd, signed, how)
    except OSError as e:
        raise _os(e) from None
    mem.put_u64(out, pos)


def fd_tell(ctx: WasiCtx, mem: GuestMemory, fd: int, out: int) -> None:
    desc = _seekable(ctx, fd)
    mem.check(out, 8, 8)
    try:
        pos = os.lseek(desc.fd, 0, os.SEEK_CUR)
    except OSError as e:
        raise _os(e) from None
    mem.put_u64(out, pos)


# Preopens and directories ----------------------------------------------------------


def fd_prestat_get(ctx: WasiCtx, mem: GuestMemory, fd: int, out: int) -> None:
    desc = ctx.get(fd)
    if not isinstance(desc, DirDesc) or desc.preopen is None:
        raise WasiErrno(Errno.BADF)
    mem.put_u8(out, 0)
    mem.put_u32(out + 4, len(desc.preopen.encode("utf-8")))


def fd_prestat_dir_name(ctx: WasiCtx, mem: GuestMemory, fd: int, buf: int, size: int) -> None:
    desc = ctx.get(fd)
    if not isinstance(desc, DirDesc) or desc.preopen is None:
        raise WasiErrno(Errno.BADF)
    name = desc.preopen.encode("utf-8")
    if len(name) > size:
        raise WasiErrno(Errno.NAMETOOLONG)
    mem.write(buf, name)


def _listing(desc: DirDesc) -> list[tuple[bytes, int, int]]:
    """``(name, inode, filetype)`` of every entry, ``.`` and ``..`` first."""
    try:
        here = os.fstat(desc.fd)
        try:
            parent_ino = os.stat("..", dir_fd=desc.fd).st_ino
        except OSError:
            parent_ino = here.st_ino
        entries: list[tuple[bytes, int, int]] = [
            (b".", here.st_ino, FT_DIR),
            (b"..", parent_ino, FT_DIR),
        ]
        with os.scandir(desc.fd) as it:
            for e in it:
                try_alloc(SLOT_SIZE * 4 + len(e.name), AllocKind.WASI)
                try:
                    ftype = filetype_of(e.stat(follow_symlinks=False).st_mode)
                except OSError:
                    ftype = FT_UNKNOWN
                entries.append((os.fsencode(e.name), e.inode(), ftype))
    except OSError as e:
        raise _os(e) from None
    return entries


def fd_readdir(
    ctx: WasiCtx, mem: GuestMemory, fd: int, buf: int, size: int, cookie: int, out: int
) -> None:
    desc = ctx.get(fd)
    if not isinstance(desc, DirDesc):
        raise WasiErrno(Errno.BADF)
    mem.check(buf, size)
    mem.check(out, 4, 4)
    entries = _listing(desc)
    used = 0
    for i in range(min(cookie, len(entries)), len(entries)):
        if used >= size:
            break
        name, ino, ftype = entries[i]
        record = _DIRENT.pack(i + 1, ino, len(name), ftype) + name
        chunk = record[: size - used]
        mem.write(buf + used, chunk)
        used += len(chunk)
    mem.put_u32(out, used)


# Paths ---------------------------------------------------------------------------------


def _path(mem: GuestMemory, ptr: int, size: int) -> str:
    try:
        return mem.string(ptr, size)
    except UnicodeDecodeError:
        raise WasiErrno(Errno.ILSEQ) from None


def path_create_directory(ctx: WasiCtx, mem: GuestMemory, fd: int, ptr: int, size: int) -> None:
    d = _dir(ctx, fd)
    path = _path(mem, ptr, size)
    d.require(2)
    with resolve(d.fd, path, False) as r:
        try:
            os.mkdir(r.name, dir_fd=r.dir_fd)
        except OSError as e:
            raise _os(e) from None


def path_remove_directory(ctx: WasiCtx, mem: GuestMemory, fd: int, ptr: int, size: int) -> None:
    d = _dir(ctx, fd)
    path = _path(mem, ptr, size)
    d.require(2)
    with resolve(d.fd, path, False) as r:
        try:
            os.rmdir(r.name, dir_fd=r.dir_fd)
        except OSError as e:
            raise _os(e) from None


def path_unlink_file(ctx: WasiCtx, mem: GuestMemory, fd: int, ptr: int, size: int) -> None:
    d = _dir(ctx, fd)
    path = _path(mem, ptr, size)
    d.require(2)
    with resolve(d.fd, path, False) as r:
        try:
            os.unlink(r.name, dir_fd=r.dir_fd)
        except OSError as e:
            raise _os(e) from None


def path_filestat_get(
    ctx: WasiCtx, mem: GuestMemory, fd: int, flags: int, ptr: int, size: int, out: int
) -> None:
    _check_flags(flags, LOOKUP_FOLLOW, "Lookupflags")
    d = _dir(ctx, fd)
    path = _path(mem, ptr, size)
    mem.check(out, _FILESTAT.size, 8)
    with resolve(d.fd, path, bool(flags & LOOKUP_FOLLOW)) as r:
        try:
            st = os.stat(r.name, dir_fd=r.dir_fd, follow_symlinks=False)
        except OSError as e:
            raise _os(e) from None
    mem.pack(_FILESTAT, out, 8, *_filestat_of(st))


def path_filestat_set_times(
    ctx: WasiCtx,
    mem: GuestMemory,
    fd: int,
    flags: int,
    ptr: int,
    size: int,
    atim: int,
    mtim: int,
    fst: int,
) -> None:
    _check_flags(flags, LOOKUP_FOLLOW, "Lookupflags")
    _check_flags(fst, _FST_ALL, "Fstflags")
    d = _dir(ctx, fd)
    path = _path(mem, ptr, size)
    with resolve(d.fd, path, bool(flags & LOOKUP_FOLLOW)) as r:
        _new_times(r.name, atim, mtim, fst, False, dir_fd=r.dir_fd)


def path_link(
    ctx: WasiCtx,
    mem: GuestMemory,
    old_fd: int,
    old_flags: int,
    old_ptr: int,
    old_size: int,
    new_fd: int,
    new_ptr: int,
    new_size: int,
) -> None:
    _check_flags(old_flags, LOOKUP_FOLLOW, "Lookupflags")
    src_dir = _dir(ctx, old_fd)
    dst_dir = _dir(ctx, new_fd)
    if old_flags & LOOKUP_FOLLOW:
        # Wasmtime never follows the source link (a hard link to a symlink's target).
        raise WasiErrno(Errno.INVAL)
    old = _path(mem, old_ptr, old_size)
    new = _path(mem, new_ptr, new_size)
    dst_dir.require(2)
    with (
        resolve(src_dir.fd, old, bool(old_flags & LOOKUP_FOLLOW)) as src,
        resolve(dst_dir.fd, new, False) as dst,
    ):
        try:
            os.link(
                src.name,
                dst.name,
                src_dir_fd=src.dir_fd,
                dst_dir_fd=dst.dir_fd,
                follow_symlinks=False,
            )
        except OSError as e:
            raise _os(e) from None


def path_readlink(
    ctx: WasiCtx, mem: GuestMemory, fd: int, ptr: int, size: int, buf: int, buf_len: int, out: int
) -> None:
    d = _dir(ctx, fd)
    path = _path(mem, ptr, size)
    mem.check(buf, buf_len)
    mem.check(out, 4, 4)
    with resolve(d.fd, path, False) as r:
        try:
            target = os.readlink(os.fsencode(r.name), dir_fd=r.dir_fd)
        except OSError as e:
            raise _os(e) from None
    try_alloc(len(target), AllocKind.WASI)
    data = target[:buf_len]
    mem.write(buf, data)
    mem.put_u32(out, len(data))


def path_rename(
    ctx: WasiCtx,
    mem: GuestMemory,
    fd: int,
    old_ptr: int,
    old_size: int,
    new_fd: int,
    new_ptr: int,
    new_size: int,
) -> None:
    src_dir = _dir(ctx, fd)
    dst_dir = _dir(ctx, new_fd)
    old = _path(mem, old_ptr, old_size)
    new = _path(mem, new_ptr, new_size)
    src_dir.require(2)
    dst_dir.require(2)
    with resolve(src_dir.fd, old, False) as src, resolve(dst_dir.fd, new, False) as dst:
        try:
            os.rename(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd)
        except OSError as e:
            raise _os(e) from None


def path_symlink(
    ctx: WasiCtx,
    mem: GuestMemory,
    old_ptr: int,
    old_size: int,
    fd: int,
    new_ptr: int,
    new_size: int,
) -> None:
    d = _dir(ctx, fd)
    target = _path(mem, old_ptr, old_size)
    new = _path(mem, new_ptr, new_size)
    d.require(2)
    if target.startswith("/"):
        raise WasiErrno(Errno.PERM)
    with resolve(d.fd, new, False) as r:
        try:
            os.symlink(target, r.name, dir_fd=r.dir_fd)
        except OSError as e:
            raise _os(e) from None


def _open_flags(oflags: int, fdflags: int, read: bool, write: bool) -> int:
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    if read and write:
        flags |= os.O_RDWR
    elif write:
        flags |= os.O_WRONLY
    else:
        flags |= os.O_RDONLY
    for bit, host in (
        (O_CREAT, os.O_CREAT),
        (O_DIRECTORY, os.O_DIRECTORY),
        (O_EXCL, os.O_EXCL),
        (O_TRUNC, os.O_TRUNC),
    ):
        if oflags & bit:
            flags |= host
    for bit, name in (
        (FDFLAG_APPEND, "O_APPEND"),
        (FDFLAG_DSYNC, "O_DSYNC"),
        (FDFLAG_RSYNC, "O_RSYNC"),
        (FDFLAG_SYNC, "O_SYNC"),
        (FDFLAG_NONBLOCK, "O_NONBLOCK"),
    ):
        if fdflags & bit:
            flags |= getattr(os, name, 0)
    return flags


def path_open(
    ctx: WasiCtx,
    mem: GuestMemory,
    fd: int,
    dirflags: int,
    ptr: int,
    size: int,
    oflags: int,
    base: int,
    inheriting: int,
    fdflags: int,
    out: int,
) -> None:
    _check_flags(dirflags, LOOKUP_FOLLOW, "Lookupflags")
    _check_flags(oflags, _OFLAGS_ALL, "Oflags")
    _check_flags(base, R_ALL, "Rights")
    _check_flags(inheriting, R_ALL, "Rights")
    _check_flags(fdflags, _FDFLAGS_ALL, "Fdflags")
    d = _dir(ctx, fd)
    if fdflags & (FDFLAG_DSYNC | FDFLAG_RSYNC | FDFLAG_SYNC):
        raise WasiErrno(Errno.NOTSUP)  # as Wasmtime: synchronous I/O is not offered
    path = _path(mem, ptr, size)
    mem.check(out, 4, 4)
    write = bool(base & _WRITE_RIGHTS) or bool(fdflags & FDFLAG_APPEND)
    read = bool(base & (R_FD_READ | R_FD_READDIR)) or not write
    if oflags & O_DIRECTORY and oflags & (O_CREAT | O_EXCL | O_TRUNC):
        raise WasiErrno(Errno.INVAL)
    if oflags & (O_CREAT | O_TRUNC):
        d.require(2)
    if write and not d.file_perms & 2 or read and not write and not d.file_perms & 1:
        raise WasiErrno(Errno.PERM)
    new_fd = ctx.reserve()
    flags = _open_flags(oflags, fdflags, read, write)
    # O_CREAT|O_EXCL never follows a final symlink (POSIX: EEXIST even if it dangles).
    exclusive = oflags & O_CREAT and oflags & O_EXCL
    follow = bool(dirflags & LOOKUP_FOLLOW) and not exclusive
    with resolve(d.fd, path, follow) as r:
        host = _open_at(r.dir_fd, r.name, flags)
    try:
        mode = os.fstat(host).st_mode
    except BaseException:
        os.close(host)
        raise
    if _stat.S_ISDIR(mode):
        ctx.insert(new_fd, DirDesc(host, None, d.dir_perms, d.file_perms))
    else:
        sync = fdflags & (FDFLAG_DSYNC | FDFLAG_RSYNC | FDFLAG_SYNC)
        nonblock = bool(fdflags & FDFLAG_NONBLOCK)
        append = bool(fdflags & FDFLAG_APPEND)
        ctx.insert(new_fd, FileDesc(host, read, write, append, nonblock, sync))
    mem.put_u32(out, new_fd)


def _open_at(dir_fd: int, name: str, flags: int) -> int:
    try:
        return os.open(name, flags, 0o666, dir_fd=dir_fd)
    except OSError as e:
        raise _os(e) from None


# Polling ----------------------------------------------------------------------------------


#: ``eventrwflags``: the read end of the stream is at its end.
_HANGUP = 1

#: One event: (userdata, errno, eventtype, nbytes, eventrwflags).
Event = tuple[int, int, int, int, int]


def _fd_subscription(ctx: WasiCtx, fd: int, reading: bool) -> tuple[int, int]:
    """``(eventrwflags, host fd to wait on or -1 when ready now)`` for an fd subscription.

    As in Wasmtime, only files and the matching standard stream can be polled;
    anything else fails the whole call with ``BADF``.
    """
    desc = ctx.table.get(fd)
    if isinstance(desc, FileDesc):
        if not reading:
            return 0, -1
        try:
            at_end = os.lseek(desc.fd, 0, os.SEEK_CUR) >= os.fstat(desc.fd).st_size
        except OSError as e:
            raise _os(e) from None
        return (_HANGUP if at_end else 0), -1
    if isinstance(desc, StdioDesc) and (desc.index == 0) == reading:
        if reading and desc.spec.kind == "inherit":
            try:
                ready, _, _ = select.select([desc.host_fd], [], [], 0)
            except (OSError, ValueError):
                return 0, -1
            return 0, (-1 if ready else desc.host_fd)
        return 0, -1
    raise WasiErrno(Errno.BADF)


def poll_oneoff(ctx: WasiCtx, mem: GuestMemory, sin: int, sout: int, n: int, out: int) -> None:
    if n == 0:
        raise WasiErrno(Errno.INVAL)
    mem.check(sin, _SUBSCRIPTION.size * n, 8)
    mem.check(sout, _EVENT.size * n, 8)
    mem.check(out, 4, 4)
    try_alloc(SLOT_SIZE * 8 * n, AllocKind.WASI)
    view = mem.view()
    subs = []
    for i in range(n):
        base = sin + _SUBSCRIPTION.size * i
        userdata, tag = struct.unpack_from("<QB", view, base)
        if tag > 2:
            raise _invalid("enum value Eventtype")
        subs.append((userdata, tag, base))
    deadlines: list[tuple[int, int]] = []  # (deadline ns monotonic, index)
    waiting: list[tuple[int, int]] = []  # (index, host fd) for stdin waits
    events: list[Event] = []
    now = time.monotonic_ns()
    # Wasmtime's order: subscriptions in turn, the first invalid one fails the call.
    for i, (userdata, tag, base) in enumerate(subs):
        if tag == 0:
            _, _, clock_id, timeout, _precision, cflags = _SUBSCRIPTION.unpack_from(view, base)
            if clock_id >= 2 or cflags & ~1:
                raise WasiErrno(Errno.INVAL)
            delta = timeout - _now(clock_id) if cflags & 1 else timeout  # 1: absolute
            deadlines.append((now + max(0, delta), i))
            continue
        fd = _SUB_FD.unpack_from(view, base)[2]
        flags, host_fd = _fd_subscription(ctx, fd, tag == 1)
        if host_fd < 0:
            events.append((userdata, 0, tag, 1, flags))
        else:
            waiting.append((i, host_fd))
    if not events:
        _wait(subs, deadlines, waiting, events)
    for k, event in enumerate(events):
        mem.pack(_EVENT, sout + _EVENT.size * k, 8, *event)
    mem.put_u32(out, len(events))


def _wait(
    subs: list[tuple[int, int, int]],
    deadlines: list[tuple[int, int]],
    waiting: list[tuple[int, int]],
    events: list[Event],
) -> None:
    """Block until the first clock expires or a waited-on stdin becomes readable."""
    first = min((d for d, _ in deadlines), default=None)
    timeout = None if first is None else max(0, first - time.monotonic_ns()) / 1e9
    if waiting:
        try:
            ready, _, _ = select.select([fd for _, fd in waiting], [], [], timeout)
        except (OSError, ValueError):
            ready = [fd for _, fd in waiting]
        for i, fd in waiting:
            if fd in ready:
                events.append((subs[i][0], 0, subs[i][1], 1, 0))
        if events:
            return
    elif timeout:
        time.sleep(timeout)
    now = time.monotonic_ns()
    for d, i in deadlines:
        if d <= now:
            events.append((subs[i][0], 0, 0, 0, 0))


# Sockets (none exist) -----------------------------------------------------------------------


def _not_a_socket(ctx: WasiCtx, fd: int) -> None:
    ctx.get(fd)
    raise WasiErrno(Errno.NOTSOCK)


def sock_accept(ctx: WasiCtx, mem: GuestMemory, fd: int, flags: int, out: int) -> None:
    _check_flags(flags, _FDFLAGS_ALL, "Fdflags")
    _not_a_socket(ctx, fd)


def sock_recv(
    ctx: WasiCtx,
    mem: GuestMemory,
    fd: int,
    iovs: int,
    count: int,
    flags: int,
    out: int,
    oflags: int,
) -> None:
    _check_flags(flags, _RIFLAGS_ALL, "Riflags")
    _not_a_socket(ctx, fd)


def sock_send(
    ctx: WasiCtx, mem: GuestMemory, fd: int, iovs: int, count: int, flags: int, out: int
) -> None:
    _not_a_socket(ctx, fd)


def sock_shutdown(ctx: WasiCtx, mem: GuestMemory, fd: int, how: int) -> None:
    _check_flags(how, _SDFLAGS_ALL, "Sdflags")
    _not_a_socket(ctx, fd)


#: name -> (param kinds, result kinds, implementation)
FUNCTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...], Impl]] = {}


def _register(sig: str, impl: Impl, results: tuple[str, ...] = ("i32",)) -> None:
    params = tuple("i64" if c == "I" else "i32" for c in sig)
    FUNCTIONS[impl.__name__] = (params, results, impl)


for _sig, _impl in (
    ("ii", args_get),
    ("ii", args_sizes_get),
    ("ii", environ_get),
    ("ii", environ_sizes_get),
    ("ii", clock_res_get),
    ("iIi", clock_time_get),
    ("iIIi", fd_advise),
    ("iII", fd_allocate),
    ("i", fd_close),
    ("i", fd_datasync),
    ("ii", fd_fdstat_get),
    ("ii", fd_fdstat_set_flags),
    ("iII", fd_fdstat_set_rights),
    ("ii", fd_filestat_get),
    ("iI", fd_filestat_set_size),
    ("iIIi", fd_filestat_set_times),
    ("iiiIi", fd_pread),
    ("ii", fd_prestat_get),
    ("iii", fd_prestat_dir_name),
    ("iiiIi", fd_pwrite),
    ("iiii", fd_read),
    ("iiiIi", fd_readdir),
    ("ii", fd_renumber),
    ("iIii", fd_seek),
    ("i", fd_sync),
    ("ii", fd_tell),
    ("iiii", fd_write),
    ("iii", path_create_directory),
    ("iiiii", path_filestat_get),
    ("iiiiIIi", path_filestat_set_times),
    ("iiiiiii", path_link),
    ("iiiiiIIii", path_open),
    ("iiiiii", path_readlink),
    ("iii", path_remove_directory),
    ("iiiiii", path_rename),
    ("iiiii", path_symlink),
    ("iii", path_unlink_file),
    ("iiii", poll_oneoff),
    ("i", proc_raise),
    ("", sched_yield),
    ("ii", random_get),
    ("iii", sock_accept),
    ("iiiiii", sock_recv),
    ("iiiii", sock_send),
    ("ii", sock_shutdown),
):
    _register(_sig, _impl)
_register("i", proc_exit, ())
