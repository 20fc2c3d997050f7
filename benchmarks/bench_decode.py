"""Benchmark: decode (+validate when available) every binary module of the spec suite.

Usage: .venv/bin/python benchmarks/bench_decode.py [--repeat N] [--no-validate]

Converts the suite with ``wasm-tools json-from-wast`` into a temporary
directory, keeps the modules that decode, then times N passes over them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wasmrt.binary import decode_module
from wasmrt.errors import InvalidModuleError, MalformedError

SUITE = Path(
    os.environ.get(
        "WASM_TESTSUITE_DIR", Path(__file__).resolve().parents[2] / "shared" / "wasm-testsuite"
    )
)


def wasm_tools() -> str:
    exe = shutil.which("wasm-tools") or str(Path(sys.executable).parent / "wasm-tools")
    return exe


def load_modules(tmp: Path) -> list[bytes]:
    out: list[bytes] = []
    for wast in sorted(SUITE.glob("*.wast")):
        d = tmp / wast.stem
        d.mkdir()
        js = d / "out.json"
        subprocess.run(
            [wasm_tools(), "json-from-wast", str(wast), "-o", str(js), "--wasm-dir", str(d)],
            check=True,
            capture_output=True,
        )
        for cmd in json.loads(js.read_text())["commands"]:
            fn = cmd.get("filename", "")
            if fn.endswith(".wasm") and cmd["type"] != "assert_malformed":
                out.append((d / fn).read_bytes())
    good = []
    for data in out:
        try:
            decode_module(data)
        except MalformedError:
            continue
        good.append(data)
    return good


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-validate", action="store_true")
    args = ap.parse_args()
    validate = None
    if not args.no_validate:
        try:
            from wasmrt.validate import validate_module as validate
        except ImportError:
            validate = None
    with tempfile.TemporaryDirectory() as tmp:
        mods = load_modules(Path(tmp))
    total = sum(len(m) for m in mods)
    print(f"{len(mods)} modules, {total / 1e6:.2f} MB per pass, {args.repeat} passes")

    def run(with_validate: bool) -> float:
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            for data in mods:
                m = decode_module(data)
                if with_validate and validate is not None:
                    try:
                        validate(m)
                    except InvalidModuleError:  # assert_invalid modules are in the set
                        pass
        return time.perf_counter() - t0

    for label, with_validate in (("decode", False), ("decode+validate", True)):
        if with_validate and validate is None:
            print("decode+validate: validator not available")
            continue
        dt = run(with_validate)
        n = len(mods) * args.repeat
        print(
            f"{label:16s} {total * args.repeat / dt / 1e6:7.2f} MB/s  {n / dt:9.0f} modules/s  ({dt:.2f}s)"
        )


if __name__ == "__main__":
    main()
