"""Real C programs (``corpus/programs``): wasmrt against wasmtime-py, one run, same interpreter.

Each program runs as a WASI command with its sidecar's arguments (or, with
``--size N``, on a generated input of N bytes, ``-n N``: a run long enough
that the per-command cost of store, WASI and instantiation is a small part of
it, and the two engines' outputs are compared with each other): the module
is compiled once per engine (and run once, so wasmrt's lazily compiled
functions are compiled: execution is what is timed), then every timed run is
a fresh store, WASI context, instance and ``_start`` call. Both engines'
stdout and exit code are checked against the sidecar before timing.

    PYTHONPATH=$PWD/src .venv312/bin/python benchmarks/bench_programs.py --repeat 7
    PYTHONPATH=$PWD/src .venv312/bin/python benchmarks/bench_programs.py --repeat 3 --size 65536
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmrt

PROGRAMS = Path(__file__).resolve().parents[1] / "corpus" / "programs"


def sidecar(name: str) -> dict[str, object]:
    return json.loads((PROGRAMS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def root(name: str) -> str | None:
    """The sidecar's ``root``, preopened as ``/`` (the WASI testsuite format)."""
    r = sidecar(name).get("root")
    return None if r is None else str(PROGRAMS / str(r))


def program_args(name: str, size: int | None) -> list[str]:
    """argv: the sidecar's arguments, or a generated input of ``size`` bytes."""
    if size is not None:
        return [f"{name}.wasm", "-n", str(size)]
    return [f"{name}.wasm", *sidecar(name).get("args", [])]  # type: ignore[list-item]


def runner(api: Any, name: str, size: int | None) -> Callable[[], tuple[int, bytes]]:
    """A WASI command run of ``name`` through ``api``: ``wasmrt``, or ``wasmtime`` (the
    same API: wasmrt is a drop-in for wasmtime-py), stdout captured in a file."""
    engine = api.Engine()
    module = api.Module(engine, (PROGRAMS / f"{name}.wasm").read_bytes())
    args = program_args(name, size)
    fd, path = tempfile.mkstemp(prefix="bench-programs-")
    os.close(fd)

    def run() -> tuple[int, bytes]:
        store = api.Store(engine)
        cfg = api.WasiConfig()
        cfg.argv = args
        cfg.stdout_file = path
        if root(name) and size is None:
            cfg.preopen_dir(root(name), "/")
        store.set_wasi(cfg)
        linker = api.Linker(engine)
        linker.define_wasi()
        inst = linker.instantiate(store, module)
        code = 0
        try:
            inst.exports(store)["_start"](store)
        except api.ExitTrap as e:
            code = e.code
        return code, Path(path).read_bytes()

    return run


def measure(fn: Callable[[], tuple[int, bytes]], repeat: int) -> tuple[float, tuple[int, bytes]]:
    result = fn()  # warm-up: wasmrt compiles the functions the program runs
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> int:
    import wasmtime  # noqa: PLC0415 - the peer, only in the comparison interpreter

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--size", type=int, default=None, help="a generated input of N bytes")
    ap.add_argument("names", nargs="*", default=["lz4", "xxhash", "brotli", "brotli_cleanup"])
    args = ap.parse_args()
    what = "sidecar arguments" if args.size is None else f"-n {args.size}"
    print(f"Python {sys.version.split()[0]}, median of {args.repeat} runs, {what}")
    print("| program | wasmrt | wasmtime-py | wasmrt / wasmtime-py |")
    print("|---|---:|---:|---:|")
    for name in args.names:
        expected = sidecar(name)
        t_ours, ours = measure(runner(wasmrt, name, args.size), args.repeat)
        t_peer, peer = measure(runner(wasmtime, name, args.size), args.repeat)
        want = (int(expected.get("exit_code", 0)), str(expected.get("stdout", "")).encode())  # type: ignore[call-overload]
        if args.size is not None:
            want = peer  # no recorded output for a generated size: the engines must agree
        if ours != want or peer != want or ours[0] != 0:
            raise SystemExit(f"{name}: wasmrt gave {ours!r}, wasmtime-py {peer!r}, want {want!r}")
        print(
            f"| {name} | {t_ours * 1e3:.2f} ms | {t_peer * 1e3:.2f} ms | {t_ours / t_peer:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
