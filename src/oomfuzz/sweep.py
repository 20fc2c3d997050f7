"""The application layer: sweep units, running one, replaying one injection, fanning out.

A sweep is a list of :class:`Unit`\\ s (scenario × mode × allocator × shard,
:func:`sweep_units`); :func:`run_unit` runs one (an
:class:`~oomfuzz.OomTest` over a :class:`~oomfuzz.scenario.ScenarioRunner`)
into a :class:`~oomfuzz.report.RunReport`; :func:`replay` re-runs one
injection index; :func:`run_units` fans units out through an
:class:`Executor`. Every face (``cli``, ``baseline``, ``plugin``,
``minimize``, ``campaign``) goes through this module; none of them builds an
``OomTest`` for a unit or a worker pool of its own.

Seams:
- :class:`Executor`: where work runs. ``InProcess`` (in this process, in
  order; per-injection progress reaches the caller) and ``ProcessPool``
  (local worker processes, spawned; results in completion order);
  :func:`executor` picks one for ``--jobs``. Another backend (a cluster) is
  one class with ``jobs``, ``in_process`` and ``map``.
- ``Unit.select``: a :data:`~oomfuzz.plan.Selection` (a picklable callable
  over the dry run's allocation records) narrowing the injection indices, as
  :class:`SiteFirsts` does for the baseline gate.
- ``Unit.target``: a :class:`~oomfuzz.target.FaultTarget` (``--target``,
  ``--sites``, ``--kinds``): the fault plans apply to the selected
  allocation points only, and injection indices count those points.
- ``Unit.program``: :class:`~oomfuzz.program.ProgramOverrides` (``--invoke``,
  ``--arg``, ``--env``, ``--dir``) replacing a program scenario's sidecar.
- ``Unit.shard``/``Unit.shards``: index shards of one unit (``i % n == k``,
  or contiguous runs); their reports merge into one (``SweepReport.add``).

Invariants:
- Setup and dry-run problems of a unit become ``RunReport.error`` ("input
  error: ..." for bad input, "dry run failed: ..." otherwise); they never
  stop the other units.
- A unit's ``max_iters`` is the unit's share of the sweep's budget
  (split evenly over its shards); with shards each unit's ``OomTest`` forks
  at most ``cpu_count // shards`` children.
- Real-exhaustion sweeps (:mod:`oomfuzz.exhaust`) are a second kind of unit,
  ``ExhaustUnit`` (scenario × allocator: the hook refuses nothing, so modes
  and shards do not apply), made by :func:`exhaust_units` and fanned out by
  :func:`run_exhaust_units` through the same executors.
- Units cross process boundaries as themselves (frozen, picklable) and their
  reports as ``RunReport.to_dict()``; a report is the same whichever
  executor ran it.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import multiprocessing
import os
import random
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from oomfuzz.checks import CheckPolicy
from oomfuzz.exhaust import ExhaustOptions, ExhaustReport, ExhaustUnit, run_exhaust_unit
from oomfuzz.guest import parse_accept
from oomfuzz.inject import AllocRecord
from oomfuzz.oomtest import DryRunError, Iteration, OomTest, OomTestResult
from oomfuzz.plan import Selection
from oomfuzz.program import ProgramOverrides, apply_overrides
from oomfuzz.report import RunReport, SweepReport
from oomfuzz.scenario import (
    ALLOCATORS,
    Scenario,
    ScenarioError,
    ScenarioRunner,
    load_scenario,
)
from oomfuzz.schedule import parts
from oomfuzz.sites import (
    Coverage,
    Exclusion,
    ExclusionError,
    Universe,
    coverage,
    find_exclusions,
    load_exclusions,
    scan,
)
from oomfuzz.target import FaultTarget

__all__ = [
    "declared_sites",
    "measure_coverage",
    "Executor",
    "InProcess",
    "ProcessPool",
    "SiteFirsts",
    "SweepProgress",
    "Unit",
    "executor",
    "exhaust_units",
    "input_error",
    "one_line",
    "oom_test",
    "replay",
    "replay_scenario",
    "run_exhaust_units",
    "run_unit",
    "run_units",
    "sweep_units",
]

T = TypeVar("T")
R = TypeVar("R")

MODES = ("transient", "persistent")


def one_line(text: str) -> str:
    """The first line of ``text`` (at most 300 characters)."""
    first = text.strip().splitlines()[0] if text.strip() else text
    return first[:300]


def input_error(exc: BaseException | None) -> bool:
    """Is a dry-run failure caused by bad input rather than by the runtime?"""
    if exc is None:
        return False
    if isinstance(exc, ScenarioError):
        return True
    names = {"MalformedError", "WatParseError", "InvalidModuleError"}
    return type(exc).__name__ in names


# -- units ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteFirsts:
    """Selection: the first allocation of every distinct (site, kind), plus ``extra``
    other indices drawn with ``random.Random(seed)`` (the baseline gate's bounded sweep:
    every hit site is injected at least once, on every machine, in the same places).
    A site is (file, line, function), as ``oomfuzz.sites`` declares it: two sites in one
    function are two injections."""

    extra: int = 0
    seed: int = 0

    def __call__(self, records: Sequence[AllocRecord]) -> list[int]:
        firsts: dict[tuple[str, int, str, str], int] = {}
        for rec in records:
            site = rec.site
            firsts.setdefault((site.file, site.line, site.function, rec.kind), rec.index)
        rest = sorted(set(range(len(records))) - set(firsts.values()))
        more = random.Random(self.seed).sample(rest, min(self.extra, len(rest)))
        return sorted(set(firsts.values()) | set(more))


@dataclass(frozen=True, slots=True)
class Unit:
    """One work unit: a shard of one (scenario, mode, allocator) sweep, and its options."""

    scenario: str
    mode: str
    allocator: str
    shard: int = 0
    shards: int = 1
    max_iters: int | None = None
    max_duration: float | None = None
    check_every: int = 1
    tracemalloc_every: int = 0
    fail_fast: bool = False
    sample: int | None = None
    seed: int = 0
    contiguous: bool = False
    engine: str = "replay"
    select: Selection | None = None
    target: FaultTarget | None = None
    program: ProgramOverrides | None = None
    #: The injection order (``oomfuzz.schedule``): ``exhaustive`` or ``sites``.
    schedule: str = "exhaustive"
    #: Sites earlier units' first passes inject (``sites:firsts``/``sites:rest`` only).
    covered: frozenset[str] = frozenset()


def _selected(value: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    return choices if value == "both" else (value,)


def sweep_units(
    scenarios: Iterable[Scenario],
    mode: str,
    allocator: str,
    shards: int = 1,
    max_iters: int | None = None,
    **unit_options: Any,
) -> list[Unit]:
    """The work units of a sweep: scenario × mode × allocator × shard, in that order.

    Modes and allocators are narrowed by each scenario's directives; a
    ``max_iters`` budget is split evenly over the shards of a unit. The
    ``sites`` schedule (without a budget) makes two passes: every unit with
    ``sites:firsts``, then every unit with ``sites:rest`` (``oomfuzz.schedule``).
    """
    units: list[Unit] = []
    shards = max(1, shards)
    per = None if max_iters is None else -(-max_iters // shards)
    for scn in scenarios:
        modes = _selected(mode, MODES)
        if scn.modes() is not None:
            modes = tuple(m for m in modes if m in (scn.modes() or ()))
        for alloc in _selected(allocator, ALLOCATORS):
            if alloc not in scn.allocators():
                continue
            for m in modes:
                for k in range(shards):
                    units.append(Unit(scn.name, m, alloc, k, shards, per, **unit_options))
    schedule = unit_options.get("schedule", "exhaustive")
    if max_iters is not None:
        return units  # a budget per unit: one pass, its schedule puts the firsts first
    return [dataclasses.replace(u, schedule=part) for part in parts(schedule) for u in units]


def load_unit_scenario(path: str, program: ProgramOverrides | None = None) -> Scenario:
    """The scenario at ``path``, run as ``program`` says when it is a program."""
    scn = load_scenario(path)
    return scn if program is None else apply_overrides(scn, program)


def check_policy(scn: Scenario, unit: Unit) -> CheckPolicy:
    """The checks' policy for ``unit``: its sampling, and what ``scn`` accepts."""
    accept = parse_accept(scn.directives.get("accept", ""))
    return CheckPolicy(
        leak_every=unit.check_every,
        post_oom_every=unit.check_every,
        tracemalloc_every=unit.tracemalloc_every,
        accept_guest_abort=accept.guest_abort,
        accept_guest_corrupt=accept.guest_corrupt,
        accept_exit=accept.exit_codes,
    )


