# oomfuzz: fork=false
"""WASI descriptor I/O under injection: open a file, write (gathered iovecs), seek/tell, read
(scattered), pread/pwrite, fdstat get/set flags, filestat get/set size, sync, advise,
allocate, renumber and close; stdout through a custom callback; wrong-descriptor errnos."""

import importlib.util
import struct
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_wasi_guest", Path(__file__).with_name("_wasi_guest.py")
)
_guest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guest)

NAMES = [
    "path_open",
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_tell",
    "fd_pread",
    "fd_pwrite",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_sync",
    "fd_datasync",
    "fd_advise",
    "fd_allocate",
    "fd_renumber",
    "fd_close",
]


def scenario(ctx):
    world = _guest.WasiWorld(ctx, NAMES, files={"data.txt": b"0123456789"})
    try:
        out, buf = _guest.OUT, _guest.BUF
        err, fd = world.open("data.txt")
        ctx.record(("open", err))
        # Two iovecs gathered into one write.
        world.write(buf, b"abc")
        world.write(buf + 100, b"defgh")
        world.write(out + 32, struct.pack("<IIII", buf, 3, buf + 100, 5))
        ctx.record(("write", world.call("fd_write", fd, out + 32, 2, out), world.u32(out)))
        ctx.record(("tell", world.call("fd_tell", fd, out), world.u64(out)))
        ctx.record(("seek", world.call("fd_seek", fd, 2, 0, out), world.u64(out)))
        # Scattered read into two buffers.
        world.write(out + 32, struct.pack("<IIII", buf + 200, 4, buf + 300, 16))
        ctx.record(("read", world.call("fd_read", fd, out + 32, 2, out), world.u32(out)))
        ctx.record(world.read(buf + 200, 4) + world.read(buf + 300, world.u32(out) - 4))
        ctx.record(("pwrite", world.call("fd_pwrite", fd, world.iov(b"XY"), 1, 1, out)))
        ctx.record(("pread", world.call("fd_pread", fd, world.iov(b"\0" * 6), 1, 0, out)))
        ctx.record(world.read(buf, world.u32(out)))
        ctx.record(("fdstat", world.call("fd_fdstat_get", fd, out), world.read(out, 4)))
        ctx.record(("append", world.call("fd_fdstat_set_flags", fd, 1)))
        ctx.record(("write", world.call("fd_write", fd, world.iov(b"!"), 1, out)))
        ctx.record(("filestat", world.call("fd_filestat_get", fd, out), world.u64(out + 32)))
        ctx.record(("truncate", world.call("fd_filestat_set_size", fd, 4)))
        ctx.record(("sync", world.call("fd_sync", fd), world.call("fd_datasync", fd)))
        ctx.record(("advise", world.call("fd_advise", fd, 0, 4, 1)))
        ctx.record(("allocate", world.call("fd_allocate", fd, 0, 4)))
        ctx.record(("stdout", world.call("fd_write", 1, world.iov(b"hello\n"), 1, out)))
        ctx.record(b"".join(world.stdout))
        ctx.record(("stdin write", world.call("fd_write", 0, world.iov(b"x"), 1, out)))
        ctx.record(("seek stdout", world.call("fd_seek", 1, 0, 0, out)))
        ctx.record(("read dir", world.call("fd_read", 3, world.iov(b"\0"), 1, out)))
        err2, fd2 = world.open("data.txt", rights=_guest.R_READ)
        ctx.record(("renumber", err2, world.call("fd_renumber", fd2, fd)))
        ctx.record(
            ("pread after renumber", world.call("fd_pread", fd, world.iov(b"\0" * 8), 1, 0, out))
        )
        ctx.record(world.read(buf, world.u32(out)))
        ctx.record(("close", world.call("fd_close", fd), world.call("fd_close", fd)))
        ctx.record(("closed", world.call("fd_write", fd, world.iov(b"x"), 1, out)))
    finally:
        world.close()
