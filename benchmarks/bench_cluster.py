"""The same sweep on a local Dask cluster of N workers and with ``--jobs N``: points/s.

Starts a ``distributed.LocalCluster`` (scheduler here, N single-threaded
worker processes on 127.0.0.1), then runs ``oomfuzz sweep PATHS ... --jobs N``
and ``oomfuzz sweep PATHS ... --cluster ADDRESS`` as subprocesses, each
timed on the wall clock, and checks that both reports are equal
(``oomfuzz.merge.canonical``, ignoring which engine ran each unit) before
printing the table.

    PYTHONPATH=src python benchmarks/bench_cluster.py ../shared/wasm-testsuite \
        --sample 20 --seed 1 --workers 2

Needs the ``cluster`` extra (Dask's ``distributed``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import distributed

from oomfuzz.merge import canonical
from oomfuzz.report import SweepReport


def sweep(args: argparse.Namespace, out: Path, where: list[str]) -> tuple[SweepReport, float]:
    cmd = [sys.executable, "-m", "oomfuzz", "sweep", *args.paths, "-q", "--json", str(out),
           "--mode", args.mode, "--allocator", args.allocator, "--engine", args.engine,
           *(["--sample", str(args.sample), "--seed", str(args.seed)] if args.sample else []),
           *where]  # fmt: skip
    start = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if run.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} exited {run.returncode}:\n{run.stderr[-2000:]}")
    return SweepReport.from_json(out.read_text()), wall


def verdicts(report: SweepReport) -> dict[str, object]:
    """``canonical`` without the engine that ran each unit (with ``--engine auto`` a
    unit that forks locally runs replay on a Dask worker; the verdicts are the same)."""
    d = canonical(report)
    d["summary"].pop("engines")
    for run in d["runs"]:
        run.pop("engine")
        run["notes"] = [n for n in run["notes"] if not n.startswith("fork engine")]
    return d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sample", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", default="transient")
    p.add_argument("--allocator", default="both")
    p.add_argument("--engine", default="replay")
    args = p.parse_args()
    n = args.workers
    with tempfile.TemporaryDirectory() as tmp:
        local, local_s = sweep(args, Path(tmp) / "local.json", ["--jobs", str(n)])
        with distributed.LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # any free port: never 8787 taken by another cluster
        ) as lc:
            clustered, cluster_s = sweep(
                args, Path(tmp) / "cluster.json", ["--cluster", lc.scheduler_address]
            )
    same = verdicts(local) == verdicts(clustered)
    points = local.summary().injection_points
    print("| executor | units | injection points | wall | points/s |")
    print("|---|---:|---:|---:|---:|")
    for name, rep, wall in (
        (f"`--jobs {n}` (local process pool)", local, local_s),
        (f"`--cluster` (Dask, {n} workers × 1 thread)", clustered, cluster_s),
    ):
        pts = rep.summary().injection_points
        print(f"| {name} | {rep.summary().runs} | {pts} | {wall:.1f} s | {pts / wall:.1f} |")
    print(f"\ncluster / local points/s: {local_s / cluster_s:.2f}×; reports equal: {same}")
    if not same or points == 0:
        sys.exit("the clustered report differs from the local one")


if __name__ == "__main__":
    main()