def oom_test(scn: Scenario, runner: ScenarioRunner, unit: Unit, **kw: Any) -> OomTest:
    """The ``OomTest`` that sweeps ``unit`` of ``scn`` (``kw``: extra ``OomTest`` options)."""
    return OomTest(
        max_iters=unit.max_iters,
        max_duration=unit.max_duration,
        allow_alloc_after_oom=scn.directives.get("allow_alloc_after_oom") == "true",
        mode=unit.mode,
        raise_on_failure=False,
        fail_fast=unit.fail_fast,
        probe=runner,
        label=unit.scenario,
        policy=check_policy(scn, unit),
        select=unit.select,
        target=unit.target,
        shard=(unit.shard, unit.shards) if unit.shards > 1 else None,
        shard_contiguous=unit.contiguous,
        sample=unit.sample,
        schedule=unit.schedule,
        covered=unit.covered,
        seed=unit.seed,
        engine=unit.engine,
        fork_jobs=max(1, (os.cpu_count() or 1) // max(1, unit.shards)),
        **kw,
    )


class SweepProgress(Protocol):
    """What a caller sees of a running sweep (per injection only for in-process units)."""

    def unit_started(self, unit: Unit) -> None: ...

    def on_total(self, n: int) -> None: ...

    def on_iteration(self, it: Iteration, ordinal: int) -> None: ...

    def unit_done(self, report: RunReport) -> None: ...


def run_unit(unit: Unit, progress: SweepProgress | None = None) -> RunReport:
    """Run one work unit; setup and dry-run problems become ``RunReport.error``."""
    rep = RunReport(unit.scenario, unit.mode, unit.allocator)
    try:
        scn = load_unit_scenario(unit.scenario, unit.program)
        runner = ScenarioRunner(scn, unit.allocator)
        kw: dict[str, Any] = {}
        if progress is not None:
            kw["on_total"] = progress.on_total
            kw["on_iteration"] = progress.on_iteration
        result = oom_test(scn, runner, unit, **kw).test(runner.run)
    except DryRunError as e:
        if input_error(e.cause):
            rep.error = f"input error: {one_line(str(e))}"
        else:
            rep.error = f"dry run failed: {e}"
        return rep
    except ScenarioError as e:
        rep.error = f"input error: {e}"
        return rep
    return RunReport.from_result(
        unit.scenario, unit.mode, unit.allocator, result, replay_options(unit)
    )


def replay_options(unit: Unit) -> str:
    """The ``oomfuzz replay`` flags that reproduce ``unit``'s plan and program settings."""
    flags = (unit.target.flags() if unit.target else []) + (
        unit.program.flags() if unit.program else []
    )
    return " ".join(shlex.quote(f) for f in flags)


def run_unit_dict(unit: Unit) -> dict[str, object]:
    """:func:`run_unit` for a worker process: the report as ``RunReport.to_dict()``."""
    return run_unit(unit).to_dict()


def _run_unit_here(unit: Unit, progress: SweepProgress | None) -> RunReport:
    if progress is not None:
        progress.unit_started(unit)
    return run_unit(unit, progress)


# -- replaying one injection ------------------------------------------------------------------


def replay_scenario(
    scn: Scenario,
    allocator: str,
    mode: str,
    index: int | None,
    check_every: int = 1,
    target: FaultTarget | None = None,
) -> OomTestResult:
    """Re-run ``scn`` with one injection at ``index`` (``None``: only the dry runs).

    With a ``target``, ``index`` counts the target's allocation points.
    Raises ``DryRunError`` if the dry runs fail.
    """
    runner = ScenarioRunner(scn, allocator)
    unit = Unit(scn.name, mode, allocator, check_every=check_every, target=target)
    indices = [] if index is None else [index]
    return oom_test(scn, runner, unit, indices=indices).test(runner.run)


def replay(
    path: str,
    mode: str,
    allocator: str,
    index: int,
    check_every: int = 1,
    target: FaultTarget | None = None,
    program: ProgramOverrides | None = None,
) -> tuple[OomTestResult, Iteration | None]:
    """Replay one injection of the scenario at ``path``: the result and its iteration.

    Bad input (the file, the allocator, a module that does not parse) raises
    ``ScenarioError``; a dry run failing otherwise raises ``DryRunError``.
    """
    scn = load_unit_scenario(path, program)
    if allocator not in scn.allocators():
        raise ScenarioError(f"{path} does not run with allocator {allocator!r}")
    try:
        result = replay_scenario(scn, allocator, mode, index, check_every, target)
    except DryRunError as e:
        if input_error(e.cause):
            raise ScenarioError(f"{path}: {one_line(str(e))}") from None
        raise
    return result, (result.iterations[0] if result.iterations else None)


# -- executors ---------------------------------------------------------------------------------


class Executor(Protocol):
    """Where the tasks of a sweep run.

    ``map`` calls ``fn`` on every item and yields ``(position, result)`` as
    results arrive. ``in_process``: ``fn`` runs in this process, so it may be
    any callable and may report progress; otherwise ``fn`` and the items
    must be picklable (a module-level function, frozen data).
    """

    jobs: int
    in_process: bool

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]: ...


