"""Benchmark: a chain of DEPTH nested ``if``/``else`` (issue 14), wasmrt vs wasmtime-py.

Usage: PYTHONPATH=src .venv/bin/python benchmarks/bench_nested_if.py wasmrt|wasmtime DEPTH

The function is ``f(x) = 3*x`` for ``0 <= x < DEPTH``, else -1, as an
else-if chain ``DEPTH`` deep (wasmrt generates it in the flat form).
Prints the time of ``Module(Engine(), text)`` (text -> binary -> decode ->
validate), of the first call ``f(DEPTH)`` (wasmrt: code generation, Python
``compile()`` and the run; wasmtime-py compiles in ``Module``) and of a second
call, and the growth of peak RSS over the RSS before building the module.
"""

import resource
import sys
import time


def chain(depth: int) -> str:
    body = "".join(
        f"local.get 0 i32.const {k} i32.eq if (result i32) i32.const {3 * k} else "
        for k in range(depth)
    )
    body += "i32.const -1" + " end" * depth
    return f'(module (func (export "f") (param i32) (result i32) {body}))'


def main() -> None:
    engine_name, depth = sys.argv[1], int(sys.argv[2])
    if engine_name == "wasmtime":
        import wasmtime as w  # noqa: I001 - the peer, only when asked for
    else:
        import wasmrt as w
    text = chain(depth)
    with open("/proc/self/statm") as f:
        before = int(f.read().split()[1]) * resource.getpagesize()
    t0 = time.perf_counter()
    engine = w.Engine()
    module = w.Module(engine, text)
    t1 = time.perf_counter()
    store = w.Store(engine)
    f = w.Instance(store, module, []).exports(store)["f"]
    assert f(store, depth) == -1
    t2 = time.perf_counter()
    assert f(store, depth - 1) == 3 * (depth - 1)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"{engine_name} depth {depth}: module {t1 - t0:.2f} s, first call {t2 - t1:.2f} s, "
        f"second call {t3 - t2:.3f} s, dRSS {(peak - before) / 2**20:.0f} MB"
    )


if __name__ == "__main__":
    main()
