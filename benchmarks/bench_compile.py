"""Compile time, side by side: wasmrt ``Module(...)`` vs pywasm's load vs wasmtime-py.

Command (from the repository root; needs pywasm and wasmtime in .venv312):
    PYTHONPATH=$PWD/src .venv312/bin/python benchmarks/bench_compile.py \
        [--rounds 9] [--sizes 1000,10000,100000] [--skip-load] [--skip-scaling]

1. load: every benchmark module (benchmarks/workloads.py: the scalar and SIMD
   workloads and the C-built modules) through ``wasmrt.Module(engine, bytes)``
   and through pywasm's ``ModuleDesc.from_reader`` (pywasm decodes only), in
   interleaved rounds; median per module, ratio pywasm / wasmrt and their
   geometric mean. wasmrt's ``Module`` decodes, validates and prepares the
   module; functions are generated and compiled on their first call, so the
   table also shows "Module + all": ``Module`` then every function of the
   default variant generated and compiled (``CompiledModule.compile_all``) with
   the process-wide caches emptied first, which is the cost an eager compiler
   would pay.
2. scaling: a generated module of N distinct functions (each with its own
   constants, a loop, a call to the next function, every tenth exported) for
   each N in ``--sizes``: wasmrt ``Module`` (lazy), wasmrt ``Module`` + all
   functions compiled, and wasmtime-py's ``Module`` (Cranelift), one timed run
   each (the modules are large), plus wasmrt's time per function.
   Before timing, one export of each size is called in both engines and the
   results compared.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import SIMD_WORKLOADS, WORKLOADS, Workload, c_workloads  # noqa: E402

import wasmrt  # noqa: E402

try:
    from wasmrt.compile import cache as wasmrt_cache  # noqa: E402
except ImportError:  # before per-function compilation
    wasmrt_cache = None  # type: ignore[assignment]


def wasm_bytes(w: Workload) -> bytes:
    if w.wasm is not None:
        return w.wasm
    return bytes(wasmrt.wat2wasm(w.wat))


def many_functions(n: int) -> str:
    """``n`` distinct functions: a loop with per-function constants, a call to the next."""
    funcs = []
    for i in range(n):
        call = f"(local.set 1 (call $f{i + 1} (local.get 1)))" if i + 1 < n else ""
        export = f'(export "f{i}")' if i % 10 == 0 else ""
        funcs.append(
            f"(func $f{i} {export} (param i32) (result i32) (local i32 i32)\n"
            f"  (local.set 1 (i32.const {i}))\n"
            f"  (block $done (loop $l\n"
            f"    (br_if $done (i32.ge_u (local.get 2) (local.get 0)))\n"
            f"    (local.set 1 (i32.xor (i32.mul (local.get 1) (i32.const {2 * i + 1}))\n"
            f"                          (i32.add (local.get 2) (i32.const {i % 977}))))\n"
            f"    (local.set 2 (i32.add (local.get 2) (i32.const 1)))\n"
            f"    (br $l)))\n"
            f"  (if (i32.eqz (i32.and (local.get 0) (i32.const 1))) (then {call}))\n"
            f"  (local.get 1))"
        )
    return "(module\n" + "\n".join(funcs) + ")"


def to_wasm(wat: str) -> bytes:
    try:
        import wasmtime

        return bytes(wasmtime.wat2wasm(wat))
    except ImportError:
        return bytes(wasmrt.wat2wasm(wat))


def wasmrt_eager(engine: wasmrt.Engine, data: bytes) -> object:
    """``Module`` then every function generated and compiled, with the process caches
    emptied first (a cold compile, as the first module of a process gets)."""
    clear = getattr(wasmrt_cache, "clear", None)
    if clear is not None:
        clear()
    module = wasmrt.Module(engine, data)
    compile_all = getattr(module._core.compiled, "compile_all", None)
    if compile_all is not None:  # absent before lazy compilation: Module was eager
        compile_all()
    return module


def section_load(rounds: int) -> None:
    import pywasm

    mods = [(w.name, wasm_bytes(w)) for w in (*WORKLOADS, *SIMD_WORKLOADS, *c_workloads())]
    engine = wasmrt.Engine()
    ops: dict[tuple[str, str], Callable[[], object]] = {}
    for name, data in mods:
        ops[(name, "wasmrt")] = lambda d=data: wasmrt.Module(engine, d)
        ops[(name, "eager")] = lambda d=data: wasmrt_eager(engine, d)
        ops[(name, "pywasm")] = lambda d=data: pywasm.core.ModuleDesc.from_reader(io.BytesIO(d))
    samples: dict[tuple[str, str], list[float]] = {k: [] for k in ops}
    for op in ops.values():
        op()
    for _ in range(rounds):
        for key, op in ops.items():
            inner = 20
            t0 = time.perf_counter()
            for _ in range(inner):
                op()
            samples[key].append((time.perf_counter() - t0) / inner)
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"load: median of {rounds} rounds x 20")
    print(
        f"{'module':<22}{'bytes':>7}{'wasmrt':>11}{'Module+all':>12}{'pywasm':>11}"
        f"{'ratio':>8}{'ratio(all)':>11}"
    )
    ratios, ratios_all = [], []
    for name, data in mods:
        ours, eager, peer = med[(name, "wasmrt")], med[(name, "eager")], med[(name, "pywasm")]
        ratios.append(peer / ours)
        ratios_all.append(peer / eager)
        print(
            f"{name:<22}{len(data):>7}{ours * 1e6:>9.0f}us{eager * 1e6:>10.0f}us"
            f"{peer * 1e6:>9.0f}us{peer / ours:>7.2f}x{peer / eager:>10.2f}x"
        )
    g = math.exp(sum(map(math.log, ratios)) / len(ratios))
    ga = math.exp(sum(map(math.log, ratios_all)) / len(ratios_all))
    print(f"{'geometric mean (pywasm / wasmrt)':<62}{g:>7.2f}x{ga:>10.2f}x")


def section_scaling(sizes: list[int]) -> None:
    import wasmtime

    print("scaling: one timed run per size (seconds)")
    print(
        f"{'functions':>10}{'bytes':>11}{'wasmrt':>9}{'wasmrt+all':>11}{'wasmtime':>10}"
        f"{'all/wasmtime':>13}{'us/func(all)':>13}"
    )
    for n in sizes:
        data = to_wasm(many_functions(n))
        we = wasmtime.Engine()
        t0 = time.perf_counter()
        wm = wasmtime.Module(we, data)
        t_wt = time.perf_counter() - t0
        engine = wasmrt.Engine()
        t0 = time.perf_counter()
        module = wasmrt.Module(engine, data)
        t_lazy = time.perf_counter() - t0
        t0 = time.perf_counter()
        wasmrt_eager(engine, data)
        t_all = time.perf_counter() - t0
        # Same answer from both engines (one export, through the lazily compiled module).
        ws = wasmtime.Store(we)
        expect = wasmtime.Instance(ws, wm, []).exports(ws)["f0"](ws, 10)
        store = wasmrt.Store(engine)
        got = wasmrt.Instance(store, module, []).exports(store)["f0"](store, 10)
        if got != expect:
            raise SystemExit(f"f0(10) differs at n={n}: wasmrt {got}, wasmtime {expect}")
        print(
            f"{n:>10}{len(data):>11}{t_lazy:>9.2f}{t_all:>11.2f}{t_wt:>10.2f}"
            f"{t_all / t_wt:>12.1f}x{t_all / n * 1e6:>13.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    if not args.skip_load:
        section_load(args.rounds)
    if not args.skip_scaling:
        section_scaling([int(s) for s in args.sizes.split(",")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
