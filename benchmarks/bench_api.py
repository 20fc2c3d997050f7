"""Public-API costs, side by side: wasmrt vs wasmtime-py vs pywasm, one run.

Command (from the repository root; needs wasmtime and pywasm in .venv312):
    .venv312/bin/python benchmarks/bench_api.py [--rounds 15] [--skip-hook]

Measures, each engine timed in interleaved rounds (so machine load hits all
of them alike), and prints the median per operation and the ratios:

1. instantiate: a fresh store plus an instance of the benchmark's INSTANTIATE
   module, a 1,000-function module (100 exports, direct calls), the same
   module with a 1,000-entry funcref table filled by an element segment, and
   the C programs of benchmarks/c/ built by clang (``c/build.sh``; the
   ``.wasm`` files are committed). The module is compiled once; pywasm's
   decoded ``ModuleDesc`` is reused. Each C module's export is first called
   in every engine and the results compared (with the closed form when
   benchmarks/workloads.py has one).
2. trivial call: ``add(store, 1, 2)`` of an ``(i32, i32) -> i32`` export
   through the public API (pywasm: ``Runtime.invocate``).
3. hook overhead: every workload of benchmarks/workloads.py in wasmrt with
   no allocation hook vs with a no-op hook installed
   (``wasmrt.install_hook(lambda s, k, a: None)``); the share is
   ``hooked / plain - 1``.

Every engine's answer is checked before it is timed.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import C_MODULES, INSTANTIATE, WORKLOADS, Workload, c_module  # noqa: E402

import wasmrt  # noqa: E402

ADD = """(module (func (export "add") (param i32 i32) (result i32)
  (i32.add (local.get 0) (local.get 1))))"""


def many_functions(n: int = 1000, table: bool = False) -> str:
    """``n`` small functions, every third calling the next, every tenth exported."""
    funcs = []
    for i in range(n):
        body = f"(i32.add (local.get 0) (i32.const {i}))"
        if i % 3 == 0 and i + 1 < n:
            body = f"(call $f{i + 1} {body})"
        export = f'(export "f{i}")' if i % 10 == 0 else ""
        funcs.append(f"(func $f{i} {export} (param i32) (result i32) {body})")
    extra = ""
    if table:
        refs = " ".join(f"$f{i}" for i in range(n))
        extra = f"(table {n} funcref) (elem (i32.const 0) {refs})"
    return f"(module (memory 1) {extra} {' '.join(funcs)})"


Op = Callable[[], object]
#: A module as WAT text or binary bytes.
Source = str | bytes


def timed_rounds(ops: dict[str, tuple[Op, int]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each op, timed in interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for op, _ in ops.values():
        op()  # warm up (and bind lazily built code)
    for _ in range(rounds):
        for name, (op, inner) in ops.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                op()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {name: statistics.median(v) for name, v in samples.items()}


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:9.3f} ms"
    return f"{seconds * 1e6:9.2f} us"


# ---------------------------------------------------------------- instantiate


def wasmrt_instantiate(wat: Source) -> Op:
    engine = wasmrt.Engine()
    module = wasmrt.Module(engine, wat)

    def op() -> object:
        store = wasmrt.Store(engine)
        return wasmrt.Instance(store, module, [])

    return op


def wasmtime_instantiate(wat: Source) -> Op:
    import wasmtime

    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wat)

    def op() -> object:
        store = wasmtime.Store(engine)
        return wasmtime.Instance(store, module, [])

    return op


def pywasm_instantiate(wat: Source) -> Op:
    import pywasm

    data = wat if isinstance(wat, bytes) else bytes(wasmrt.wat2wasm(wat))
    desc = pywasm.core.ModuleDesc.from_reader(io.BytesIO(data))

    def op() -> object:
        return pywasm.core.Runtime().instance(desc)

    return op


def check_c_module(data: bytes, export: str, args: tuple[int, ...], expected: int | None) -> None:
    """Call ``export`` in every engine; exit unless all agree (and match ``expected``)."""
    import pywasm
    import wasmtime

    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    ours = wasmrt.Instance(store, wasmrt.Module(engine, data), []).exports(store)[export]
    wt_engine = wasmtime.Engine()
    wt_store = wasmtime.Store(wt_engine)
    wt_inst = wasmtime.Instance(wt_store, wasmtime.Module(wt_engine, data), [])
    rt = pywasm.core.Runtime()
    pw = rt.instance(pywasm.core.ModuleDesc.from_reader(io.BytesIO(data)))
    got = {
        "wasmrt": ours(store, *args),  # type: ignore[operator]
        "wasmtime-py": wt_inst.exports(wt_store)[export](wt_store, *args),  # type: ignore[operator]
        "pywasm": rt.invocate(pw, export, list(args))[0],
    }
    want = got["wasmtime-py"] if expected is None else expected
    if any(v != want for v in got.values()):
        raise SystemExit(f"{export}{args}: engines disagree: {got} (expected {want})")


# ---------------------------------------------------------------- trivial call


def wasmrt_add() -> Op:
    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    add = wasmrt.Instance(store, wasmrt.Module(engine, ADD), []).exports(store)["add"]
    assert add(store, 1, 2) == 3
    return lambda: add(store, 1, 2)


def wasmtime_add() -> Op:
    import wasmtime

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, ADD), [])
    add = inst.exports(store)["add"]
    assert add(store, 1, 2) == 3  # type: ignore[operator]
    return lambda: add(store, 1, 2)  # type: ignore[operator]


def pywasm_add() -> Op:
    import pywasm

    rt = pywasm.core.Runtime()
    data = bytes(wasmrt.wat2wasm(ADD))
    m = rt.instance(pywasm.core.ModuleDesc.from_reader(io.BytesIO(data)))
    assert rt.invocate(m, "add", [1, 2]) == [3]
    return lambda: rt.invocate(m, "add", [1, 2])


# ---------------------------------------------------------------- hook overhead


def wasmrt_workload(w: Workload, hooked: bool) -> Op:
    engine = wasmrt.Engine()
    module = wasmrt.Module(engine, w.wat)
    if w.kind == "instantiate":

        def inst() -> object:
            store = wasmrt.Store(engine)
            return wasmrt.Instance(store, module, []).exports(store)[w.export](store)

        run = inst
    else:
        store = wasmrt.Store(engine)
        func = wasmrt.Instance(store, module, []).exports(store)[w.export]

        def run() -> object:
            return func(store, *w.args)

    if not hooked:
        return run

    def noop(size: int, kind: object, absorbing: bool) -> None:
        return None

    def with_hook() -> object:
        with wasmrt.install_hook(noop):  # type: ignore[arg-type]
            return run()

    return with_hook


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--skip-hook", action="store_true")
    args = parser.parse_args()
    try:
        import pywasm  # noqa: F401
        import wasmtime  # noqa: F401
    except ImportError as e:
        print(f"peer missing in this interpreter: {e}")
        return 2
    print(f"Python {sys.version.split()[0]}, median of {args.rounds} interleaved rounds")

    print("\n== instantiate (fresh store + instance; module compiled once)")
    print(
        f"{'module':<26}{'wasmrt':>13}{'wasmtime-py':>13}{'pywasm':>13}{'wt/ours':>9}{'pw/ours':>9}"
    )
    cases: list[tuple[str, Source]] = [
        ("INSTANTIATE", INSTANTIATE),
        ("1000 funcs", many_functions()),
        ("1000 funcs + table", many_functions(table=True)),
    ]
    for _, file, export, c_args, expected in C_MODULES:
        data = c_module(file)
        check_c_module(data, export, c_args, expected)
        cases.append((f"C {file}.wasm ({len(data)} B)", data))
    for name, wat in cases:
        big = name.startswith("1000")
        med = timed_rounds(
            {
                "wasmrt": (wasmrt_instantiate(wat), 20 if big else 200),
                "wasmtime": (wasmtime_instantiate(wat), 20 if big else 200),
                "pywasm": (pywasm_instantiate(wat), 5 if big else 100),
            },
            args.rounds,
        )
        ours = med["wasmrt"]
        print(
            f"{name:<26}{fmt(ours):>13}{fmt(med['wasmtime']):>13}{fmt(med['pywasm']):>13}"
            f"{med['wasmtime'] / ours:>8.2f}x{med['pywasm'] / ours:>8.2f}x"
        )

    print("\n== trivial call: add(store, 1, 2)")
    med = timed_rounds(
        {
            "wasmrt": (wasmrt_add(), 2000),
            "wasmtime": (wasmtime_add(), 500),
            "pywasm": (pywasm_add(), 500),
        },
        args.rounds,
    )
    ours = med["wasmrt"]
    print(f"{'wasmrt':<14}{fmt(ours)}")
    print(f"{'wasmtime-py':<14}{fmt(med['wasmtime'])}  ({med['wasmtime'] / ours:.1f}x ours)")
    print(f"{'pywasm':<14}{fmt(med['pywasm'])}  ({med['pywasm'] / ours:.1f}x ours)")

    if not args.skip_hook:
        print("\n== hook overhead (wasmrt, no hook vs no-op hook)")
        print(f"{'workload':<22}{'no hook':>13}{'no-op hook':>13}{'share':>9}")
        shares = []
        for w in WORKLOADS:
            inner = 50 if w.kind == "instantiate" else 1
            med = timed_rounds(
                {
                    "plain": (wasmrt_workload(w, False), inner),
                    "hooked": (wasmrt_workload(w, True), inner),
                },
                args.rounds,
            )
            share = med["hooked"] / med["plain"] - 1
            shares.append(share)
            print(f"{w.name:<22}{fmt(med['plain']):>13}{fmt(med['hooked']):>13}{share:>8.1%}")
        print(f"{'median share':<48}{statistics.median(shares):>8.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
