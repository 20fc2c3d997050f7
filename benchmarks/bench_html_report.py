"""How fast the HTML report is written and how fast its pages load in headless Chromium.

Usage:
    .venv/bin/python benchmarks/bench_html_report.py REPORT.json [--repeat 5]
    .venv/bin/python benchmarks/bench_html_report.py --sweep       # sweeps corpus/ as ./dev sweep does

With ``--sweep`` it first runs ``oomfuzz sweep corpus/ --mode both --allocator
both --jobs N --json`` (what ``./dev sweep`` runs) into a temporary directory.
It then writes the report directory (``oomfuzz.htmlreport``), timing it, and
opens the index, the strips page and the largest source page in headless
Chromium (``tests/support/chromium.py``, DevTools over a pipe) ``--repeat``
times each, printing the median load time (the page's own ``performance.now()``
at its load event: parsing, style, layout and the page's script, from a
``file://`` URL) and the number of DOM elements, and failing on any console
error. No peer exists for this report, so the numbers stand alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from oomfuzz.htmlreport import write_html  # noqa: E402
from oomfuzz.report import SweepReport  # noqa: E402
from support.chromium import Browser, find_chromium  # noqa: E402


def sweep(out: Path) -> None:
    jobs = str(os.cpu_count() or 2)
    cmd = [sys.executable, "-m", "oomfuzz", "sweep", "corpus/", "--mode", "both"]
    cmd += ["--allocator", "both", "--jobs", jobs, "-q", "--json", str(out)]
    print("$", " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"sweep failed with exit status {proc.returncode}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", nargs="?", type=Path)
    ap.add_argument("--sweep", action="store_true", help="sweep corpus/ first, as ./dev sweep")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if find_chromium() is None:
        print("no chromium on PATH (Debian package chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-html-") as tmp:
        path = args.report
        if args.sweep:
            path = Path(tmp) / "sweep.json"
            sweep(path)
        if path is None:
            ap.error("give REPORT.json or --sweep")
        rep = SweepReport.from_json(path.read_text(encoding="utf-8"))
        s = rep.summary()
        print(
            f"report: {s.runs} units, {s.injection_points} injection points, {s.failures} failures"
        )
        out = Path(tmp) / "site"
        t0 = time.perf_counter()
        write_html(rep, out)
        print(f"write: {time.perf_counter() - t0:.2f} s")
        files = sorted((out / "files").glob("*.html"), key=lambda p: p.stat().st_size)
        pages = [out / "index.html", out / "strips.html", files[-1]]
        print(f"| page | size | DOM elements | load (median of {args.repeat}) |")
        print("|---|---:|---:|---:|")
        with Browser() as b:
            for page in pages:
                times = [b.open(page.as_uri()) for _ in range(args.repeat)]
                elements = b.evaluate("document.querySelectorAll('*').length")
                name = page.relative_to(out).as_posix()
                size = page.stat().st_size / 1024
                med = statistics.median(times)
                print(f"| {name} | {size:.0f} KiB | {elements} | {med:.0f} ms |")
            if b.errors:
                print("console errors:", *b.errors, sep="\n  ", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
