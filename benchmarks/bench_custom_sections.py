"""Benchmark: ``Module(Engine(), binary)`` of 12.5 M empty custom sections (issue 14).

Usage: PYTHONPATH=src .venv/bin/python benchmarks/bench_custom_sections.py wasmrt|wasmtime

Prints the time and the growth of peak RSS over the RSS before the call.
"""

import resource
import sys
import time

import wasmrt

data = b"\0asm\1\0\0\0" + b"\0\1\0" * 12_500_000
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * resource.getpagesize()
t0 = time.perf_counter()
if sys.argv[1] == "wasmtime":
    import wasmtime  # noqa: I001 - the peer, only when asked for

    wasmtime.Module(wasmtime.Engine(), data)
else:
    wasmrt.Module(wasmrt.Engine(), data)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(f"{sys.argv[1]}: {dt:.2f} s, dRSS {(peak - before) / 2**20:.0f} MB")
