"""The on-disk code cache (``Config.cache``): what a CLI user pays for the first command.

Each case runs in a fresh Python process (nothing in the process caches) and
times ``Module(...)`` plus the first run of the program as a WASI command
with its sidecar's arguments (output and exit code checked against the
sidecar): without the cache (the default config), with an empty cache
directory (cold: every function generated, compiled and written), and with
the directory a cold run filled (warm: every function read from disk).
Reported: the median over ``--repeat`` processes of each case, and the
cache counters of the last one.

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/bench_diskcache.py --repeat 5 brotli
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROGRAMS = Path(__file__).resolve().parents[1] / "corpus" / "programs"


def child(name: str, directory: str | None) -> dict[str, Any]:
    """One first command in this (fresh) process."""
    import wasmrt  # noqa: PLC0415 - imported in the child only, after the clock's reference
    from wasmrt.runtime import diskcache  # noqa: PLC0415

    sidecar = json.loads((PROGRAMS / f"{name}.json").read_text())
    config = wasmrt.Config()
    if directory is not None:
        toml = Path(directory).with_suffix(".toml")
        toml.write_text(f'[cache]\ndirectory = "{directory}"\n')
        config.cache = str(toml)
    engine = wasmrt.Engine(config)
    wasm = (PROGRAMS / f"{name}.wasm").read_bytes()
    t0 = time.perf_counter()
    module = wasmrt.Module(engine, wasm)
    t1 = time.perf_counter()
    store = wasmrt.Store(engine)
    out: list[bytes] = []
    cfg = wasmrt.WasiConfig()
    cfg.argv = [f"{name}.wasm", *sidecar.get("args", [])]
    cfg.stdout_custom = out.append
    if sidecar.get("root"):
        cfg.preopen_dir(str(PROGRAMS / sidecar["root"]), "/")
    store.set_wasi(cfg)
    linker = wasmrt.Linker(engine)
    linker.define_wasi()
    code = 0
    try:
        linker.instantiate(store, module).exports(store)["_start"](store)
    except wasmrt.ExitTrap as e:
        code = e.code
    t2 = time.perf_counter()
    if code != sidecar.get("exit_code", 0) or b"".join(out) != sidecar["stdout"].encode():
        raise SystemExit(f"{name}: exit {code}, output {b''.join(out)!r}")
    return {"module": t1 - t0, "first_run": t2 - t1, "counters": diskcache.counters()}


def in_fresh_process(name: str, directory: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name]
    if directory is not None:
        cmd += ["--dir", directory]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def cases(name: str, repeat: int, scratch: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"no cache": [], "cold cache": [], "warm cache": []}
    warm_dir = str(scratch / "warm")
    in_fresh_process(name, warm_dir)  # fill it once
    for n in range(repeat):
        out["no cache"].append(in_fresh_process(name, None))
        cold_dir = scratch / f"cold{n}"
        out["cold cache"].append(in_fresh_process(name, str(cold_dir)))
        shutil.rmtree(cold_dir)
        out["warm cache"].append(in_fresh_process(name, warm_dir))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("names", nargs="*", default=["brotli"])
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.dir)))
        return 0
    print(f"Python {sys.version.split()[0]}, median of {args.repeat} fresh processes per case")
    print("| program | case | Module | first run | Module + first run | hits / misses / writes |")
    print("|---|---|---:|---:|---:|---|")
    for name in args.names:
        with tempfile.TemporaryDirectory(prefix="bench-diskcache-") as scratch:
            for case, runs in cases(name, args.repeat, Path(scratch)).items():
                mod = statistics.median(r["module"] for r in runs)
                first = statistics.median(r["first_run"] for r in runs)
                total = statistics.median(r["module"] + r["first_run"] for r in runs)
                c = runs[-1]["counters"]
                print(
                    f"| {name} | {case} | {mod * 1e3:.0f} ms | {first * 1e3:.0f} ms "
                    f"| {total * 1e3:.0f} ms | {c['hits']} / {c['misses']} / {c['writes']} |"
                )
    return 0


if __name__ == "__main__":
    os.environ.pop("WASMRT_CACHE_DIR", None)
    raise SystemExit(main())
