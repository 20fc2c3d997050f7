"""The ``oomfuzz`` command line: sweep, replay, minimize, fuzz, baseline, report, diff, merge.

This module parses arguments and prints; the work is done by
:mod:`oomfuzz.sweep` (units, workers, replay) and the modules it names
(``baseline``, ``campaign``, ``minimize``). Nothing imports this module but
``python -m oomfuzz`` and the console script.

Invariants:
- Exit codes: 0 every injection handled, 1 failures found, 2 usage or input
  error (missing file, unknown option or directive, malformed scenario).
  130 after Ctrl-C.
- Bad input prints exactly one line (``oomfuzz: error: ...``) on stderr and
  never a traceback. Output paths (``--json``, ``--html``, ``--output``) and
  the example database are checked before any work starts.
- A closed standard output (``oomfuzz sweep … | head``) is not a failure:
  output is dropped and the exit status is the command's own.
- Every failure is reachable: the summary table lists ``TABLE_ROWS``, the
  first ``--show N`` (0: all) are printed with their tracebacks and a
  one-line reproducer (never wrapped), and a last line counts the rest and
  names the JSON/HTML holding all of them.
- Progress and summary share one vocabulary: units (scenario × mode ×
  allocator, shards counted once, the total known before work starts) and
  injection points.
- ``--jobs 0`` means one worker per CPU core.
- ``sweep --jobs N`` splits each (scenario, mode, allocator) unit into N
  index shards (index % N) and runs the shards in worker processes; results
  merge into the same report a serial sweep produces.
- Injection indices are 0-based: ``--index N`` refuses the allocation that
  had N allocations before it. With a targeted plan (``--target``,
  ``--sites``, ``--kinds``) indices count the selected allocation points
  only, and the plan refuses nothing else.
- Program scenarios (``.wasm``/``.wat``) take ``--invoke``, ``--arg``,
  ``--env K=V`` and ``--dir HOST::GUEST``, which replace their sidecar's
  settings (write ``--arg=-v`` for an argument starting with ``-``); other
  scenarios ignore them.
- ``sweep --engine replay|fork|auto`` only changes how injections execute
  (``OomTest(engine=...)``), never a verdict; with ``--jobs N`` each worker
  forks at most ``cpu_count // N`` children.
- ``sweep --sample K --seed S`` injects at K indices per unit drawn with
  ``random.Random(S)`` (all of them when there are at most K): the same
  seed gives the same indices on every machine.
- ``sweep --exhaust`` (``oomfuzz.exhaust``) runs each scenario × allocator
  in forked children under a ladder of ``RLIMIT_AS`` limits instead of
  injecting; exit 1 when a step found a stray Python error, a crash or a hang
  (or a reference run failed). ``--json`` then writes ``{"kind": "exhaust"...}``.
- ``sweep --shard K/N`` (``oomfuzz.merge``) runs shard K (from 1) of a
  partition of every unit's injection indices that depends on nothing but
  the unit's names and the index; its report records what was swept (inputs
  and their hashes, options, versions). ``merge`` combines the N shard
  reports into the unsharded report, or exits 2 with one line naming the
  files when they do not belong together (or overlap, or one is missing).
  ``baseline --check --report R`` gates a saved whole sweep.
- ``--cluster tcp://HOST:PORT`` (``sweep``, ``fuzz``; ``oomfuzz.cluster``)
  runs the work on a Dask cluster: its worker threads replace ``--jobs``;
  a missing ``distributed`` package or an unreachable scheduler is one line,
  exit 2, before any work.
- ``fuzz`` (``oomfuzz.campaign``) exits 1 when it found and saved a
  reproducer; ``baseline --check`` (``oomfuzz.baseline``) exits 1 when the
  CI gate fails, listing one ``FAIL`` line per problem.
- ``diff OLD.json NEW.json`` (``oomfuzz.diff``) exits 1 when NEW regressed
  against OLD, 0 otherwise, 2 when either is not a report.
- ``--html PATH`` ending in ``.html`` writes the one-page report; any other
  PATH is a directory (``oomfuzz.htmlreport``: index, source pages, strips).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from oomfuzz import baseline as bl
from oomfuzz.campaign import CampaignConfig, describe, run_campaign
from oomfuzz.diff import compare
from oomfuzz.engines import engine_choices
from oomfuzz.exhaust import ExhaustOptions, ExhaustReport
from oomfuzz.htmlreport import is_single_file, write_html
from oomfuzz.merge import MergeError, Shard, canonical_order, merge_shards
from oomfuzz.minimize import minimize, minimize_failures
from oomfuzz.oomtest import DryRunError, Iteration
from oomfuzz.program import ProgramOverrides, parse_dir, parse_env
from oomfuzz.report import RunReport, SweepReport
from oomfuzz.scenario import (
    ALLOCATORS,
    Scenario,
    ScenarioError,
    find_scenarios,
    load_scenario,
    scenarios_hint,
)
from oomfuzz.schedule import SCHEDULES
from oomfuzz.sweep import (
    Executor,
    Unit,
    declared_sites,
    executor,
    executor_for,
    exhaust_units,
    measure_coverage,
    one_line,
    replay,
    run_exhaust_units,
    run_units,
    shard_units,
    sweep_identity,
    sweep_units,
)
from oomfuzz.target import KINDS, TARGETS, FaultTarget, parse_target

__all__ = ["main"]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Failures listed in the summary's failures table (the rest: a count and where they are).
TABLE_ROWS = 20
#: Failures printed as detail blocks by default (``--show``).
SHOW = 10


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _RichProgress:
    """Draws a sweep's progress in the summary's words: units (scenario × mode × allocator)
    done of a total fixed before any work starts, and, in this process, the injection
    points of the unit running now (its total is known once its dry run is done)."""

    def __init__(self, progress: Progress, units: list[Unit], where: Executor) -> None:
        self.progress = progress
        self.per_injection = where.in_process
        # Shards of one unit (--jobs N) count as one unit, as in the summary.
        self.shards_left = Counter((u.scenario, u.mode, u.allocator) for u in units)
        jobs = "" if where.in_process else f", {where.jobs} jobs"
        self.task = progress.add_task(f"units{jobs}", total=len(self.shards_left))
        self.points = progress.add_task("injection points", total=0, visible=False)
        self.unit_points = 0

    def unit_started(self, unit: Unit) -> None:
        self.unit_points = 0
        self.progress.reset(
            self.points,
            total=0,
            completed=0,
            description=f"{Path(unit.scenario).name} {unit.mode}/{unit.allocator}: "
            "injection points",
            visible=self.per_injection,
        )

    def on_total(self, n: int) -> None:
        self.unit_points += n
        self.progress.update(self.points, total=self.unit_points)

    def on_iteration(self, it: Iteration, ordinal: int) -> None:
        self.progress.advance(self.points, 1)

    def unit_done(self, report: RunReport) -> None:
        self.shards_left[report.key] -= 1
        if self.shards_left[report.key] == 0:
            self.progress.advance(self.task)


class _PipeSafe(io.TextIOBase):
    """Standard output that a closed pipe (``oomfuzz sweep … | head``) cannot fail.

    After the reader goes away, writes are dropped and the file descriptor is
    pointed at /dev/null (so the interpreter's final flush is quiet): the
    command finishes and exits with its own status, not as "failures found".
    """

    def __init__(self, stream: io.TextIOBase | Any) -> None:
        self.stream = stream
        self.broken = False

    def _closed_pipe(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real file descriptor (captured output): dropping writes is enough

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._closed_pipe()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._closed_pipe()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return int(self.stream.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.stream, "encoding", "utf-8"))

    def writable(self) -> bool:
        return True


def _jobs(n: int) -> int:
    """``--jobs``: 0 means one worker per CPU core."""
    return n if n > 0 else (os.cpu_count() or 1)


def _check_output(path: str | None, option: str) -> None:
    """Refuse an output path that cannot be written, before any work starts."""
    if path is None:
        return
    p = Path(path)
    parent = p.parent
    if p.is_dir():
        raise ScenarioError(f"{option} {path}: is a directory")
    if not parent.is_dir():
        raise ScenarioError(f"{option} {path}: no such directory: {parent}")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ScenarioError(f"{option} {path}: not writable")


def _print_failures(
    console: Console, report: SweepReport, show: int, saved: list[str], table_rows: int
) -> None:
    """Detail blocks (with tracebacks) for the first ``show`` failures (0: all), then
    how many were left out of the table and the details, and where all of them are."""
    failures = report.failures
    detailed = failures if show == 0 else failures[:show]
    for f in detailed:
        # soft_wrap: the reproducer stays one line that can be copy-pasted from any log.
        console.print(f.text(tracebacks=True), markup=False, highlight=False, soft_wrap=True)
    n = len(failures)
    if len(detailed) < n or table_rows < n:
        where = (
            f"all {n}, with tracebacks, are in {' and '.join(saved)}"
            if saved
            else "--json OUT or --html OUT keeps all of them"
        )
        console.print(
            f"{n} failures: {min(table_rows, n)} in the table, {len(detailed)} in detail above; "
            f"--show 0 prints every one; {where}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


# -- commands -------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    console = Console(stderr=False, quiet=args.quiet)
    _check_output(args.json, "--json")
    _check_html_output(args.html)
    shard = _shard(args.shard)
    files = find_scenarios(args.paths)
    if not files:
        raise ScenarioError(f"no scenarios ({scenarios_hint()}) found")
    scenarios = [load_scenario(f) for f in files]  # input errors surface here, before work
    if args.exhaust:
        if args.shard or args.cluster:
            # The ladders fork and lower RLIMIT_AS per child: not across machines.
            raise UsageError("--shard and --cluster do not apply to --exhaust")
        return _sweep_exhaust(args, scenarios, console)
    declared = declared_sites(args.paths, args.sites_root, args.exclusions)
    target, program = _target(args), _program(args)
    report = SweepReport(command="oomfuzz " + " ".join(args.argv))
    report.identity = sweep_identity(scenarios, shard, _sweep_options(args), declared).to_dict()
    start = time.monotonic()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    until = None if args.max_duration is None else time.time() + args.max_duration
    with executor_for(_jobs(args.jobs), args.cluster, until) as where:
        units = sweep_units(
            scenarios,
            args.mode,
            args.allocator,
            where.jobs,
            args.max_iters,
            target=target,
            program=program,
            until=until,
            check_every=args.check_every,
            tracemalloc_every=args.tracemalloc_every,
            tracemalloc_sample=args.tracemalloc_sample,
            sample=args.sample,
            schedule=args.schedule,
            seed=args.seed,
            engine=args.engine,
            run_timeout=args.run_timeout,
        )
        units = shard_units(units, shard)
        with Progress(*columns, console=console, transient=False, disable=args.quiet) as progress:
            for _, rep in run_units(units, where, _RichProgress(progress, units, where)):
                report.add(rep)
    canonical_order(report)  # workers finish in any order
    report.elapsed = time.monotonic() - start
    report.coverage = measure_coverage(report, *declared)
    if args.json:
        Path(args.json).write_text(report.to_json(), encoding="utf-8")
    if args.html:
        write_html(report, args.html)
    for table in report.rich_tables(max_failures=TABLE_ROWS):
        console.print(table)
    saved = [p for p in (args.json, args.html) if p]
    _print_failures(console, report, args.show, saved, TABLE_ROWS)
    if shard.count > 1:
        console.print(
            f"shard {shard} of the sweep: merge all {shard.count} shard reports with "
            "oomfuzz merge SHARD.json... -o OUT.json",
            markup=False,
            highlight=False,
        )
    input_errors = [r for r in report.runs if r.error and r.error.startswith("input error")]
    for r in report.runs:
        if r.error:
            line = f"{r.scenario} [{r.mode}/{r.allocator}]: {one_line(r.error)}"
            console.print(f"[red]{escape(line)}[/red]")
    if input_errors:
        print(
            f"oomfuzz: error: {input_errors[0].scenario}: {one_line(input_errors[0].error or '')}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_FAILURES if report.failures or any(r.error for r in report.runs) else EXIT_OK


def _shard(text: str | None) -> Shard:
    try:
        return Shard() if text is None else Shard.parse(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _sweep_options(args: argparse.Namespace) -> dict[str, object]:
    """The sweep options that change its report (shards must agree on them to merge)."""
    target, program = _target(args), _program(args)
    return {
        "mode": args.mode,
        "allocator": args.allocator,
        "max_iters": args.max_iters,
        "max_duration": args.max_duration,
        "check_every": args.check_every,
        "tracemalloc_every": args.tracemalloc_every,
        "tracemalloc_sample": args.tracemalloc_sample,
        "run_timeout": args.run_timeout,
        "sample": args.sample,
        "schedule": args.schedule,
        "seed": args.seed,
        "engine": args.engine,
        "target": target.flags() if target else [],
        "program": program.flags() if program else [],
    }


def _sweep_exhaust(args: argparse.Namespace, scenarios: list[Scenario], console: Console) -> int:
    """``sweep --exhaust``: the real-exhaustion ladder of each scenario × allocator."""
    try:
        options = ExhaustOptions(args.points, args.min_step * 1024, args.child_timeout)
    except ValueError as e:
        raise UsageError(str(e)) from None
    units = exhaust_units(scenarios, args.allocator, options)
    start = time.monotonic()
    reports: list[ExhaustReport] = [ExhaustReport("", "")] * len(units)

    def log(line: str) -> None:
        if args.verbose:
            console.print(line, markup=False, highlight=False)

    for i, rep in run_exhaust_units(units, executor(args.jobs), log):
        reports[i] = rep
        console.print(exhaust_summary(rep), markup=False, highlight=False)
        for step in rep.findings:
            console.print(f"  FINDING {step.describe()}", markup=False, highlight=False)
    elapsed = time.monotonic() - start
    findings = sum(len(r.findings) for r in reports)
    errors = [r for r in reports if r.error]
    points = sum(len(r.steps) for r in reports)
    console.print(
        f"real exhaustion: {len(reports)} units, {points} children (limits tried + references), "
        f"{findings} finding(s), {len(errors)} error(s), {elapsed:.1f}s",
        markup=False,
        highlight=False,
    )
    for r in errors:
        console.print(f"{r.scenario} [{r.allocator}]: {one_line(r.error or '')}", markup=False)
    if args.json:
        doc = {
            "kind": "exhaust",
            "command": "oomfuzz " + " ".join(args.argv),
            "elapsed": elapsed,
            "units": [r.to_dict() for r in reports],
        }
        Path(args.json).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return EXIT_FAILURES if findings or errors else EXIT_OK


def exhaust_summary(rep: ExhaustReport) -> str:
    """One line per unit: base, peak, floor, the lowest fault-free limit, outcome counts."""
    if rep.error and not rep.steps[1:]:
        return f"{rep.scenario} [{rep.allocator}]: {one_line(rep.error)}"
    mib = 1 << 20
    floor = f"{rep.floor / mib:.2f}MiB" if rep.floor is not None else "not reached"
    ok = f"{rep.ok_from / mib:.2f}MiB" if rep.ok_from is not None else "none"
    counts = " ".join(f"{k}={v}" for k, v in sorted(rep.counts().items()))
    return (
        f"{rep.scenario} [{rep.allocator}]: base {rep.base / mib:.2f}MiB, "
        f"VmPeak {rep.peak / mib:.2f}MiB, maxrss {rep.maxrss / mib:.2f}MiB, floor {floor}, "
        f"fault-free from {ok}; {counts} ({rep.elapsed:.1f}s)"
    )


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        result, it = replay(
            args.scenario,
            args.mode,
            args.allocator,
            args.index,
            target=_target(args),
            program=_program(args),
        )
    except DryRunError as e:
        print(str(e))
        return EXIT_FAILURES
    if it is None or args.index >= result.total:
        what = "allocations" if _target(args) is None else "allocations of the target"
        raise ScenarioError(
            f"index {args.index} is out of range: the scenario makes {result.total} {what}"
        )
    print(
        f"verdict: {it.verdict}  ({args.scenario} mode={it.mode} allocator={args.allocator} index={it.index})"
    )
    for f in it.findings:
        print(f"  {f.cls}: {f.detail}")
    if it.injected is not None:
        print(f"injected: {it.injected.describe()}")
        if it.injected.traceback:
            print("allocation traceback (most recent call last):")
            print(it.injected.traceback.rstrip())
    for r in it.after_oom:
        print(f"allocation after OOM: {r.describe()}")
    if it.exc_traceback:
        print("exception raised by the scenario:")
        print(it.exc_traceback.rstrip())
    return EXIT_FAILURES if it.failed else EXIT_OK


def cmd_minimize(args: argparse.Namespace) -> int:
    _check_output(args.output, "--output")
    text = minimize(args.scenario, args.mode, args.allocator, args.index, log=print)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    print(text)
    return EXIT_FAILURES


def cmd_fuzz(args: argparse.Namespace) -> int:
    config = CampaignConfig(
        time_budget=args.time,
        seed=args.seed,
        database=args.database,
        regressions=Path(args.regressions) if args.regressions else None,
        jobs=_jobs(args.jobs),
        max_funcs=args.max_funcs,
        cluster=args.cluster,
    )
    result = run_campaign(config)
    for line in describe(result):
        print(line)
    return EXIT_FAILURES if result.findings else EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    root = Path(args.root)
    out = Path(args.baseline) if args.baseline else None
    if args.update and args.report:
        raise UsageError("--report goes with --check (--update runs its own bounded sweep)")
    if args.update:
        config = bl.BaselineConfig(
            sample=args.sample, seed=args.seed, jobs=_jobs(args.jobs), mode=args.mode
        )
        result = bl.update(root, config, out)
        verb = "wrote" if result.passed else "refused to write"
        print(
            f"baseline: {verb} {out or bl.baseline_path(root)}: {len(result.sites)} sites, "
            f"{result.injections} injections"
        )
    else:
        report = None if args.report is None else _whole_report(args.report)
        result = bl.check(root, out, jobs=_jobs(args.jobs), report=report)
        print(
            f"baseline check: {result.regressions} regression(s) replayed, "
            f"{len(result.sites)} sites, {result.injections} injections"
        )
    cov = result.coverage
    if cov is not None:  # unreached and undeclared sites are among the FAIL lines below
        print(f"site coverage {cov.text()}")
        for site, reason in cov.excluded:
            print(f"  excluded: {site} — {reason}")
    for problem in result.problems:
        print(f"FAIL {problem}")
    return EXIT_OK if result.passed else EXIT_FAILURES


def _load_report(path: str) -> SweepReport:
    """A saved JSON report; any problem with it is one line (exit 2)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"no such report: {path}") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a JSON report") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not an oomfuzz JSON report (not text)") from None
    try:
        return SweepReport.from_json(text)
    except json.JSONDecodeError as e:
        raise ScenarioError(
            f"{path}: not an oomfuzz JSON report (not JSON: {e.msg} at line {e.lineno} "
            f"column {e.colno}); write one with oomfuzz sweep --json OUT"
        ) from None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise ScenarioError(f"{path}: {one_line(str(e))}") from None


