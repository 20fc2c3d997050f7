# oomfuzz: fork=false
"""WASI stdin under injection: fd_read from fd 0, once from a null stdin (0 bytes) and once
from a stdin file (scattered into two iovecs, then to its end); fd_read on stdout is BADF.
`fork=false`: the stdin file's offset is process state a forked child would share."""

import importlib.util
import os
import struct
import tempfile
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_wasi_guest", Path(__file__).with_name("_wasi_guest.py")
)
_guest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guest)

NAMES = ["fd_read"]


def scenario(ctx):
    world = _guest.WasiWorld(ctx, NAMES)  # stdin: null
    try:
        out, buf = _guest.OUT, _guest.BUF
        ctx.record(("null", world.call("fd_read", 0, world.iov(b"\0" * 8), 1, out)))
        ctx.record(world.u32(out))
        ctx.record(("stdout", world.call("fd_read", 1, world.iov(b"\0" * 8), 1, out)))
    finally:
        world.close()
    fd, path = tempfile.mkstemp(prefix="oomfuzz-stdin-", dir=_guest.SCRATCH)
    try:
        os.write(fd, b"hello, stdin")
        os.close(fd)
        _read_file_stdin(ctx, path, buf, out)
    finally:
        os.unlink(path)


def _read_file_stdin(ctx, path, buf, out):
    api = ctx.api
    engine = ctx.engine()
    store = ctx.store(engine)
    linker = api("Linker")(engine)
    linker.define_wasi()
    config = api("WasiConfig")()
    config.stdin_file = path
    store.set_wasi(config)
    inst = linker.instantiate(store, ctx.module(engine, _guest.guest_wat(NAMES)))
    ctx.track(inst, "Instance(stdin guest)")
    ex = inst.exports(store)
    mem = ex["memory"]
    mem.write(store, struct.pack("<IIII", buf, 5, buf + 64, 2), out + 32)
    ctx.record(("file", int(ex["w_fd_read"](store, 0, out + 32, 2, out))))
    n = struct.unpack("<I", bytes(mem.read(store, out, out + 4)))[0]
    ctx.record(bytes(mem.read(store, buf, buf + 5)) + bytes(mem.read(store, buf + 64, buf + 66)))
    mem.write(store, struct.pack("<II", buf, 32), out + 32)
    ctx.record(("rest", int(ex["w_fd_read"](store, 0, out + 32, 1, out)), n))
    ctx.record(
        bytes(
            mem.read(store, buf, buf + struct.unpack("<I", bytes(mem.read(store, out, out + 4)))[0])
        )
    )
