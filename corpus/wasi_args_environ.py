# oomfuzz: fork=false
"""WASI arguments and environment under injection: WasiConfig.argv/env, set_wasi, args_* and
environ_* calls (sizes, then the strings), including a too-small out pointer (a trap)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_wasi_guest", Path(__file__).with_name("_wasi_guest.py")
)
_guest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guest)

NAMES = ["args_sizes_get", "args_get", "environ_sizes_get", "environ_get"]


def scenario(ctx):
    world = _guest.WasiWorld(
        ctx,
        NAMES,
        argv=["prog", "first", "zweites Argument", ""],
        env=[("HOME", "/"), ("LANG", "C.UTF-8"), ("EMPTY", "")],
    )
    try:
        out, buf = _guest.OUT, _guest.BUF
        for sizes, strings in (
            ("args_sizes_get", "args_get"),
            ("environ_sizes_get", "environ_get"),
        ):
            ctx.record(world.call(sizes, out, out + 4))
            count, size = world.u32(out), world.u32(out + 4)
            ctx.record((count, size))
            ctx.record(world.call(strings, out + 64, buf))
            ptrs = [world.u32(out + 64 + 4 * i) - buf for i in range(count)]
            ctx.record((ptrs, world.read(buf, size)))
            ctx.record(world.call(strings, 65536 - 2, buf))  # pointer array out of bounds
    finally:
        world.close()