class InProcess:
    """Run every task here, in order."""

    jobs = 1
    in_process = True

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        for i, item in enumerate(items):
            yield i, fn(item)


class ProcessPool:
    """Run tasks in ``jobs`` spawned local worker processes."""

    in_process = False

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for fut in cf.as_completed(futures):
                yield futures[fut], fut.result()


def executor(jobs: int) -> Executor:
    """The local executor for ``jobs`` worker processes (``<= 1``: in this process)."""
    return InProcess() if jobs <= 1 else ProcessPool(jobs)


def run_units(
    units: Sequence[Unit], where: Executor, progress: SweepProgress | None = None
) -> Iterator[tuple[int, RunReport]]:
    """Run ``units`` on ``where``; yield ``(position, report)`` as each unit finishes.

    First passes of the ``sites`` schedule (``sites:firsts``) run here, one
    unit after the other, each told the sites the earlier ones injected
    (``Unit.covered``), so together they inject each site about once (their
    cost is about their dry runs'); each unit's second pass, on ``where``,
    gets its first pass's set.
    """
    firsts = [i for i, u in enumerate(units) if u.schedule == "sites:firsts"]
    if not firsts:
        yield from _run_plain(units, where, progress)
        return
    covered: set[str] = set()
    given: dict[tuple[str, str, str, int], frozenset[str]] = {}
    here = where if where.in_process else InProcess()
    for i in firsts:
        unit = dataclasses.replace(units[i], covered=frozenset(covered))
        given[_unit_key(unit)] = unit.covered
        for _, rep in _run_plain([unit], here, progress):
            covered.update(key for key, stat in rep.sites.items() if stat.injected)
            yield i, rep
    rest = [i for i, u in enumerate(units) if u.schedule != "sites:firsts"]
    batch = [
        dataclasses.replace(units[i], covered=given.get(_unit_key(units[i]), frozenset()))
        for i in rest
    ]
    for k, rep in _run_plain(batch, where, progress):
        yield rest[k], rep


