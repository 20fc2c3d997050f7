"""The sweep plan: Wasmtime's ``OomTest`` algorithm, written once, executed by the engines.

A :class:`SweepPlan` is one OOM test of one function ``fn`` (no arguments;
returns normally iff it hit no OOM) under :class:`SweepOptions` (the knobs of
``OomTest``). It counts in dry runs until two consecutive dry runs make the
same number of allocations (at most 10, else "allocation count did not
stabilize after 10 dry-run iterations (last count: N)"), then schedules an
injection at every allocation index ``0..total`` in order, for each selected
mode. ``fuzz`` picks ``max_iters`` indices uniformly from ``[0, total)`` with
``random.Random(seed)`` (and requires ``max_iters``, as Wasmtime does).

The plan is a set of generators that yield fault plans
(:class:`~oomfuzz.inject.Injector`) and receive :class:`RunOutcome`; engines
(:mod:`oomfuzz.engines`) only execute those plans, through this public
surface: :meth:`SweepPlan.dry_runs`, ``jobs``, :meth:`SweepPlan.fault_plan`,
:meth:`SweepPlan.verdict` (a run judged by the registered checks,
:data:`oomfuzz.checks.CHECKS`), :meth:`SweepPlan.record`,
:meth:`SweepPlan.notify`, :meth:`SweepPlan.time_up`, :meth:`SweepPlan.replay`
and :meth:`SweepPlan.finish`. So an injection index gets the same
classification from every engine.

Invariants:
- The code under test may raise anything; each run catches ``BaseException``
  into its ``RunOutcome`` to classify it (that is the harness's job), except
  ``KeyboardInterrupt``, which always stops the sweep. Caught exceptions are
  formatted, then their frames are cleared and their tracebacks dropped
  (a frame references its closure, which can reach a store), so a
  traceback cannot keep a store alive and fake a leak.
- A dry run that raises, or counts that never stabilise, raise
  :class:`DryRunError` whatever ``raise_on_failure`` says: without a clean
  baseline no verdict is meaningful.
- ``mode=None`` derives the mode from Wasmtime's knobs: ``persistent`` when
  ``allow_alloc_after_oom`` is set without ``alloc_succeeds_after_oom``
  (later allocations return null), else ``transient``.
- ``target`` (:class:`~oomfuzz.target.FaultTarget`): the fault plans apply
  to the selected allocation points only, numbered among themselves; the
  result's ``total`` and every injection index count those points (the
  dry runs still stabilise on the count of all allocations).
- The schedule: ``indices`` (or every index), narrowed by ``select`` (a
  function of the last dry run's allocation records: the seam for targeted
  fault plans), then ``sample=K`` keeps K indices drawn with
  ``random.Random(seed)`` when there are more (sorted; the same seed and
  count give the same sample); ``schedule="sites"`` (:mod:`oomfuzz.schedule`)
  instead puts the first allocation of each distinct (site, calling context)
  first and the other indices after them in a seeded order (``sample=K``:
  K of them); then ``shard=(k, n)`` keeps the indices
  ``i % n == k`` (interleaved), or with ``shard_contiguous`` the k-th of n
  contiguous runs, so the shards of a sampled sweep partition the same sample.
- With ``raise_on_failure`` the first failing iteration ends the sweep
  (``fail_fast``); the builder (:class:`oomfuzz.OomTest`) raises
  :class:`OomTestFailure` for it.
- The post-OOM check is off when the dry runs' results differ (noted in
  ``OomTestResult.notes``), decided once, after the dry runs.
- Every run has a deadline (:mod:`oomfuzz.deadline`), in every engine:
  ``run_timeout`` seconds when given; otherwise a dry run gets
  ``DRY_RUN_TIMEOUT`` (capped at what is left of ``max_duration``) and every
  later run ``max(MIN_RUN_TIMEOUT, RUN_TIMEOUT_FACTOR x`` the slowest dry
  run``)`` (:meth:`SweepPlan.run_limit`). A run past it is stopped inside
  the code under test and becomes ``RunOutcome.lost = Finding(TIMEOUT, where
  it was)``; the sweep goes on. A dry run past it raises
  :class:`DryRunError` naming the remedy (a fuel budget). ``max_duration``
  is the sweep's budget: no run starts after it; a run already started ends
  or meets its own deadline.
"""