def _check_html_output(path: str | None) -> None:
    """``--html``: a ``.html`` file, or a directory (created, its parent must exist)."""
    if path is None or is_single_file(path):
        _check_output(path, "--html")
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ScenarioError(f"--html {path}: not a directory (name a .html file for one page)")
    if not p.exists():
        _check_output(path, "--html")
    elif not os.access(p, os.W_OK):
        raise ScenarioError(f"--html {path}: not writable")


def cmd_report(args: argparse.Namespace) -> int:
    if args.minimize and (args.html is None or is_single_file(args.html)):
        raise UsageError("--minimize shows its results in the HTML directory: add --html DIR")
    _check_html_output(args.html)
    report = _load_report(args.report)
    baseline = _load_report(args.baseline) if args.baseline else None
    console = Console()
    for table in report.rich_tables(max_failures=TABLE_ROWS):
        console.print(table)
    _print_failures(console, report, args.show, [args.report], TABLE_ROWS)
    _shard_note(console, report, args.report)
    if args.html:
        minimized = minimize_failures(report.failures, args.minimize) if args.minimize else {}
        page = write_html(
            report,
            args.html,
            diff=None if baseline is None else compare(baseline, report),
            baseline_name=args.baseline or "",
            minimized=minimized,
        )
        if not is_single_file(args.html):
            print(f"HTML report: {page}")
    return EXIT_FAILURES if report.failures or any(r.error for r in report.runs) else EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    _check_output(args.json, "--json")
    old, new = _load_report(args.old), _load_report(args.new)
    result = compare(old, new)
    print(f"oomfuzz diff {args.old} -> {args.new}")
    for line in result.text_lines():
        print(line)
    if args.json:
        Path(args.json).write_text(result.to_json(), encoding="utf-8")
    return EXIT_FAILURES if result.regressed else EXIT_OK


