"""Time to full site coverage: the ``sites`` schedule against the exhaustive one.

Sweeps the given scenarios (default ``corpus/``) in this process, once per
schedule, and notes the time of every injection; "full coverage" is the
moment the sweep has injected at every site the exhaustive sweep injects at.
Also reports points swept, failures found and the total time of each sweep.

``--seeded`` instead sweeps the seeded bugs of ``tests/oomfuzz/seeded.py``
(each one patched in turn) with the exhaustive schedule and with the
``sites`` schedule's first pass alone (``sample=0``), and reports the
failure classes each finds and the injections each needs.

    PYTHONPATH=$PWD/src python benchmarks/bench_schedule.py corpus/ --mode both --allocator both
    PYTHONPATH=$PWD/src python benchmarks/bench_schedule.py --seeded
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pytest

from oomfuzz.oomtest import Iteration, OomTest
from oomfuzz.report import RunReport
from oomfuzz.scenario import ScenarioRunner, find_scenarios, load_scenario
from oomfuzz.sweep import InProcess, Unit, run_units, sweep_units

ROOT = Path(__file__).resolve().parents[1]


class Timeline:
    """Per-injection times and sites of one in-process sweep."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.events: list[tuple[float, str]] = []
        self.points = 0
        self.failures = 0

    def unit_started(self, unit: Unit) -> None: ...

    def on_total(self, n: int) -> None: ...

    def on_iteration(self, it: Iteration, ordinal: int) -> None:
        self.points += 1
        self.failures += int(it.failed)
        if it.injected is not None:
            self.events.append((time.monotonic() - self.start, str(it.injected.site)))

    def unit_done(self, report: RunReport) -> None: ...

    def sites(self) -> set[str]:
        return {site for _, site in self.events}

    def time_to(self, wanted: set[str]) -> float | None:
        seen: set[str] = set()
        for t, site in self.events:
            seen.add(site)
            if wanted <= seen:
                return t
        return None


def sweep(paths: list[str], mode: str, allocator: str, schedule: str) -> tuple[Timeline, float]:
    scenarios = [load_scenario(p) for p in find_scenarios(paths)]
    units = sweep_units(scenarios, mode, allocator, schedule=schedule, engine="replay")
    line = Timeline()
    for _ in run_units(units, InProcess(), line):
        pass
    return line, time.monotonic() - line.start


def corpus(args: argparse.Namespace) -> None:
    ex, ex_total = sweep(args.paths, args.mode, args.allocator, "exhaustive")
    si, si_total = sweep(args.paths, args.mode, args.allocator, "sites")
    wanted = ex.sites()
    t_ex, t_si = ex.time_to(wanted), si.time_to(wanted)
    print(f"sites injected: exhaustive {len(wanted)}, sites {len(si.sites())}")
    print("| schedule | points | failures | sweep time | time to full site coverage |")
    print("|---|---:|---:|---:|---:|")
    print(f"| exhaustive | {ex.points} | {ex.failures} | {ex_total:.1f} s | {t_ex:.1f} s |")
    print(f"| sites | {si.points} | {si.failures} | {si_total:.1f} s | {t_si:.1f} s |")
    if t_ex and t_si:
        print(f"full coverage {t_ex / t_si:.1f}x sooner")


def seeded_bugs() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "oomfuzz"))
    import seeded  # noqa: PLC0415 - a test helper, found only once its directory is on the path

    bugs = seeded.BUGS
    print(
        "| seeded bug | exhaustive: found / injections / s | sites firsts: found / injections / s |"
    )
    print("|---|---|---|")
    for bug, allocator, header in bugs:
        cells = []
        for schedule, sample in (("exhaustive", None), ("sites", 0)):
            with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
                registry = bug(mp)
                path = seeded.write_script(Path(tmp), header)
                text = path.read_text() + '(assert_return (invoke "get") (i32.const 5))\n' * 3
                path.write_text(text)
                runner = ScenarioRunner(load_scenario(path), allocator)
                t0 = time.monotonic()
                res = OomTest(
                    raise_on_failure=False,
                    probe=runner,
                    schedule=schedule,
                    sample=sample,
                    engine="replay",
                ).test(runner.run)
                took = time.monotonic() - t0
                if isinstance(registry, list):
                    registry.clear()
            found = ",".join(sorted({it.verdict.value for it in res.failures})) or "nothing"
            cells.append(f"{found} / {len(res.iterations)} / {took:.1f}")
        print(f"| {bug.__name__} | {cells[0]} | {cells[1]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=[str(ROOT / "corpus")])
    ap.add_argument("--mode", default="both")
    ap.add_argument("--allocator", default="both")
    ap.add_argument("--seeded", action="store_true")
    args = ap.parse_args()
    if args.seeded:
        seeded_bugs()
    else:
        corpus(args)


if __name__ == "__main__":
    main()
