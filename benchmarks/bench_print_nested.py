"""Benchmark: ``print_module`` of deeply nested ``if``/``else`` (issue 14).

Usage: PYTHONPATH=src .venv/bin/python benchmarks/bench_print_nested.py [DEPTH ...]

For each depth (default 5000 and 20000), parses a function of that many
nested ``if``/``else`` and prints its size and the time of ``print_module``,
flat and folded.
"""

import sys
import time

from wasmrt.text import parse_wat
from wasmrt.text.printer import print_module


def main() -> None:
    depths = [int(a) for a in sys.argv[1:]] or [5000, 20000]
    for depth in depths:
        body = "local.get 0 if (result i32) i32.const 1 else " * depth
        body += "i32.const 2" + " end" * depth
        module = parse_wat(f"(module (func (param i32) (result i32) {body}))")
        for folded in (False, True):
            t0 = time.perf_counter()
            text = print_module(module, folded=folded)
            dt = time.perf_counter() - t0
            form = "folded" if folded else "flat"
            print(f"depth {depth} {form}: {len(text) / 2**20:.1f} MiB in {dt:.2f} s")


if __name__ == "__main__":
    main()
