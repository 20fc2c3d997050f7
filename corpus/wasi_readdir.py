# oomfuzz: fork=false
"""WASI fd_readdir under injection: a directory listing (host-allocated) read whole, in small
buffers resuming from cookies (truncated entries), past the end, and on non-directories."""

import importlib.util
import struct
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_wasi_guest", Path(__file__).with_name("_wasi_guest.py")
)
_guest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guest)

NAMES = ["path_open", "fd_readdir", "fd_close"]
FILES = {f"entry-{i:02d}.txt": b"x" * i for i in range(12)}
FILES["subdir"] = None


def entries(data):
    """(cookie, name, type) of each complete entry; a truncated tail is skipped."""
    out, pos = [], 0
    while pos + 24 <= len(data):
        cookie, _ino, n, ftype = struct.unpack_from("<QQIB", data, pos)
        if pos + 24 + n > len(data):
            break
        out.append((cookie, data[pos + 24 : pos + 24 + n].decode(), ftype))
        pos += 24 + n
    return out


def scenario(ctx):
    world = _guest.WasiWorld(ctx, NAMES, files=FILES)
    try:
        out, buf = _guest.OUT, _guest.BUF
        ctx.record(("whole", world.call("fd_readdir", 3, buf, 4096, 0, out)))
        ctx.record(sorted((name, t) for _, name, t in entries(world.read(buf, world.u32(out)))))
        # Resume from the last complete entry's cookie with a buffer of 64 bytes.
        names, cookie, rounds = [], 0, 0
        while rounds < 50:
            rounds += 1
            err = world.call("fd_readdir", 3, buf, 64, cookie, out)
            used = world.u32(out)
            got = entries(world.read(buf, used))
            if err or not got:
                ctx.record(("chunked end", err, used))
                break
            names.extend(name for _, name, _ in got)
            cookie = got[-1][0]
            if used < 64:
                break
        ctx.record(sorted(names))
        ctx.record(("past end", world.call("fd_readdir", 3, buf, 64, 1000, out), world.u32(out)))
        err, fd = world.open("subdir", oflags=2, rights=_guest.R_READ)
        ctx.record(("subdir", err, world.call("fd_readdir", fd, buf, 256, 0, out)))
        ctx.record(sorted(name for _, name, _ in entries(world.read(buf, world.u32(out)))))
        ctx.record(("close", world.call("fd_close", fd)))
        err, fd = world.open("entry-03.txt", rights=_guest.R_READ)
        ctx.record(("file", err, world.call("fd_readdir", fd, buf, 256, 0, out)))
        ctx.record(("stdout", world.call("fd_readdir", 1, buf, 256, 0, out)))
    finally:
        world.close()