from __future__ import annotations

import dataclasses
import random
import time
import traceback
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from oomfuzz.checks import (
    CHECKS,
    CheckPolicy,
    FailureClass,
    Finding,
    JudgedRun,
    RunOutcome,
    describe_exc,
    exception_chain,
    excuse,
    primary,
)
from oomfuzz.deadline import RunTimeout, deadline
from oomfuzz.inject import AllocRecord, InjectMode, Injector, Site
from oomfuzz.runstate import recording
from oomfuzz.schedule import PARTS, SCHEDULES
from oomfuzz.schedule import order as schedule_order
from oomfuzz.target import FaultTarget
from oomfuzz.tracetext import exception_text

__all__ = [
    "DryRunError",
    "Iteration",
    "Job",
    "OomTestFailure",
    "OomTestResult",
    "Probe",
    "RunOutcome",
    "SiteStat",
    "SweepOptions",
    "SweepPlan",
    "drive",
    "execute",
    "execute_async",
    "finish_outcome",
    "format_iteration",
    "scrub",
]

MAX_DRY_RUNS = 10
#: Deadline of a dry run when ``run_timeout`` is not given (seconds).
DRY_RUN_TIMEOUT = 60.0
#: Floor of the derived per-run deadline, and its multiple of the slowest dry run.
MIN_RUN_TIMEOUT = 10.0
RUN_TIMEOUT_FACTOR = 20.0
#: What a scenario whose dry run never ends needs (the setup error names it).
FUEL_REMEDY = (
    "a guest that may never stop needs a fuel budget: add `;; oomfuzz: fuel=N` to the "
    "scenario (or raise the deadline: --run-timeout SECONDS, OomTest(run_timeout=...))"
)
SWEEP_MODES = ("transient", "persistent")

#: A (sub-)plan: yields fault plans, receives each run's outcome, returns ``T``.
Steps = Generator[Injector, RunOutcome, Any]


class Probe(Protocol):
    """Optional view into the code under test, used by the cleanup and leak checks."""

    def before_run(self) -> None: ...

    def resources(self) -> dict[str, object]:
        """Counters (pool metrics, store counts...) that must match the fault-free baseline."""
        ...

    def refs(self) -> list[tuple[str, weakref.ref[Any]]]:
        """Weak references to objects (stores, instances) the last run created."""
        ...


#: Picks injection indices from the last dry run's allocation records (``records[i]`` is
#: allocation ``i``); the seam for targeted fault plans (by site, kind, absorbing).
Selection = Callable[[Sequence[AllocRecord]], Iterable[int]]