def _unit_key(u: Unit) -> tuple[str, str, str, int]:
    return (u.scenario, u.mode, u.allocator, u.shard)


def _run_plain(
    units: Sequence[Unit], where: Executor, progress: SweepProgress | None
) -> Iterator[tuple[int, RunReport]]:
    if where.in_process:
        results: Iterator[tuple[int, RunReport]] = where.map(
            functools.partial(_run_unit_here, progress=progress), units
        )
    else:
        results = ((i, RunReport.from_dict(d)) for i, d in where.map(run_unit_dict, units))
    for i, rep in results:
        if progress is not None:
            progress.unit_done(rep)
        yield i, rep


def declared_sites(
    paths: Sequence[str],
    roots: Sequence[str] | None = None,
    exclusions: str | None = None,
) -> tuple[Universe, list[Exclusion]]:
    """The sites a sweep of ``paths`` is measured against, and the exclusions that apply.

    ``roots``: what to scan (default: the wasmrt package). ``exclusions``: the
    exclusions file (default: ``sites-exclusions.json`` found from ``paths``).
    A bad root or exclusions file raises ``ScenarioError`` (before any work).
    """
    try:
        universe = scan(list(roots) if roots else None)
        found = exclusions if exclusions is not None else find_exclusions(paths)
        return universe, load_exclusions(found) if found is not None else []
    except (ExclusionError, FileNotFoundError, SyntaxError) as e:
        raise ScenarioError(str(e)) from None


def measure_coverage(
    report: SweepReport, universe: Universe, exclusions: Sequence[Exclusion] = ()
) -> Coverage:
    """Sites the sweep injected ÷ sites declared (``oomfuzz.sites``)."""
    return coverage(universe, report.injected_sites(), exclusions)


# -- real-exhaustion sweeps -----------------------------------------------------------------------


def exhaust_units(
    scenarios: Iterable[Scenario], allocator: str, options: ExhaustOptions | None = None
) -> list[ExhaustUnit]:
    """The real-exhaustion units of a sweep: scenario × allocator (narrowed by directives)."""
    options = options or ExhaustOptions()
    return [
        ExhaustUnit(scn.name, alloc, options)
        for scn in scenarios
        for alloc in _selected(allocator, ALLOCATORS)
        if alloc in scn.allocators()
    ]


def run_exhaust_unit_dict(unit: ExhaustUnit) -> dict[str, object]:
    """:func:`~oomfuzz.exhaust.run_exhaust_unit` for a worker process: the report as a dict."""
    return run_exhaust_unit(unit).to_dict()


def run_exhaust_units(
    units: Sequence[ExhaustUnit], where: Executor, log: Callable[[str], None] | None = None
) -> Iterator[tuple[int, ExhaustReport]]:
    """Run the ladders of ``units`` on ``where``; yield ``(position, report)`` as each ends.

    ``log`` gets every step as it runs for units run in this process (a worker's
    steps are in its report).
    """
    if where.in_process:
        yield from where.map(functools.partial(run_exhaust_unit, log=log), units)
        return
    for i, d in where.map(run_exhaust_unit_dict, units):
        yield i, ExhaustReport.from_dict(d)
