# oomfuzz: fork=false
"""WASI clocks, random and scheduling under injection: clock_res_get/clock_time_get for every
clock id (CPU-time clocks are BADF, an unknown id traps), random_get of several sizes
(a copy the host allocates), sched_yield and proc_raise."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_wasi_guest", Path(__file__).with_name("_wasi_guest.py")
)
_guest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guest)

NAMES = ["clock_res_get", "clock_time_get", "random_get", "sched_yield", "proc_raise"]


def scenario(ctx):
    world = _guest.WasiWorld(ctx, NAMES)
    try:
        out, buf = _guest.OUT, _guest.BUF
        for clock in range(5):
            ctx.record(("res", clock, world.call("clock_res_get", clock, out)))
            ctx.record(("time", clock, world.call("clock_time_get", clock, 1000, out + 8)))
        first = world.u64(out + 8)
        world.call("clock_time_get", 1, 0, out + 16)
        ctx.record(("monotonic", world.u64(out + 16) >= first))
        for size in (0, 1, 32, 4096):
            world.write(buf, b"\0" * size)
            ctx.record(("random", size, world.call("random_get", buf, size)))
        ctx.record(("random oob", world.call("random_get", 65536 - 8, 16)))
        ctx.record(("yield", world.call("sched_yield")))
        ctx.record(("raise", world.call("proc_raise", 2), world.call("proc_raise", 99)))
    finally:
        world.close()