def _partial(report: SweepReport, name: str) -> str | None:
    """Why the report at ``name`` is not a whole sweep (one shard of it), or ``None``."""
    shard = (report.identity or {}).get("shard")
    if isinstance(shard, list) and len(shard) == 2 and shard[1] != 1:
        return (
            f"{name} is shard {shard[0]}/{shard[1]} of a sweep, not the whole sweep "
            "(oomfuzz merge combines the shards)"
        )
    return None


def _shard_note(console: Console, report: SweepReport, name: str) -> None:
    note = _partial(report, name)
    if note:
        console.print(note, markup=False, highlight=False)


def _whole_report(path: str) -> SweepReport:
    """``baseline --check --report``: a saved whole sweep (a shard is refused)."""
    report = _load_report(path)
    why = _partial(report, path)
    if why:
        raise ScenarioError(why)
    return report


def cmd_merge(args: argparse.Namespace) -> int:
    _check_output(args.output, "--output")
    _check_html_output(args.html)
    named = [(path, _load_report(path)) for path in args.reports]
    try:
        report = merge_shards(named)
    except MergeError as e:
        raise ScenarioError(f"cannot merge: {e}") from None
    if args.output:
        Path(args.output).write_text(report.to_json(), encoding="utf-8")
    if args.html:
        page = write_html(report, args.html)
        if not is_single_file(args.html):
            print(f"HTML report: {page}")
    console = Console()
    for table in report.rich_tables(max_failures=TABLE_ROWS):
        console.print(table)
    saved = [p for p in (args.output, args.html) if p]
    _print_failures(console, report, args.show, saved, TABLE_ROWS)
    count = len(named)
    console.print(
        f"merged {count} shard report(s) into {args.output or 'the summary above'}",
        markup=False,
        highlight=False,
    )
    return EXIT_FAILURES if report.failures or any(r.error for r in report.runs) else EXIT_OK


