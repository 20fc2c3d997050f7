"""The ``oomfuzz`` command line: sweep, replay, minimize, fuzz, baseline, report.

This module parses arguments and prints; the work is done by
:mod:`oomfuzz.sweep` (units, workers, replay) and the modules it names
(``baseline``, ``campaign``, ``minimize``). Nothing imports this module but
``python -m oomfuzz`` and the console script.

Invariants:
- Exit codes: 0 every injection handled, 1 failures found, 2 usage or input
  error (missing file, unknown option or directive, malformed scenario).
  130 after Ctrl-C.
- Bad input prints exactly one line (``oomfuzz: error: ...``) on stderr and
  never a traceback.
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
- ``fuzz`` (``oomfuzz.campaign``) exits 1 when it found and saved a
  reproducer; ``baseline --check`` (``oomfuzz.baseline``) exits 1 when the
  CI gate fails, listing one ``FAIL`` line per problem.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from oomfuzz import baseline as bl
from oomfuzz.campaign import CampaignConfig, describe, run_campaign
from oomfuzz.engines import engine_choices
from oomfuzz.minimize import minimize
from oomfuzz.oomtest import DryRunError, Iteration
from oomfuzz.program import ProgramOverrides, parse_dir, parse_env
from oomfuzz.report import RunReport, SweepReport
from oomfuzz.scenario import (
    ALLOCATORS,
    ScenarioError,
    find_scenarios,
    load_scenario,
    scenarios_hint,
)
from oomfuzz.sweep import (
    Executor,
    Unit,
    declared_sites,
    executor,
    measure_coverage,
    one_line,
    replay,
    run_units,
    sweep_units,
)
from oomfuzz.target import KINDS, TARGETS, FaultTarget, parse_target

__all__ = ["main"]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _RichProgress:
    """Draws a sweep's progress: per injection in this process, per unit across workers."""

    def __init__(self, progress: Progress, units: list[Unit], where: Executor) -> None:
        self.progress = progress
        self.per_injection = where.in_process
        if self.per_injection:
            self.task = progress.add_task("injections", total=0)
        else:
            self.task = progress.add_task(f"work units ({where.jobs} jobs)", total=len(units))

    def unit_started(self, unit: Unit) -> None:
        self.progress.update(
            self.task, description=f"{Path(unit.scenario).name} {unit.mode}/{unit.allocator}"
        )

    def on_total(self, n: int) -> None:
        total = self.progress.tasks[self.task].total or 0
        self.progress.update(self.task, total=total + n)

    def on_iteration(self, it: Iteration, ordinal: int) -> None:
        self.progress.advance(self.task, 1)

    def unit_done(self, report: RunReport) -> None:
        if not self.per_injection:
            self.progress.advance(self.task)


# -- commands -------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    console = Console(stderr=False, quiet=args.quiet)
    files = find_scenarios(args.paths)
    if not files:
        raise ScenarioError(f"no scenarios ({scenarios_hint()}) found")
    scenarios = [load_scenario(f) for f in files]  # input errors surface here, before work
    declared = declared_sites(args.paths, args.sites_root, args.exclusions)
    target, program = _target(args), _program(args)
    units = sweep_units(
        scenarios,
        args.mode,
        args.allocator,
        max(1, args.jobs),
        args.max_iters,
        target=target,
        program=program,
        until=None if args.max_duration is None else time.time() + args.max_duration,
        check_every=args.check_every,
        tracemalloc_every=args.tracemalloc_every,
        tracemalloc_sample=args.tracemalloc_sample,
        sample=args.sample,
        seed=args.seed,
        engine=args.engine,
        run_timeout=args.run_timeout,
    )
    report = SweepReport(command="oomfuzz " + " ".join(args.argv))
    start = time.monotonic()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    where = executor(args.jobs, units[0].until if units else None)
    with Progress(*columns, console=console, transient=False, disable=args.quiet) as progress:
        for _, rep in run_units(units, where, _RichProgress(progress, units, where)):
            report.add(rep)
    if not where.in_process:
        report.runs.sort(key=lambda r: r.key)  # workers finish in any order
    report.elapsed = time.monotonic() - start
    report.coverage = measure_coverage(report, *declared)
    for table in report.rich_tables():
        console.print(table)
    for f in report.failures[:10]:
        console.print(f.text(), markup=False, highlight=False)
    if args.json:
        Path(args.json).write_text(report.to_json(), encoding="utf-8")
    if args.html:
        Path(args.html).write_text(report.to_html(), encoding="utf-8")
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
        jobs=max(1, args.jobs),
        max_funcs=args.max_funcs,
    )
    result = run_campaign(config)
    for line in describe(result):
        print(line)
    return EXIT_FAILURES if result.findings else EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    root = Path(args.root)
    out = Path(args.baseline) if args.baseline else None
    if args.update:
        config = bl.BaselineConfig(
            sample=args.sample, seed=args.seed, jobs=max(1, args.jobs), mode=args.mode
        )
        result = bl.update(root, config, out)
        verb = "wrote" if result.passed else "refused to write"
        print(
            f"baseline: {verb} {out or bl.baseline_path(root)}: {len(result.sites)} sites, "
            f"{result.injections} injections"
        )
    else:
        result = bl.check(root, out, jobs=max(1, args.jobs))
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


def cmd_report(args: argparse.Namespace) -> int:
    try:
        text = Path(args.report).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"no such report: {args.report}") from None
    try:
        report = SweepReport.from_json(text)
    except ValueError as e:
        raise ScenarioError(f"{args.report}: {one_line(str(e))}") from None
    console = Console()
    for table in report.rich_tables():
        console.print(table)
    for f in report.failures:
        console.print(f.text(), markup=False, highlight=False)
    if args.html:
        Path(args.html).write_text(report.to_html(), encoding="utf-8")
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
    sw.add_argument("--jobs", "-j", type=_positive, default=1, help="worker processes")
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
    sw.add_argument("--json", metavar="OUT", help="write the JSON report")
    sw.add_argument("--html", metavar="OUT", help="write the HTML report")
    sw.add_argument("--quiet", "-q", action="store_true", help="no progress bar or tables")
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
    fz.add_argument("--jobs", "-j", type=_positive, default=1, help="worker processes")
    fz.add_argument(
        "--database", metavar="PATH|redis://HOST:PORT", help="shared Hypothesis example database"
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
    bl.add_argument("--jobs", "-j", type=_positive, default=1, help="worker processes")
    bl.add_argument("--sample", type=_positive, default=4, help="--update: extra indices per unit")
    bl.add_argument("--seed", type=int, default=0, help="--update: sample seed")
    bl.add_argument("--mode", choices=("transient", "persistent", "both"), default="transient")
    bl.set_defaults(func=cmd_baseline)

    rp = sub.add_parser("report", help="print a saved JSON report (and convert it to HTML)")
    rp.add_argument("report", metavar="OUT.json")
    rp.add_argument("--html", metavar="OUT.html")
    rp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
