# oomfuzz: fork=false
"""WASI poll_oneoff under injection: clock subscriptions (relative, absolute, CPU-time BADF),
fd_read/fd_write subscriptions on a file, stdout and a closed descriptor, mixed sets, the
empty set (INVAL) and an unknown event type (a trap)."""

import importlib.util
import struct
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_wasi_guest", Path(__file__).with_name("_wasi_guest.py")
)
_guest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guest)

NAMES = ["path_open", "poll_oneoff", "clock_time_get"]
SUB = struct.Struct("<QB7xIxxxxQQH6x")
FD_SUB = struct.Struct("<QB7xI")
EVENT = struct.Struct("<QHBxxxxxQH6x")


def clock(userdata, clock_id, timeout, flags=0):
    return SUB.pack(userdata, 0, clock_id, timeout, 0, flags)


def fd_sub(userdata, tag, fd):
    return FD_SUB.pack(userdata, tag, fd).ljust(SUB.size, b"\0")


def poll(world, subs):
    out, buf = _guest.OUT, _guest.BUF
    world.write(buf, b"".join(subs))
    err = world.call("poll_oneoff", buf, buf + 1024, len(subs), out)
    if err:
        return err
    events = []
    for i in range(world.u32(out)):
        userdata, errno, tag, nbytes, _flags = EVENT.unpack(
            world.read(buf + 1024 + EVENT.size * i, EVENT.size)
        )
        events.append((userdata, errno, tag, nbytes))
    return sorted(events)


def scenario(ctx):
    world = _guest.WasiWorld(ctx, NAMES, files={"f.txt": b"12345"})
    try:
        _, fd = world.open("f.txt")
        ctx.record(("relative", poll(world, [clock(1, 1, 0)])))
        ctx.record(("short sleep", poll(world, [clock(2, 1, 1_000_000)])))
        world.call("clock_time_get", 1, 0, _guest.OUT + 64)
        now = world.u64(_guest.OUT + 64)
        ctx.record(("absolute past", poll(world, [clock(3, 1, now, 1)])))
        ctx.record(("cpu clock", poll(world, [clock(4, 2, 0)])))
        ctx.record(("file", poll(world, [fd_sub(5, 1, fd), fd_sub(6, 2, fd)])))
        ctx.record(("stdout", poll(world, [fd_sub(7, 2, 1), clock(8, 1, 10**9)])))
        ctx.record(("closed fd", poll(world, [fd_sub(9, 1, 99)])))
        ctx.record(("wrong direction", poll(world, [fd_sub(10, 1, 1)])))
        ctx.record(("empty", poll(world, [])))
        ctx.record(("bad tag", poll(world, [SUB.pack(11, 7, 0, 0, 0, 0)])))
    finally:
        world.close()