# -- argument parsing -------------------------------------------------------------------


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return n


def _seconds(value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if s < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return s


HTML_HELP = (
    "write the HTML report: a directory (index, a page per source file with every "
    "allocation site marked, sweep strips); a name ending in .html writes the one-page report"
)

SHOW_HELP = (
    f"print the first N failures in detail, with tracebacks (default {SHOW}; 0: all); "
    "the rest are counted and are all in the JSON/HTML report"
)


def _target(args: argparse.Namespace) -> FaultTarget | None:
    try:
        return parse_target(args.target, args.sites or (), _kinds(args.kinds))
    except ValueError as e:
        raise UsageError(str(e)) from None


def _kinds(value: str | None) -> list[str]:
    return [k for k in (value or "").split(",") if k]


def _program(args: argparse.Namespace) -> ProgramOverrides | None:
    try:
        over = ProgramOverrides(
            args.invoke,
            None if args.arg is None else tuple(args.arg),
            None if args.env is None else tuple(parse_env(e) for e in args.env),
            None if args.dir is None else tuple(parse_dir(d) for d in args.dir),
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    return None if over.empty else over


def _add_plan_options(p: argparse.ArgumentParser) -> None:
    """The targeted-plan and program options ``sweep`` and ``replay`` share."""
    g = p.add_argument_group("targeted fault plans (indices count the selected points)")
    g.add_argument(
        "--target",
        choices=tuple(TARGETS),
        default="all",
        help="guest: only the guest's own memory.grow; host: only non-absorbing "
        "allocations; absorbing: memory.grow/table.grow from wasm; all (default)",
    )
    g.add_argument(
        "--sites",
        action="append",
        metavar="PATTERN",
        help="only allocations whose site ('file:line in function') matches this "
        "fnmatch pattern (repeatable)",
    )
    g.add_argument("--kinds", metavar="K1,K2", help=f"only these kinds ({', '.join(KINDS)})")
    g = p.add_argument_group("program scenarios (.wasm/.wat; replace the sidecar's settings)")
    g.add_argument("--invoke", metavar="NAME", help="the export to call (default _start)")
    g.add_argument("--arg", action="append", metavar="ARG", help="a program argument (repeatable)")
    g.add_argument("--env", action="append", metavar="K=V", help="an environment variable")
    g.add_argument(
        "--dir", action="append", metavar="HOST::GUEST", help="preopen HOST as GUEST (repeatable)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="oomfuzz", description="Out-of-memory fault injection for wasmrt.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sw = sub.add_parser("sweep", help="inject an OOM at every allocation of each scenario")
    sw.add_argument(
        "paths", nargs="+", metavar="PATH", help=".wast/.py/.wasm/.wat files or directories"
    )
    sw.add_argument("--mode", choices=("transient", "persistent", "both"), default="transient")
    sw.add_argument("--allocator", choices=("ondemand", "pooling", "both"), default="both")
    sw.add_argument(
        "--jobs", "-j", type=_positive, default=1, help="worker processes (0: one per CPU core)"
    )
    sw.add_argument("--max-iters", type=_positive, default=None, help="per scenario/mode/allocator")
    sw.add_argument(
        "--max-duration",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="the whole sweep's budget: no run starts after it (a started run ends at its deadline)",
    )
    sw.add_argument(
        "--run-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="deadline of every run (default: 60 s for a dry run, then "
        "max(10 s, 20 x the slowest dry run)); a run past it is a `timeout` finding",
    )
    sw.add_argument("--check-every", type=_positive, default=1, help="leak/post-OOM check sampling")
    sw.add_argument("--tracemalloc-every", type=_positive, default=0, help="0 disables")
    sw.add_argument(
        "--tracemalloc-sample",
        type=_positive,
        default=1,
        metavar="K",
        help="the cheap tracemalloc check on the last K injections of each scenario's "
        "first unit (default 1; 0 disables; off with --tracemalloc-every)",
    )
    sw.add_argument(
        "--sample",
        type=_positive,
        default=None,
        metavar="K",
        help="inject at K indices per scenario/mode/allocator, drawn with --seed (when more)",
    )
    sw.add_argument("--seed", type=int, default=0, help="seed for --sample")
    sw.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="exhaustive",
        help="exhaustive: every index in allocation order; sites: the first allocation of "
        "each distinct site first (every unit's, before any unit's other indices), then of "
        "each distinct (site, calling context), then the others in --seed order "
        "(--sample K: K of them)",
    )
    sw.add_argument(
        "--engine",
        choices=engine_choices(),
        default="auto",
        help="replay: re-run per injection; fork: one run, a forked child per injection "
        "(POSIX); auto: fork when it pays off (default)",
    )
    sw.add_argument(
        "--sites-root",
        action="append",
        metavar="PATH|MODULE",
        help="code whose allocation sites coverage counts (repeatable; default: wasmrt)",
    )
    sw.add_argument(
        "--exclusions",
        metavar="FILE",
        help="site exclusions with reasons (default: sites-exclusions.json near the PATHs)",
    )
    ex = sw.add_argument_group(
        "real exhaustion",
        "--exhaust: instead of injecting, run each scenario x allocator in forked children "
        "under a ladder of RLIMIT_AS limits bisected from the fault-free peak down to the "
        "interpreter's floor; a bare MemoryError/RecursionError/other Python error out of "
        "wasmrt, a crash or a hang is a finding (--mode, --engine, --sample... do not apply)",
    )
    ex.add_argument("--exhaust", action="store_true", help="run the real-exhaustion ladder")
    ex.add_argument("--points", type=_positive, default=12, help="limits tried per unit")
    ex.add_argument(
        "--min-step", type=_positive, default=64, metavar="KIB", help="finest ladder step"
    )
    ex.add_argument(
        "--child-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="deadline per child (default: 20x the reference run, at least 20s)",
    )
    ex.add_argument("--verbose", "-v", action="store_true", help="print every ladder step")
    sw.add_argument(
        "--shard",
        metavar="K/N",
        help="run shard K of N (K from 1) of every unit's injection indices; a fixed "
        "partition, the same on every machine: merge the N reports with oomfuzz merge",
    )
    sw.add_argument(
        "--cluster",
        metavar="tcp://HOST:PORT",
        help="run the units on this Dask scheduler's workers (pip install "
        "'wasmrt-oomfuzz[cluster]'); --jobs is then the cluster's worker threads",
    )
    sw.add_argument("--json", metavar="OUT", help="write the JSON report")
    sw.add_argument("--html", metavar="DIR", help=HTML_HELP)
    sw.add_argument("--quiet", "-q", action="store_true", help="no progress bar or tables")
    sw.add_argument("--show", type=_positive, default=SHOW, metavar="N", help=SHOW_HELP)
    _add_plan_options(sw)
    sw.set_defaults(func=cmd_sweep)

    for name, helptext, func in (
        ("replay", "re-run one injection and print the verdict", cmd_replay),
        ("minimize", "shrink a failing scenario while the failure persists", cmd_minimize),
    ):
        r = sub.add_parser(name, help=helptext)
        r.add_argument("scenario", metavar="SCENARIO")
        r.add_argument("--mode", choices=("transient", "persistent"), default="transient")
        r.add_argument("--allocator", choices=ALLOCATORS, default="ondemand")
        r.add_argument("--index", type=_positive, required=True)
        if name == "minimize":
            r.add_argument("--output", "-o", metavar="OUT", help="write the minimized scenario")
        else:
            _add_plan_options(r)
        r.set_defaults(func=func)

    fz = sub.add_parser("fuzz", help="time-boxed Hypothesis campaign on generated scenarios")
    fz.add_argument("--time", type=_seconds, required=True, metavar="SECONDS")
    fz.add_argument(
        "--jobs", "-j", type=_positive, default=1, help="worker processes (0: one per CPU core)"
    )
    fz.add_argument(
        "--database", metavar="PATH|redis://HOST:PORT", help="shared Hypothesis example database"
    )
    fz.add_argument(
        "--cluster",
        metavar="tcp://HOST:PORT",
        help="run one campaign worker per worker thread of this Dask scheduler, sharing "
        "--database (which every worker must reach, e.g. redis://HOST:PORT)",
    )
    fz.add_argument("--seed", type=int, default=0)
    fz.add_argument(
        "--regressions",
        default="corpus/regressions",
        metavar="DIR",
        help="where shrunk reproducers are saved ('' to not save)",
    )
    fz.add_argument("--max-funcs", type=_positive, default=3, help="functions per module")
    fz.set_defaults(func=cmd_fuzz)

    bl = sub.add_parser("baseline", help="CI gate: record or check the corpus site table")
    what = bl.add_mutually_exclusive_group(required=True)
    what.add_argument("--update", action="store_true", help="write corpus/sites-baseline.json")
    what.add_argument("--check", action="store_true", help="replay regressions, compare sites")
    bl.add_argument("--root", default=".", help="project root (holding corpus/)")
    bl.add_argument("--baseline", metavar="FILE", help="baseline file (default: under --root)")
    bl.add_argument(
        "--jobs", "-j", type=_positive, default=1, help="worker processes (0: one per CPU core)"
    )
    bl.add_argument(
        "--report",
        metavar="SWEEP.json",
        help="--check: gate this saved sweep of the corpus (e.g. merged shards) instead of "
        "running the bounded sweep",
    )
    bl.add_argument("--sample", type=_positive, default=4, help="--update: extra indices per unit")
    bl.add_argument("--seed", type=int, default=0, help="--update: sample seed")
    bl.add_argument("--mode", choices=("transient", "persistent", "both"), default="transient")
    bl.set_defaults(func=cmd_baseline)

    mg = sub.add_parser("merge", help="combine the shard reports of one sweep into its report")
    mg.add_argument("reports", nargs="+", metavar="SHARD.json")
    mg.add_argument("--output", "-o", metavar="OUT.json", help="write the merged JSON report")
    mg.add_argument("--html", metavar="OUT.html", help="write the merged HTML report")
    mg.add_argument("--show", type=_positive, default=SHOW, metavar="N", help=SHOW_HELP)
    mg.set_defaults(func=cmd_merge)

    rp = sub.add_parser("report", help="print a saved JSON report (and convert it to HTML)")
    rp.add_argument("report", metavar="OUT.json")
    rp.add_argument("--html", metavar="DIR", help=HTML_HELP)
    rp.add_argument(
        "--baseline",
        metavar="OLD.json",
        help="an earlier report: the HTML index shows what changed since it (as oomfuzz diff)",
    )
    rp.add_argument(
        "--minimize",
        type=_positive,
        default=0,
        metavar="N",
        help="with --html DIR: minimize the first failure of each of the first N "
        "(site, class) groups and show the minimized scenario in its detail (default 0)",
    )
    rp.add_argument("--show", type=_positive, default=SHOW, metavar="N", help=SHOW_HELP)
    rp.set_defaults(func=cmd_report)

    df = sub.add_parser(
        "diff",
        help="what changed between two JSON reports (exit 1 when something regressed)",
        description="New and fixed failures, sites appeared/disappeared, coverage and cost "
        "change between two reports (oomfuzz sweep --json or pytest --oom-json). "
        "Exit 1 when something regressed (a new failure or setup error, a site no "
        "longer injected), 0 otherwise, 2 on bad input.",
    )
    df.add_argument("old", metavar="OLD.json")
    df.add_argument("new", metavar="NEW.json")
    df.add_argument("--json", metavar="OUT", help="write the comparison as JSON")
    df.set_defaults(func=cmd_diff)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stdout = sys.stdout
    sys.stdout = _PipeSafe(stdout)
    try:
        return _main(argv)
    finally:
        sys.stdout = stdout


def _main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        return int(args.func(args))
    except UsageError as e:
        print(f"oomfuzz: error: {e} (see oomfuzz --help)", file=sys.stderr)
        return EXIT_USAGE
    except (ScenarioError, OSError) as e:
        print(f"oomfuzz: error: {one_line(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("oomfuzz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
