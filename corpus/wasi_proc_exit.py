# oomfuzz: fork=false
"""WASI proc_exit under injection: a program's ``_start`` writes to stdout (and to a file it
creates) and exits with a code; ExitTrap is the guest's outcome, recorded with the output.
An exit status outside [0, 126) is an error, not an exit."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_wasi_guest", Path(__file__).with_name("_wasi_guest.py")
)
_guest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guest)

NAMES = ["proc_exit", "fd_write", "path_open", "fd_close"]

START = """
  (data (i32.const 16) "out.txt")
  (data (i32.const 32) "bye\\n")
  (func (export "_start") (param $code i32)
    (i32.store (i32.const 64) (i32.const 32))
    (i32.store (i32.const 68) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 72)))
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 7)
      (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 80)))
    (drop (call $fd_write (i32.load (i32.const 80)) (i32.const 64) (i32.const 1) (i32.const 72)))
    (call $proc_exit (local.get $code))
    unreachable)
"""


def scenario(ctx):
    exit_trap = ctx.api("ExitTrap")
    for code in (0, 3, 125, 126):
        world = _guest.WasiWorld(ctx, NAMES, extra_wat=START)
        try:
            try:
                world.exports["_start"](world.store, code)
                ctx.record(("returned", code))
            except exit_trap as e:
                ctx.record(("exit", e.code))
            except ctx.api("OutOfMemory"):
                raise
            except ctx.api("WasmtimeError") as e:
                ctx.record(("error", code, str(e).splitlines()[0]))
            ctx.record(b"".join(world.stdout))
            with open(Path(world.root) / "out.txt", "rb") as f:
                ctx.record(f.read())
        finally:
            world.close()