@dataclass(slots=True)
class Iteration:
    """One injection run and its verdict."""

    index: int
    mode: str
    verdict: FailureClass
    findings: list[Finding]
    allocations: int
    injected: AllocRecord | None = None
    after_oom: list[AllocRecord] = field(default_factory=list)
    exc_type: str = ""
    exc_message: str = ""
    exc_traceback: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict.is_failure

    @property
    def detail(self) -> str:
        return "; ".join(f"{f.cls}: {f.detail}" for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "mode": self.mode,
            "verdict": self.verdict.value,
            "findings": [{"class": f.cls.value, "detail": f.detail} for f in self.findings],
            "allocations": self.allocations,
            "injected": self.injected.to_dict() if self.injected else None,
            "after_oom": [r.to_dict() for r in self.after_oom],
            "exc_type": self.exc_type,
            "exc_message": self.exc_message,
            "exc_traceback": self.exc_traceback,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Iteration:
        return cls(
            index=int(d["index"]),
            mode=str(d["mode"]),
            verdict=FailureClass(d["verdict"]),
            findings=[Finding(FailureClass(f["class"]), f["detail"]) for f in d["findings"]],
            allocations=int(d.get("allocations", 0)),
            injected=AllocRecord.from_dict(d["injected"]) if d.get("injected") else None,
            after_oom=[AllocRecord.from_dict(r) for r in d.get("after_oom", [])],
            exc_type=d.get("exc_type", ""),
            exc_message=d.get("exc_message", ""),
            exc_traceback=d.get("exc_traceback", ""),
        )


@dataclass(slots=True)
class SiteStat:
    """One allocation site: dry-run hits, injections there, and failures they caused."""

    site: Site
    kinds: set[str] = field(default_factory=set)
    absorbing: bool = False
    hits: int = 0
    injected: int = 0
    failures: int = 0

    @property
    def status(self) -> str:
        if self.failures:
            return "failing"
        return "handled" if self.injected else "not injected"

    def to_dict(self) -> dict[str, object]:
        return {
            "site": self.site.to_dict(),
            "kinds": sorted(self.kinds),
            "absorbing": self.absorbing,
            "hits": self.hits,
            "injected": self.injected,
            "failures": self.failures,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SiteStat:
        return cls(
            Site.from_dict(d["site"]),
            set(d.get("kinds", ())),
            bool(d.get("absorbing", False)),
            int(d.get("hits", 0)),
            int(d.get("injected", 0)),
            int(d.get("failures", 0)),
        )

    def merge(self, other: SiteStat) -> None:
        self.kinds |= other.kinds
        self.absorbing = self.absorbing or other.absorbing
        self.hits = max(self.hits, other.hits)
        self.injected += other.injected
        self.failures += other.failures


@dataclass(slots=True)
class OomTestResult:
    """Everything a sweep found; ``passed`` is true iff no iteration failed."""

    label: str
    total: int = 0
    dry_run_counts: list[int] = field(default_factory=list)
    iterations: list[Iteration] = field(default_factory=list)
    sites: dict[str, SiteStat] = field(default_factory=dict)
    elapsed: float = 0.0
    stopped: str = "complete"
    notes: list[str] = field(default_factory=list)
    baseline: object = None
    engine: str = "replay"

    @property
    def failures(self) -> list[Iteration]:
        return [it for it in self.iterations if it.failed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line for people: points swept, verdict counts, sites, time."""
        counts: dict[str, int] = {}
        for it in self.iterations:
            counts[it.verdict.value] = counts.get(it.verdict.value, 0) + 1
        verdicts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "nothing swept"
        return (
            f"{self.label}: {self.total} allocation points, {len(self.iterations)} injections "
            f"({verdicts}), {len(self.sites)} sites, {self.elapsed:.2f}s [{self.engine}]"
        )

    def site_stat(self, site: Site) -> SiteStat:
        key = str(site)
        stat = self.sites.get(key)
        if stat is None:
            stat = self.sites[key] = SiteStat(site)
        return stat


class OomTestFailure(AssertionError):  # noqa: N818 - Wasmtime's wording: the OOM test failed
    """An OOM test found a failing iteration (raised by default on the first one)."""

    def __init__(self, message: str, result: OomTestResult, iteration: Iteration | None) -> None:
        super().__init__(message)
        self.result = result
        self.iteration = iteration


class DryRunError(OomTestFailure):
    """The fault-free dry runs failed or their allocation counts never stabilised."""

    def __init__(
        self, message: str, result: OomTestResult, cause: BaseException | None = None
    ) -> None:
        super().__init__(message, result, None)
        self.cause = cause


def format_iteration(label: str, it: Iteration) -> str:
    """A readable multi-line description of one failing iteration."""
    lines = [f"OOM test {label!r} failed: {it.verdict} at injection index {it.index} ({it.mode})"]
    for f in it.findings:
        lines.append(f"  {f.cls}: {f.detail}")
    if it.injected is not None:
        lines.append(f"  injected allocation: {it.injected.describe()}")
        if it.injected.traceback:
            lines.append("  allocation traceback (most recent call last):")
            lines.extend("    " + ln for ln in it.injected.traceback.rstrip().splitlines()[-12:])
    if it.exc_traceback:
        lines.append("  exception raised by the code under test:")
        lines.extend("    " + ln for ln in it.exc_traceback.rstrip().splitlines()[-12:])
    return "\n".join(lines)


def scrub(exc: BaseException) -> str:
    """Format ``exc`` and clear its frames (their locals could keep stores alive)."""
    text = exception_text(exc)
    for e in exception_chain(exc):
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)
            # A cleared frame still references its (closure) function, which can
            # reach a store: drop the traceback itself, it is formatted above.
            e.__traceback__ = None
    return text


def finish_outcome(out: RunOutcome, probe: Probe | None) -> RunOutcome:
    """Scrub the run's exception and take the probe's snapshot of what it left.

    A run stopped at its deadline (``RunTimeout``) is *lost*: ``lost`` is a
    ``timeout`` finding naming where it was, ``exc_text`` the stuck stack.
    """
    if isinstance(out.exc, RunTimeout):
        stopped = out.exc
        out.exc = None
        scrub(stopped)
        out.lost = Finding(FailureClass.TIMEOUT, str(stopped))
        out.exc_text = stopped.stack
    if out.exc is not None:
        out.exc_text = scrub(out.exc)
    if probe is not None:
        out.resources = probe.resources()
        out.refs = probe.refs()
    rs, out.state = out.state, None
    if rs is not None:
        out.violations = [v.describe() for v in rs.violations]
        out.refs = [*out.refs, *rs.finish()]
        out.long_lived = rs.long_lived
    return out


def execute(
    fn: Callable[[], object],
    inj: Injector,
    probe: Probe | None = None,
    limit: float | None = None,
) -> RunOutcome:
    """Run ``fn`` once under ``inj`` within ``limit`` seconds (``None``: no deadline);
    never raises except ``KeyboardInterrupt``."""
    out = RunOutcome(inj)
    if probe is not None:
        probe.before_run()
    try:
        with deadline(limit), inj.installed(), recording() as out.state:
            out.value = fn()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - the code under test may raise anything; it is classified, not hidden
        out.exc = e
    return finish_outcome(out, probe)


async def execute_async(
    fn: Callable[[], Awaitable[object]], inj: Injector, probe: Probe | None = None
) -> RunOutcome:
    """Async twin of :func:`execute`; the hook is installed in the awaiting task's context."""
    out = RunOutcome(inj)
    if probe is not None:
        probe.before_run()
    try:
        with inj.installed(), recording() as out.state:
            out.value = await fn()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - classified like in execute(); KeyboardInterrupt stops
        out.exc = e
    return finish_outcome(out, probe)


def drive(
    steps: Steps,
    fn: Callable[[], object],
    probe: Probe | None,
    limit: Callable[[], float | None] | None = None,
) -> Any:
    """Execute a (sub-)plan synchronously and return its value; ``limit()`` is the
    deadline of the next run (``SweepPlan.run_limit``)."""
    try:
        inj = next(steps)
        while True:
            inj = steps.send(execute(fn, inj, probe, None if limit is None else limit()))
    except StopIteration as stop:
        return stop.value


# -- the options -------------------------------------------------------------------------


class SweepOptions:
    """The knobs of an OOM test (Wasmtime's ``OomTest`` knobs, plus oomfuzz's).

    ``engine_names()`` lists the engine names accepted (:class:`oomfuzz.OomTest`
    answers from the engine registry); empty: any.
    """

    @classmethod
    def engine_names(cls) -> tuple[str, ...]:
        return ()

    def __init__(
        self,
        max_iters: int | None = None,
        max_duration: float | timedelta | None = None,
        allow_alloc_after_oom: bool = False,
        alloc_succeeds_after_oom: bool = False,
        allow_missed_oom_errors: bool = False,
        seed: int = 0,
        mode: str | None = None,
        *,
        raise_on_failure: bool = True,
        fail_fast: bool | None = None,
        panic_on_alloc_after_oom: bool = False,
        policy: CheckPolicy | None = None,
        probe: Probe | None = None,
        label: str | None = None,
        indices: Iterable[int] | None = None,
        select: Selection | None = None,
        target: FaultTarget | None = None,
        shard: tuple[int, int] | None = None,
        shard_contiguous: bool = False,
        sample: int | None = None,
        schedule: str = "exhaustive",
        covered: Iterable[str] = (),
        stack_depth: int = 6,
        on_iteration: Callable[[Iteration, int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
        engine: str = "replay",
        fork_jobs: int | None = None,
        fork_timeout: float | None = None,
        run_timeout: float | None = None,
    ) -> None:
        if mode is None:
            mode = (
                "persistent"
                if allow_alloc_after_oom and not alloc_succeeds_after_oom
                else "transient"
            )
        if mode not in ("transient", "persistent", "both"):
            raise ValueError(f"mode must be 'transient', 'persistent' or 'both', not {mode!r}")
        if alloc_succeeds_after_oom and mode != "transient":
            raise ValueError("alloc_succeeds_after_oom contradicts persistent injection")
        if max_iters is not None and max_iters < 0:
            raise ValueError("max_iters must be >= 0")
        if shard is not None and not (shard[1] > 0 and 0 <= shard[0] < shard[1]):
            raise ValueError("shard must be (k, n) with 0 <= k < n")
        names = self.engine_names()
        if names and engine not in names:
            raise ValueError(f"engine must be one of {', '.join(names)}, not {engine!r}")
        if fork_jobs is not None and fork_jobs < 1:
            raise ValueError("fork_jobs must be >= 1")
        if fork_timeout is not None and fork_timeout <= 0:
            raise ValueError("fork_timeout must be > 0")
        if run_timeout is not None and run_timeout <= 0:
            raise ValueError("run_timeout must be > 0")
        if sample is not None and sample < 0:
            raise ValueError("sample must be >= 0")
        if schedule not in (*SCHEDULES, *PARTS):
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
        self.max_iters = max_iters
        if isinstance(max_duration, timedelta):
            max_duration = max_duration.total_seconds()
        self.max_duration = max_duration
        self.allow_alloc_after_oom = allow_alloc_after_oom
        self.alloc_succeeds_after_oom = alloc_succeeds_after_oom
        self.allow_missed_oom_errors = allow_missed_oom_errors
        self.seed = seed
        self.modes: tuple[InjectMode, ...] = (
            SWEEP_MODES if mode == "both" else (mode,)  # type: ignore[assignment]
        )
        self.raise_on_failure = raise_on_failure
        self.fail_fast = raise_on_failure if fail_fast is None else fail_fast
        self.panic_on_alloc_after_oom = panic_on_alloc_after_oom
        self.policy = policy or CheckPolicy()
        if allow_missed_oom_errors and not self.policy.allow_missed_oom_errors:
            self.policy = dataclasses.replace(self.policy, allow_missed_oom_errors=True)
        self.probe = probe
        self.label = label
        self.indices = None if indices is None else sorted(set(indices))
        self.select = select
        self.target = target
        self.shard = shard
        self.shard_contiguous = shard_contiguous
        self.sample = sample
        self.schedule = schedule
        #: Sites other units' first passes inject (``oomfuzz.schedule``).
        self.covered = frozenset(covered)
        self.stack_depth = stack_depth
        self.on_iteration = on_iteration
        self.on_total = on_total
        self.engine = engine
        self.fork_jobs = fork_jobs
        self.fork_timeout = fork_timeout
        self.run_timeout = run_timeout

    def label_for(self, fn: object) -> str:
        return self.label or getattr(fn, "__qualname__", None) or repr(fn)


# -- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One scheduled injection: its place in the schedule, its index and mode."""

    ordinal: int
    index: int
    mode: InjectMode


class SweepPlan:
    """One OOM test of ``fn`` under ``options`` (see the module docstring)."""

    def __init__(self, options: SweepOptions, fn: Callable[[], object], fuzz: bool) -> None:
        self.options = options
        self.fn = fn
        self.fuzz = fuzz
        self.probe = options.probe
        self.result = OomTestResult(label=options.label_for(fn))
        self.start = time.monotonic()
        #: The last dry run's allocation records (``records[i]`` is allocation ``i``).
        self.records: list[AllocRecord] = []
        self.baseline_resources: dict[str, object] | None = None
        #: The fault-free results agreed across dry runs (the post-OOM check needs that).
        self.deterministic = True
        #: Wall time of the last dry run, in seconds (engines' cost models use it).
        self.run_seconds = 0.0
        self.jobs: list[Job] = []
        #: Why the schedule stops short (``max_iters=N``), or "".
        self.truncated = ""
        #: Wall time of the slowest dry run so far (the derived deadline's base).
        self.slowest_run = 0.0
        self.counted = False
        #: The deadline :meth:`run_limit` gave the last run.
        self.last_limit = 0.0

    # -- fault plans ---------------------------------------------------------------

    def fault_plan(
        self,
        mode: str = "count",
        index: int = -1,
        *,
        record_all: bool = False,
        cls: type[Injector] = Injector,
    ) -> Injector:
        """The hook for one run: ``count`` (fault-free) or an injection at ``index``."""
        opts = self.options
        return cls(
            mode=mode,  # type: ignore[arg-type]
            fail_at=index,
            record_all=record_all,
            stack_depth=opts.stack_depth,
            allow_alloc_after_oom=opts.allow_alloc_after_oom,
            alloc_succeeds_after_oom=opts.alloc_succeeds_after_oom,
            panic_on_alloc_after_oom=opts.panic_on_alloc_after_oom,
            target=opts.target,
        )

    def injection(self, job: Job) -> Injector:
        """The fault plan of ``job``'s injected run (retrying at step boundaries when due)."""
        inj = self.fault_plan(job.mode, job.index)
        inj.retry = self.retries(job.ordinal)
        return inj

    def retries(self, ordinal: int) -> bool:
        """Does the injected run of this ordinal retry and continue (``retry_failure``)?"""
        return self.deterministic and CheckPolicy.due(self.options.policy.retry_every, ordinal)

    # -- the phases ---------------------------------------------------------------------

    def steps(self) -> Steps:
        """The whole plan, replayed: the dry runs, then every scheduled injection."""
        yield from self.dry_runs()
        return (yield from self.replay())

    def dry_runs(self) -> Steps:
        """Count until two consecutive dry runs agree, then schedule the ``jobs``.

        Fills ``result`` (``total``, ``baseline``, ``sites``, ``dry_run_counts``),
        ``records``, ``baseline_resources``, ``deterministic``, ``run_seconds``,
        and announces the schedule's size to ``on_total``.
        """
        result = self.result
        label = result.label
        self.start = time.monotonic()
        last = -1
        dry: RunOutcome | None = None
        for _ in range(MAX_DRY_RUNS):
            began = time.monotonic()
            dry = yield self.fault_plan("count", record_all=True)
            # The last dry run is what a later run costs: the first ones also build what
            # later runs reuse (``oomfuzz.reuse``). The slowest bounds a run's deadline
            # (a run injected inside a build builds for real).
            self.run_seconds = time.monotonic() - began
            self.slowest_run = max(self.slowest_run, self.run_seconds)
            if dry.lost is not None:
                raise self._dry_run_lost(dry.lost)
            result.dry_run_counts.append(dry.injector.count)
            if dry.exc is not None:
                msg = (
                    f"OOM test {label!r}: the function raised in a dry run (no injection): "
                    f"{describe_exc(dry.exc)}\n{dry.exc_text}"
                )
                raise DryRunError(msg, result, dry.exc)
            if result.baseline is None and len(result.dry_run_counts) == 1:
                result.baseline = dry.value
            elif dry.value != result.baseline and "nondeterministic" not in " ".join(result.notes):
                result.notes.append("nondeterministic result across dry runs: post-OOM check off")
            if dry.injector.count == last:
                break
            last = dry.injector.count
        else:
            raise DryRunError(
                f"allocation count did not stabilize after {MAX_DRY_RUNS} dry-run iterations "
                f"(last count: {last})",
                result,
            )
        assert dry is not None
        result.total = dry.injector.selected
        self.records = dry.injector.records
        for rec in self.records:
            if rec.point < 0:
                continue  # not a point of the target: never injected, not in the table
            stat = result.site_stat(rec.site)
            stat.hits += 1
            stat.kinds.add(rec.kind)
            stat.absorbing = stat.absorbing or rec.absorbing
        self.baseline_resources = dry.resources
        self.deterministic = not result.notes
        target = self.options.target
        if target is not None:
            result.notes.append(
                f"target {target.describe()}: {result.total} of {dry.injector.count} "
                "allocations selected"
            )
        self.counted = True
        announced = self._schedule()
        if self.options.on_total is not None:
            self.options.on_total(announced)

    def run_limit(self) -> float | None:
        """The deadline (seconds) of the next run (see the module docstring)."""
        self.last_limit = self._limit()
        return self.last_limit

    def _limit(self) -> float:
        opts = self.options
        if opts.run_timeout is not None:
            return opts.run_timeout
        if self.counted:
            return max(MIN_RUN_TIMEOUT, RUN_TIMEOUT_FACTOR * self.slowest_run)
        if opts.max_duration is None:
            return DRY_RUN_TIMEOUT
        left = opts.max_duration - (time.monotonic() - self.start)
        return max(0.1, min(DRY_RUN_TIMEOUT, left))

    def _dry_run_lost(self, lost: Finding) -> DryRunError:
        """The setup error of a dry run that never finished (or was lost otherwise)."""
        label = self.result.label
        if lost.cls is not FailureClass.TIMEOUT:
            return DryRunError(
                f"OOM test {label!r}: the dry run was lost: {lost.detail}", self.result
            )
        budget = self.options.max_duration
        limit = self.last_limit
        why = (
            f" (--max-duration {budget:g}s)"
            if budget is not None and limit < DRY_RUN_TIMEOUT
            else ""
        )
        location = lost.detail.partition("; it was in ")[2] or lost.detail
        msg = (
            f"OOM test {label!r}: the dry run (no injection) did not finish within "
            f"{limit:.3g}s{why}; {FUEL_REMEDY}; it was in {location}"
        )
        return DryRunError(msg, self.result, RunTimeout(limit, location, ""))

    def _indices(self) -> list[int]:
        opts, total = self.options, self.result.total
        if self.fuzz:
            if total == 0:
                return []
            rng = random.Random(opts.seed)
            return [rng.randrange(total) for _ in range(opts.max_iters or 0)]
        idx: Sequence[int] = opts.indices if opts.indices is not None else range(total)
        if opts.select is not None:
            # A selection names allocations; a targeted plan's indices are points.
            points = {r.index: r.point for r in self.records if r.point >= 0}
            chosen = {points[i] for i in opts.select(self.records) if i in points}
            idx = [i for i in idx if i in chosen]
        idx = schedule_order(opts.schedule, idx, self.records, opts.sample, opts.seed, opts.covered)
        if opts.shard is not None:
            k, n = opts.shard
            if opts.shard_contiguous:
                idx = list(idx)[len(idx) * k // n : len(idx) * (k + 1) // n]
            else:
                idx = [i for i in idx if i % n == k]
        return list(idx)

    def _schedule(self) -> int:
        """Fill ``jobs`` (in ordinal order) and ``truncated``; return the announced count."""
        opts = self.options
        schedule = self._indices()
        self.jobs = []
        for index in schedule:
            for mode in opts.modes:
                if (
                    opts.max_iters is not None
                    and len(self.jobs) >= opts.max_iters
                    and not self.fuzz
                ):
                    self.truncated = f"max_iters={opts.max_iters}"
                    return len(schedule) * len(opts.modes)
                self.jobs.append(Job(len(self.jobs), index, mode))
        return len(schedule) * len(opts.modes)

    def replay(self) -> Steps:
        """Run every scheduled injection from scratch, in order; return the result."""
        opts, result = self.options, self.result
        for job in self.jobs:
            if self.time_up():
                result.stopped = f"max_duration={opts.max_duration}s"
                break
            # The outcome is passed straight in, so nothing here keeps it alive
            # while the checks re-run the code under test.
            it = yield from self.verdict(job, (yield self.injection(job)))
            self.record(it)
            self.notify(it, job.ordinal + 1)
            if it.failed and opts.fail_fast:
                result.stopped = "first failure"
                break
        else:
            if self.truncated:
                result.stopped = self.truncated
        return self.finish()

    # -- judging and recording ---------------------------------------------------------

    def verdict(self, job: Job, out: RunOutcome) -> Generator[Injector, RunOutcome, Iteration]:
        """Judge the injected run ``out`` of ``job`` with every due check (some re-run)."""
        policy = self.options.policy
        run = JudgedRun(
            job.index,
            job.mode,
            job.ordinal,
            out,
            policy,
            self.fault_plan,
            baseline=self.result.baseline,
            baseline_resources=self.baseline_resources,
            deterministic=self.deterministic,
            lost=out.lost,
            scheduled=len(self.jobs),
        )
        findings: list[Finding] = []
        for check in CHECKS:
            if not check.reruns and check.due(run):
                findings += excuse(check, policy, (yield from check.judge(run)))
        it = self._iteration(job, out, findings)
        # Drop the injected run before any check re-runs the code under test:
        # what it held (value, exception) must not keep its store alive meanwhile.
        del out
        run.outcome = None
        for check in CHECKS:
            if check.reruns and check.due(run):
                findings += excuse(check, policy, (yield from check.judge(run)))
        it.verdict = primary(it.findings)
        return it

    @staticmethod
    def _iteration(job: Job, out: RunOutcome, findings: list[Finding]) -> Iteration:
        inj = out.injector
        out.refs = []
        it = Iteration(
            index=job.index,
            mode=job.mode,
            verdict=FailureClass.HANDLED,
            findings=findings,
            allocations=inj.count,
            injected=inj.oom_raised or inj.first_injection,
            after_oom=inj.after_oom[:5],
        )
        exc = out.exc
        if exc is not None:
            it.exc_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
            it.exc_message = str(exc)
            it.exc_traceback = out.exc_text
        elif out.lost is not None and out.lost.cls is FailureClass.TIMEOUT:
            it.exc_type = f"{RunTimeout.__module__}.{RunTimeout.__qualname__}"
            it.exc_message = out.lost.detail
            it.exc_traceback = out.exc_text
        return it

    def record(self, it: Iteration) -> None:
        """Add a judged iteration to the result (in ordinal order) and its site's stats."""
        result = self.result
        result.iterations.append(it)
        if it.injected is not None:
            stat = result.site_stat(it.injected.site)
            stat.injected += 1
            stat.kinds.add(it.injected.kind)
            if it.failed:
                stat.failures += 1

    def notify(self, it: Iteration, done: int) -> None:
        """Tell ``on_iteration`` that ``it`` is the ``done``-th finished iteration."""
        if self.options.on_iteration is not None:
            self.options.on_iteration(it, done)

    def time_up(self) -> bool:
        limit = self.options.max_duration
        return limit is not None and time.monotonic() - self.start >= limit

    def finish(self, stopped: str | None = None) -> OomTestResult:
        """Close the result: why it stopped (when given) and the elapsed time."""
        if stopped is not None:
            self.result.stopped = stopped
        self.result.elapsed = time.monotonic() - self.start
        return self.result
