"""The long, opt-in differential and robustness campaign: wasmrt against Wasmtime.

Usage::

    .venv/bin/python tools/diff_campaign.py --time 3600 --seed 7 [--jobs N]
        [--modules 10000] [--inputs 1000000] [--simd] [--no-save] [--out DIR]

Invariants:
- Deterministic work list: module ``i`` of configuration ``c`` is smith
  input ``seed_bytes(f"{seed}:{c}", i)``; robustness base ``b`` is
  ``robustness_inputs(seed, b, ...)``. Any finding reproduces from its label.
- Work runs in ``--jobs`` worker processes; every input is time-boxed there
  with ``SIGALRM`` (``--input-timeout``), so a hang in wasmrt (pure Python,
  interruptible) is recorded with its input instead of stalling the run.
- The run stops when both targets (``--modules``, ``--inputs``) are met or
  ``--time`` has elapsed, whichever comes first; work in flight at the
  deadline is given a short grace period and then dropped.
- Divergences are shrunk (``wasm-tools shrink``) per distinct signature and
  saved as ``tests/differential/regressions/*.wat`` marked xfail, so CI
  replays them (strictly) until wasmrt is fixed. Robustness problems are
  saved to ``regressions/robust/*.wasm`` with a ``.xfail`` note. Hangs are
  only written to ``--out`` (replaying a hang in CI would stall CI).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from differential import harness as h  # noqa: E402

#: Differential configurations, rotated by module index: (name, smith options, call fuel).
CONFIGS: list[tuple[str, h.SmithOptions, int]] = [
    ("default", h.SmithOptions(), h.CALL_FUEL),
    ("deep", h.SmithOptions(max_funcs=6, max_instructions=150), h.CALL_FUEL),
    (
        "wide",
        h.SmithOptions(
            max_funcs=16,
            max_imports=6,
            max_globals=16,
            max_table_elements=256,
            max_memory_bytes=4 * 65536,
            max_data_segments=8,
            max_element_segments=8,
        ),
        h.CALL_FUEL,
    ),
    ("fuel", h.SmithOptions(ensure_termination=False), 50_000),
]
DIFF_BATCH = 8
ROBUST_BASES_PER_TASK = 2
ROBUST_PER_BASE = 250


class InputTimeout(BaseException):
    """Raised by SIGALRM inside a worker: one input ran past ``--input-timeout``.

    A ``BaseException`` so the harness's ``except Exception`` (which records
    the code under test's exceptions as outcomes) lets it through.
    """


def _on_alarm(signum: int, frame: Any) -> None:
    raise InputTimeout()


@contextmanager
def time_box(seconds: float) -> Iterator[None]:
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


@dataclass
class DiffResult:
    modules: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    compared: int = 0
    skipped: int = 0
    divergences: list[tuple[str, str, bytes, str]] = field(default_factory=list)
    hangs: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class RobustResult:
    inputs: int = 0
    problems: list[tuple[str, bytes, str]] = field(default_factory=list)
    hangs: list[tuple[str, bytes]] = field(default_factory=list)


def diff_task(seed: int, config: int, indices: list[int], timeout: float, simd: bool) -> DiffResult:
    name, opts, fuel = CONFIGS[config]
    if simd:
        opts = h.SmithOptions(**{**opts.__dict__, "simd": True})
    out = DiffResult()
    for index in indices:
        wasm = h.smith(h.seed_bytes(f"{seed}:{name}", index), opts)
        if wasm is None:
            continue
        label = f"seed={seed}:{name} index={index}"
        out.modules += 1
        try:
            with time_box(timeout):
                report = h.run_module(wasm, label=label, call_fuel=fuel)
        except InputTimeout:
            out.hangs.append((label, wasm))
            continue
        out.statuses[report.status] += 1
        out.calls += report.calls
        out.compared += report.compared_calls
        out.skipped += report.skipped_calls
        if report.divergence is not None:
            d = report.divergence
            out.divergences.append((label, d.signature, wasm, d.render()))
    return out


def robust_task(seed: int, bases: list[int], timeout: float) -> RobustResult:
    out = RobustResult()
    for base in bases:
        for k, data in enumerate(h.robustness_inputs(seed, base, ROBUST_PER_BASE)):
            label = f"seed={seed} base={base} input={k}"
            out.inputs += 1
            try:
                with time_box(timeout):
                    problem = h.check_validation(data).problem
            except InputTimeout:
                out.hangs.append((label, data))
                continue
            if problem is not None:
                out.problems.append((label, data, problem))
    return out


@dataclass
class Totals:
    diff: DiffResult = field(default_factory=DiffResult)
    robust: RobustResult = field(default_factory=RobustResult)

    def add(self, r: DiffResult | RobustResult) -> None:
        if isinstance(r, DiffResult):
            d = self.diff
            d.modules += r.modules
            d.statuses.update(r.statuses)
            d.calls += r.calls
            d.compared += r.compared
            d.skipped += r.skipped
            d.divergences += r.divergences
            d.hangs += r.hangs
        else:
            self.robust.inputs += r.inputs
            self.robust.problems += r.problems
            self.robust.hangs += r.hangs

    def line(self, elapsed: float) -> str:
        d, r = self.diff, self.robust
        return (
            f"[{elapsed:7.1f}s] modules {d.modules} ({dict(d.statuses)}), calls {d.calls}"
            f" (compared {d.compared}, skipped {d.skipped}), divergences {len(d.divergences)},"
            f" module hangs {len(d.hangs)} | inputs {r.inputs}, problems {len(r.problems)},"
            f" input hangs {len(r.hangs)}"
        )


def run(ns: argparse.Namespace) -> Totals:
    totals = Totals()
    ctx = multiprocessing.get_context("spawn")
    start = time.monotonic()
    deadline = start + ns.time
    next_module = 0
    next_base = 0
    in_flight: list[Any] = []
    last_print = start
    with ctx.Pool(ns.jobs) as pool:
        while True:
            now = time.monotonic()
            done_targets = totals.diff.modules >= ns.modules and totals.robust.inputs >= ns.inputs
            while now < deadline and not done_targets and len(in_flight) < 2 * ns.jobs:
                diff_progress = (next_module / ns.modules) if ns.modules else 1.0
                robust_progress = (next_base * ROBUST_PER_BASE / ns.inputs) if ns.inputs else 1.0
                if diff_progress <= robust_progress and diff_progress < 1.0:
                    batch = list(range(next_module, next_module + DIFF_BATCH))
                    next_module += DIFF_BATCH
                    # Each module index runs under one configuration (rotated).
                    for config in range(len(CONFIGS)):
                        idx = [i for i in batch if i % len(CONFIGS) == config]
                        if idx:
                            in_flight.append(
                                pool.apply_async(
                                    diff_task, (ns.seed, config, idx, ns.input_timeout, ns.simd)
                                )
                            )
                elif robust_progress < 1.0:
                    bases = list(range(next_base, next_base + ROBUST_BASES_PER_TASK))
                    next_base += ROBUST_BASES_PER_TASK
                    in_flight.append(
                        pool.apply_async(robust_task, (ns.seed, bases, ns.input_timeout))
                    )
                else:
                    break
            if not in_flight:
                break
            in_flight[0].wait(0.5)
            still = []
            for res in in_flight:
                if res.ready():
                    totals.add(res.get())
                else:
                    still.append(res)
            in_flight = still
            now = time.monotonic()
            if now >= deadline + ns.grace:
                print(f"deadline: dropping {len(in_flight)} task(s) in flight", flush=True)
                pool.terminate()
                break
            if now - last_print >= ns.progress:
                print(totals.line(now - start), flush=True)
                last_print = now
    print(totals.line(time.monotonic() - start), flush=True)
    return totals


def _name(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:12]


def report_and_save(totals: Totals, ns: argparse.Namespace) -> None:
    out = Path(ns.out)
    d, r = totals.diff, totals.robust
    print(f"\nmodules {d.modules}/{ns.modules} target, inputs {r.inputs}/{ns.inputs} target")
    seen: set[str] = set()
    shrunk = 0
    for label, signature, wasm, text in d.divergences:
        print(f"\nDIVERGENCE {label}\n  {text}")
        if signature in seen or ns.no_save or shrunk >= ns.max_shrink:
            continue
        seen.add(signature)
        shrunk += 1
        small = h.shrink(wasm, signature, attempts=ns.shrink_attempts)
        report = h.run_module(small, label=label)
        if report.divergence is None:  # should not happen: the predicate checked it
            report = h.run_module(wasm, label=label)
            small = wasm
        path = h.save_regression(
            report, small, xfail=f"found by tools/diff_campaign.py ({signature}); unfixed"
        )
        print(f"  shrunk {len(wasm)} -> {len(small)} bytes: {path}")
    robust_dir = h.REGRESSIONS_DIR / "robust"
    saved_kinds: set[str] = set()
    for label, data, problem in r.problems:
        print(f"\nROBUSTNESS {label}: {problem}")
        kind = problem.split(":", 1)[0][:80]
        if ns.no_save or kind in saved_kinds or len(saved_kinds) >= 10:
            continue
        saved_kinds.add(kind)
        robust_dir.mkdir(parents=True, exist_ok=True)
        path = robust_dir / f"{_name(data)}.wasm"
        path.write_bytes(data)
        path.with_suffix(".xfail").write_text(f"found by tools/diff_campaign.py: {problem}\n")
        print(f"  saved {path}")
    hangs = [*d.hangs, *r.hangs]
    if hangs:
        out.mkdir(parents=True, exist_ok=True)
        for label, data in hangs:
            path = out / f"hang-{_name(data)}.wasm"
            path.write_bytes(data)
            print(f"\nHANG (> {ns.input_timeout}s) {label}: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--time", type=float, required=True, help="time budget in seconds")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--modules", type=int, default=10_000, help="differential target")
    parser.add_argument("--inputs", type=int, default=1_000_000, help="robustness target")
    parser.add_argument("--simd", action="store_true", help="let smith emit SIMD")
    parser.add_argument("--input-timeout", type=float, default=20.0)
    parser.add_argument("--grace", type=float, default=60.0)
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between reports")
    parser.add_argument("--max-shrink", type=int, default=5, help="signatures to shrink")
    parser.add_argument("--shrink-attempts", type=int, default=300)
    parser.add_argument("--no-save", action="store_true", help="report only, write nothing")
    parser.add_argument("--out", default="diff-campaign-out", help="where hangs are written")
    ns = parser.parse_args(argv)
    started = time.monotonic()
    totals = run(ns)
    report_and_save(totals, ns)
    d, r = totals.diff, totals.robust
    problems = len(d.divergences) + len(r.problems) + len(d.hangs) + len(r.hangs)
    print(
        f"\ntotal {time.monotonic() - started:.1f}s: {d.modules} modules, {d.calls} calls,"
        f" {r.inputs} inputs; {len(d.divergences)} divergences, {len(r.problems)} robustness"
        f" problems, {len(d.hangs) + len(r.hangs)} hangs"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
