"""Benchmark: the WAT reader's time and peak memory on big and hostile text, beside wasmtime-py.

Usage: PYTHONPATH=src .venv/bin/python benchmarks/bench_text.py [--sizes 1,10,50] [--cases ...]

Every measurement runs in a fresh child process (``--child``), which builds
its input, records its resident set, runs one operation and reports the time
and the growth of peak RSS over the RSS just before the operation
(``ru_maxrss`` after minus current RSS before). Operations:

- ``reader``: text -> binary (``wasmrt.text.wat2wasm`` / ``wasmtime.wat2wasm``);
- ``module``: ``Module(Engine(), text)`` (text -> binary -> decode, validate,
  compile), the whole path a user calls.

Inputs (``MB`` = 2**20 characters of text):

- ``data``: one data segment written as ``wasm-tools print`` does (printable
  ASCII as is, other bytes as ``\\hh``);
- ``funcs``: many small functions (locals, folded and flat instructions,
  blocks, a loop, exports);
- ``parens``: ``"(" * N``, unbalanced (an error for both engines);
- ``openblocks``: ``(module (func (block (block ...`` never closed: every
  list starts with a keyword, so the whole text is read before the error;
- ``nest100k`` / ``fnest100k``: 100,000 nested blocks, flat and folded.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

_FUNC = (
    '(func $f{i} (export "f{i}") (param $a i32) (param $b i32) (result i32) (local $t i32)\n'
    "  local.get $a local.get $b i32.add local.set $t\n"
    "  (block $done (loop $l (br_if $done (i32.eqz (local.get $t)))\n"
    "    (local.set $t (i32.sub (local.get $t) (i32.const 1))) (br $l)))\n"
    "  (i32.mul (local.get $t) (i32.const {i})))\n"
)


def _data_text(size: int) -> str:
    parts = ['(module (memory 1) (data (i32.const 0) "']
    n = 0
    i = 0
    chunk = []
    while n < size:
        b = (i * 7919 + (i >> 8)) & 0xFF
        i += 1
        s = chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:02x}"
        chunk.append(s)
        n += len(s)
        if len(chunk) >= 65536:
            parts.append("".join(chunk))
            chunk = []
    parts.append("".join(chunk))
    pages = i // 65536 + 1
    parts[0] = f'(module (memory {pages}) (data (i32.const 0) "'
    parts.append('"))')
    return "".join(parts)


def _funcs_text(size: int) -> str:
    parts = ["(module\n"]
    n = 0
    i = 0
    while n < size:
        s = _FUNC.format(i=i)
        parts.append(s)
        n += len(s)
        i += 1
    parts.append(")")
    return "".join(parts)


def make_input(case: str, size: int) -> str:
    if case == "data":
        return _data_text(size)
    if case == "funcs":
        return _funcs_text(size)
    if case == "parens":
        return "(" * size
    if case == "openblocks":
        return "(module (func " + "(block " * (size // 7)
    if case == "nest100k":
        return '(module (func (export "f") ' + "block " * 100_000 + "end " * 100_000 + "))"
    if case == "fnest100k":
        return '(module (func (export "f") ' + "(block " * 100_000 + ")" * 100_000 + "))"
    raise SystemExit(f"unknown case {case}")


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def child(engine: str, op: str, case: str, size: int) -> dict:
    if engine == "wasmrt":
        import wasmrt
        from wasmrt.text import wat2wasm

        def run_op(text: str) -> object:
            if op == "reader":
                return wat2wasm(text)
            return wasmrt.Module(wasmrt.Engine(), text)
    else:
        import wasmtime

        def run_op(text: str) -> object:
            if op == "reader":
                return wasmtime.wat2wasm(text)
            return wasmtime.Module(wasmtime.Engine(), text)

    text = make_input(case, size)
    before = _rss_now()
    t0 = time.perf_counter()
    try:
        run_op(text)
        outcome = "ok"
    except Exception as e:  # noqa: BLE001 - reported, the child exits right after
        outcome = f"{type(e).__name__}: {str(e).splitlines()[0][:60]}"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "chars": len(text),
        "seconds": seconds,
        "delta_rss": max(peak - before, 0),
        "outcome": outcome,
    }


def measure(engine: str, op: str, case: str, size: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, op, case, str(size)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"outcome": f"timeout > {timeout:.0f} s", "seconds": float("nan"), "delta_rss": 0}
    if out.returncode != 0:
        return {"outcome": f"exit {out.returncode}", "seconds": float("nan"), "delta_rss": 0}
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} KB"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, engine, op, case, size = sys.argv
        print(json.dumps(child(engine, op, case, int(size))))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,50", help="text sizes in MB")
    ap.add_argument("--cases", default="data,funcs,parens,nest100k,fnest100k")
    ap.add_argument("--ops", default="reader,module")
    ap.add_argument("--module-max-mb", type=int, default=10, help="skip 'module' on bigger funcs")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument(
        "--wasmrt-only", action="store_true", help="no peer (e.g. to measure an older wasmrt)"
    )
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        "| input | op | wasmrt time | wasmrt ΔRSS | wasmtime-py time | wasmtime-py ΔRSS "
        "| time ratio | memory ratio | outcome |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for case in args.cases.split(","):
        for size_mb in sizes if case in ("data", "funcs", "parens", "openblocks") else [0]:
            for op in args.ops.split(","):
                if op == "module" and case == "funcs" and size_mb > args.module_max_mb:
                    continue
                size = size_mb << 20
                ours = measure("wasmrt", op, case, size, args.timeout)
                if args.wasmrt_only:
                    peer = {"outcome": ours["outcome"], "seconds": float("nan"), "delta_rss": 0}
                else:
                    peer = measure("wasmtime", op, case, size, args.timeout)
                label = f"{case} {size_mb} MB" if size_mb else case
                tr = ours["seconds"] / peer["seconds"] if peer["seconds"] else float("nan")
                mr = ours["delta_rss"] / max(peer["delta_rss"], 1)
                outcome = ours["outcome"]
                if peer["outcome"] != outcome:
                    outcome += f" / peer: {peer['outcome']}"
                print(
                    f"| {label} | {op} | {ours['seconds']:.2f} s | {_mb(ours['delta_rss'])} "
                    f"| {peer['seconds']:.2f} s | {_mb(peer['delta_rss'])} | {tr:.1f}× | {mr:.1f}× "
                    f"| {outcome} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
