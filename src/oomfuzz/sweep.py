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
  :func:`executor` picks one for ``--jobs``; :func:`executor_for` adds
  ``DaskCluster`` (:mod:`oomfuzz.cluster`, ``--cluster``). Another backend
  is one class with ``jobs``, ``in_process`` and ``map``.
- Machine shards (``--shard K/N``, :mod:`oomfuzz.merge`): :func:`shard_units`
  narrows every unit to the shard's injection indices, composed with the
  ``--jobs`` split; :func:`sweep_identity` records what was swept, so the
  shards' reports merge (``oomfuzz merge``) into the unsharded report.
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
- Units in one process run one at a time (``_UNIT_LOCK``): the leak, tracemalloc
  and pool checks observe the whole process, so a thread executor (a Dask
  worker's threads) gets its parallelism from processes, never from threads
  sharing one interpreter's heap.
- Units cross process boundaries as themselves (frozen, picklable) and their
  reports as ``RunReport.to_dict()``; a report is the same whichever
  executor ran it.
- ``Unit.until`` (a ``time.time()`` instant) is the whole sweep's budget
  (``sweep --max-duration``): a unit started after it runs nothing
  (``stopped`` says so), one started before gets what is left as its
  ``max_duration``. A :class:`ProcessPool` given the same instant never
  waits for a worker more than ``grace`` seconds past it: it kills the
  workers and reports the units they had not finished as errors
  (:class:`WorkerLost`), so a worker that never returns cannot hang the sweep.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import functools
import multiprocessing
import os
import random
import shlex
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from oomfuzz.checks import CheckPolicy
from oomfuzz.cluster import DaskCluster
from oomfuzz.deadline import RunTimeout
from oomfuzz.exhaust import ExhaustOptions, ExhaustReport, ExhaustUnit, run_exhaust_unit
from oomfuzz.guest import parse_accept
from oomfuzz.inject import AllocRecord
from oomfuzz.merge import (
    Shard,
    SweepIdentity,
    content_digest,
    exclusions_digest,
    universe_digest,
    versions,
)
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
from oomfuzz.sitecache import cached_scan
from oomfuzz.sites import (
    Coverage,
    Exclusion,
    ExclusionError,
    Universe,
    coverage,
    find_exclusions,
    load_exclusions,
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
    "WorkerLost",
    "executor",
    "executor_for",
    "exhaust_units",
    "input_error",
    "one_line",
    "oom_test",
    "replay",
    "replay_scenario",
    "run_exhaust_units",
    "run_unit",
    "run_units",
    "shard_units",
    "sweep_identity",
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
    if isinstance(exc, ScenarioError | RunTimeout):
        return True  # a dry run that never ends is a setup problem (the remedy: fuel=N)
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
    tracemalloc_sample: int = 1
    fail_fast: bool = False
    sample: int | None = None
    seed: int = 0
    contiguous: bool = False
    engine: str = "replay"
    select: Selection | None = None
    target: FaultTarget | None = None
    program: ProgramOverrides | None = None
    run_timeout: float | None = None
    until: float | None = None
    #: Machines the unit's index shards are spread over (``--shard K/N``: N); the
    #: ``shards // machines`` shards on this machine share its CPUs.
    machines: int = 1
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
    ``max_iters`` budget is split evenly over the shards of a unit. The cheap
    tracemalloc check (``tracemalloc_sample``, default 1) goes to the first unit
    of each scenario only: once per scenario keeps its cost a small share of the
    sweep (BENCHMARKS.md, "Sweep cost of the checks"). The ``sites`` schedule
    (without a budget) makes two passes: every unit with ``sites:firsts``, then
    every unit with ``sites:rest`` (``oomfuzz.schedule``).
    """
    units: list[Unit] = []
    shards = max(1, shards)
    per = None if max_iters is None else -(-max_iters // shards)
    sampled = int(unit_options.pop("tracemalloc_sample", 1))
    for scn in scenarios:
        first = True
        modes = _selected(mode, MODES)
        if scn.modes() is not None:
            modes = tuple(m for m in modes if m in (scn.modes() or ()))
        for alloc in _selected(allocator, ALLOCATORS):
            if alloc not in scn.allocators():
                continue
            for m in modes:
                for k in range(shards):
                    sample = sampled if first else 0
                    first = False
                    units.append(
                        Unit(
                            scn.name,
                            m,
                            alloc,
                            k,
                            shards,
                            per,
                            tracemalloc_sample=sample,
                            **unit_options,
                        )
                    )
    schedule = unit_options.get("schedule", "exhaustive")
    if max_iters is not None:
        return units  # a budget per unit: one pass, its schedule puts the firsts first
    return [dataclasses.replace(u, schedule=part) for part in parts(schedule) for u in units]


def shard_units(units: Sequence[Unit], shard: Shard) -> list[Unit]:
    """``units`` narrowed to the injection indices of ``shard`` (``--shard K/N``).

    A unit's own index shard ``j`` of ``J`` (``--jobs``) becomes shard
    ``r + j * N`` of ``J * N``, where ``r`` is the unit's residue in ``shard``:
    the indices ``i % (J * N) == r + j * N`` over ``j`` are exactly
    ``i % N == r``, whatever ``J`` is.
    """
    if shard.count == 1:
        return list(units)
    out: list[Unit] = []
    for u in units:
        if u.contiguous:
            raise ValueError("contiguous index shards cannot be split across machines")
        r = shard.residue(u.scenario, u.mode, u.allocator)
        n = shard.count
        out.append(dataclasses.replace(u, shard=r + u.shard * n, shards=u.shards * n, machines=n))
    return out


def scenario_digest(scn: Scenario) -> str:
    """sha256 of what defines ``scn``: its file, and a program's sidecar."""
    files = [scn.path]
    if scn.format in (".wasm", ".wat"):
        files.append(scn.path.with_suffix(".json"))
    return content_digest(files)


def sweep_identity(
    scenarios: Sequence[Scenario],
    shard: Shard,
    options: dict[str, object],
    declared: tuple[Universe, Sequence[Exclusion]] | None = None,
) -> SweepIdentity:
    """What a sweep of ``scenarios`` runs: inputs, ``options``, versions, site universe."""
    universe, exclusions = declared if declared is not None else (None, ())
    return SweepIdentity(
        shard,
        {scn.name: scenario_digest(scn) for scn in scenarios},
        options,
        versions(),
        universe_digest(universe) if universe is not None else "",
        exclusions_digest(exclusions),
    )


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
        retry_every=unit.check_every,
        tracemalloc_every=unit.tracemalloc_every,
        tracemalloc_sample=unit.tracemalloc_sample,
        accept_guest_abort=accept.guest_abort,
        accept_guest_corrupt=accept.guest_corrupt,
        accept_exit=accept.exit_codes,
    )


def _budget(unit: Unit) -> float | None:
    """The unit's ``max_duration``: its own, or what is left of the sweep's budget."""
    if unit.until is None:
        return unit.max_duration
    left = unit.until - time.time()
    return left if unit.max_duration is None else min(unit.max_duration, left)


def oom_test(scn: Scenario, runner: ScenarioRunner, unit: Unit, **kw: Any) -> OomTest:
    """The ``OomTest`` that sweeps ``unit`` of ``scn`` (``kw``: extra ``OomTest`` options)."""
    return OomTest(
        max_iters=unit.max_iters,
        max_duration=_budget(unit),
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
        run_timeout=unit.run_timeout,
        fork_jobs=max(1, (os.cpu_count() or 1) // max(1, unit.shards // unit.machines)),
        **kw,
    )


class SweepProgress(Protocol):
    """What a caller sees of a running sweep (per injection only for in-process units)."""

    def unit_started(self, unit: Unit) -> None: ...

    def on_total(self, n: int) -> None: ...

    def on_iteration(self, it: Iteration, ordinal: int) -> None: ...

    def unit_done(self, report: RunReport) -> None: ...


#: Held while a unit runs (module docstring: one unit at a time per process).
_UNIT_LOCK = threading.RLock()


def run_unit(unit: Unit, progress: SweepProgress | None = None) -> RunReport:
    """Run one work unit; setup and dry-run problems become ``RunReport.error``."""
    with _UNIT_LOCK:
        return _run_unit_locked(unit, progress)


def _run_unit_locked(unit: Unit, progress: SweepProgress | None) -> RunReport:
    rep = RunReport(unit.scenario, unit.mode, unit.allocator)
    left = _budget(unit)
    if unit.until is not None and left is not None and left <= 0:
        rep.stopped = "max_duration (the sweep's budget was spent before this unit)"
        return rep
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


class WorkerLost(Exception):  # noqa: N818 - names the event
    """Raised by :meth:`ProcessPool.map` after it killed workers that never returned:
    ``positions`` are the items they had not finished."""

    def __init__(self, positions: list[int], reason: str) -> None:
        super().__init__(reason)
        self.positions = positions
        self.reason = reason


class Executor(Protocol):
    """Where the tasks of a sweep run.

    ``map`` calls ``fn`` on every item and yields ``(position, result)`` as
    results arrive; it may end with :class:`WorkerLost` naming the items whose
    workers it had to kill. ``in_process``: ``fn`` runs in this process, so it may be
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


#: Seconds a ProcessPool waits past the sweep's budget before it kills its workers
#: (a started run ends at its own deadline, well within this, unless its worker is stuck).
WORKER_GRACE = 120.0


class ProcessPool:
    """Run tasks in ``jobs`` spawned local worker processes (see the module docstring
    for ``until``/``grace``)."""

    in_process = False

    def __init__(self, jobs: int, until: float | None = None, grace: float = WORKER_GRACE) -> None:
        self.jobs = jobs
        self.until = until
        self.grace = grace

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        ctx = multiprocessing.get_context("spawn")
        pool = cf.ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx)
        try:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            pending = set(futures)
            while pending:
                wait = None if self.until is None else self.until + self.grace - time.time()
                done, pending = cf.wait(
                    pending,
                    timeout=None if wait is None else max(0.0, wait),
                    return_when=cf.FIRST_COMPLETED,
                )
                for fut in done:
                    yield futures[fut], fut.result()
                if pending and not done:
                    _kill_workers(pool)
                    raise WorkerLost(
                        sorted(futures[f] for f in pending),
                        f"worker did not return within {self.grace:g}s past the sweep's "
                        "budget (killed)",
                    )
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _kill_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Kill a process pool's workers (``kill_workers`` where Python has it)."""
    kill = getattr(pool, "kill_workers", None)
    if kill is not None:
        kill()
        return
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.kill()


def executor(jobs: int, until: float | None = None) -> Executor:
    """The local executor for ``jobs`` worker processes (``<= 1``: in this process);
    ``until``: the sweep's budget, past which a ProcessPool stops waiting for workers."""
    return InProcess() if jobs <= 1 else ProcessPool(jobs, until)


def _reports(
    dicts: Iterator[tuple[int, dict[str, object]]], units: Sequence[Unit]
) -> Iterator[tuple[int, RunReport]]:
    """Reports from a worker pool; units whose worker was killed become errors."""
    try:
        for i, d in dicts:
            yield i, RunReport.from_dict(d)
    except WorkerLost as lost:
        for i in lost.positions:
            rep = RunReport(units[i].scenario, units[i].mode, units[i].allocator)
            rep.error = f"worker lost: {lost.reason}"
            yield i, rep


@contextlib.contextmanager
def executor_for(
    jobs: int, cluster: str | None = None, until: float | None = None
) -> Iterator[Executor]:
    """Where a sweep runs: the Dask cluster at ``cluster`` (``tcp://HOST:PORT``; its
    client is closed afterwards), else :func:`executor` for ``jobs`` (``until``: the
    sweep's budget, see :class:`ProcessPool`).

    An unusable cluster raises ``ClusterError`` (a ``ScenarioError``) before any work.
    """
    if cluster is None:
        yield executor(jobs, until)
        return
    with DaskCluster(cluster) as where:
        yield where


def run_units(
    units: Sequence[Unit], where: Executor, progress: SweepProgress | None = None
) -> Generator[tuple[int, RunReport], None, None]:
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
) -> Generator[tuple[int, RunReport], None, None]:
    if where.in_process:
        results: Iterator[tuple[int, RunReport]] = where.map(
            functools.partial(_run_unit_here, progress=progress), units
        )
    else:
        results = _reports(where.map(run_unit_dict, units), units)
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
        universe = cached_scan(list(roots) if roots else None)
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
