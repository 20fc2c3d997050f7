"""wasmrt against pywasm, same workloads, same interpreter, one run.

Usage (pywasm 2.x needs Python >= 3.12):
    PY=$(PYENV_VERSION=3.12.1 pyenv which python)
    $PY -m venv .venv312 && .venv312/bin/pip install pywasm -e .
    .venv312/bin/python benchmarks/bench_exec.py [--repeat 5]

Prints the median time per workload for each engine and the ratio
pywasm / wasmrt, then the geometric mean of the ratios (scalar WAT
workloads only; the SIMD workload and the C-built modules of
benchmarks/c/ are reported after it). Each engine's answer
is checked against the expected value before it is timed.
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


def wasm_bytes(w: Workload) -> bytes:
    if w.wasm is not None:
        return w.wasm
    return bytes(wasmrt.wat2wasm(w.wat))


def wasmrt_runner(w: Workload) -> Callable[[], object]:
    engine = wasmrt.Engine()
    module = wasmrt.Module(engine, wasm_bytes(w))
    if w.kind == "instantiate":

        def inst() -> object:
            store = wasmrt.Store(engine)
            return wasmrt.Instance(store, module, []).exports(store)[w.export](store)

        return inst
    store = wasmrt.Store(engine)
    func = wasmrt.Instance(store, module, []).exports(store)[w.export]
    return lambda: func(store, *w.args)


def pywasm_runner(w: Workload) -> Callable[[], object]:
    import pywasm

    data = wasm_bytes(w)
    if w.kind == "instantiate":

        def inst() -> object:
            rt = pywasm.core.Runtime()
            m = rt.instance(pywasm.core.ModuleDesc.from_reader(io.BytesIO(data)))
            return rt.invocate(m, w.export, list(w.args))[0]

        return inst
    rt = pywasm.core.Runtime()
    m = rt.instance(pywasm.core.ModuleDesc.from_reader(io.BytesIO(data)))
    return lambda: rt.invocate(m, w.export, list(w.args))[0]


def measure(fn: Callable[[], object], repeat: int, inner: int) -> tuple[float, object]:
    result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times), result


def check(name: str, engine: str, got: object, expected: object) -> None:
    if expected is not None and got != expected:
        raise SystemExit(f"{engine} computed {got!r} for {name}, expected {expected!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-simd", action="store_true", help="skip the SIMD workload")
    parser.add_argument("--no-c", action="store_true", help="skip the C-built modules")
    args = parser.parse_args()
    try:
        import pywasm  # noqa: F401
    except ImportError:
        print("pywasm is not installed in this interpreter: the peer is unavailable")
        return 2
    print(f"Python {sys.version.split()[0]}, median of {args.repeat} runs")
    print(f"{'workload':<22}{'wasmrt':>12}{'pywasm':>12}{'speed-up':>10}")
    ratios = []
    for w in WORKLOADS:
        ratios.append(compare(w, args.repeat))
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"{'geometric mean (scalar)':<46}{geo:>9.1f}x")
    if not args.no_simd:
        for w in SIMD_WORKLOADS:
            compare(w, args.repeat)
    if not args.no_c:
        for w in c_workloads():
            compare(w, args.repeat)
    return 0


def compare(w: Workload, repeat: int) -> float:
    """Time ``w`` under both engines, check they agree, print a row, return the speed-up."""
    inner = 50 if w.kind == "instantiate" else 1
    t_ours, r_ours = measure(wasmrt_runner(w), repeat, inner)
    t_peer, r_peer = measure(pywasm_runner(w), repeat, inner)
    check(w.name, "wasmrt", r_ours, w.expected)
    check(w.name, "pywasm", r_peer, w.expected)
    if w.expected is None:
        agree = (
            math.isclose(r_ours, float(r_peer), rel_tol=1e-12)  # type: ignore[arg-type]
            if isinstance(r_ours, float)
            else r_ours == r_peer
        )
        if not agree:
            raise SystemExit(f"results differ for {w.name}: {r_ours} vs {r_peer}")
    ratio = t_peer / t_ours
    print(f"{w.name:<22}{t_ours * 1e3:>10.2f}ms{t_peer * 1e3:>10.2f}ms{ratio:>9.1f}x")
    return ratio


if __name__ == "__main__":
    raise SystemExit(main())
