"""The cost of the C stack guard: a trivial call and a host->wasm re-entry, wasmrt only.

Command (from the repository root; compare two checkouts by their ``src``):
    PYTHONPATH=src .venv/bin/python benchmarks/bench_reentry.py [--rounds 15]

1. trivial call: ``add(store, 1, 2)`` through the public API (the outermost
   entry; it never probes the C stack).
2. re-entry: ``outer(store)`` calls an imported host function that calls the
   export ``inner`` of the same instance, i.e. one outermost entry plus one
   nested entry (which probes the C stack, ``wasmrt.vm.cstack``).

Prints the median and the best round, in microseconds per call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import wasmrt as w

ADD = """(module (func (export "add") (param i32 i32) (result i32)
  (i32.add (local.get 0) (local.get 1))))"""
REENTER = """(module (import "h" "cb" (func $c (result i32)))
  (func (export "outer") (result i32) call $c)
  (func (export "inner") (result i32) i32.const 1))"""


def rounds(op: Callable[[], object], n: int, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        for _ in range(n):
            op()
        out.append((time.perf_counter() - t0) / n * 1e6)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    engine = w.Engine()
    store = w.Store(engine)
    add = w.Instance(store, w.Module(engine, ADD), []).exports(store)["add"]
    assert add(store, 1, 2) == 3
    inner: list[w.Func] = []
    host = w.Func(store, w.FuncType([], [w.ValType.i32()]), lambda: inner[0](store))
    inst = w.Instance(store, w.Module(engine, REENTER), [host])
    inner.append(inst.exports(store)["inner"])
    outer = inst.exports(store)["outer"]
    assert outer(store) == 1
    for name, op, n in (
        ("trivial call", lambda: add(store, 1, 2), 20000),
        ("re-entry (outer -> host -> inner)", lambda: outer(store), 10000),
    ):
        r = rounds(op, n, args.rounds)
        print(f"{name:36s} median {statistics.median(r):7.3f} us  best {min(r):7.3f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
