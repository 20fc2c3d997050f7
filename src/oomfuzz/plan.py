"""The sweep engine: Wasmtime's ``OomTest`` semantics, stricter checks.

``OomTest(...).test(fn)`` runs ``fn`` (no arguments; returns normally iff it
hit no OOM) in counting mode until two consecutive dry runs make the same
number of allocations (at most 10, else "allocation count did not stabilize
after 10 dry-run iterations (last count: N)"), then injects a failure at every
allocation index ``0..total`` in order, for each selected mode. ``fuzz`` picks
``max_iters`` indices uniformly from ``[0, total)`` with ``random.Random(seed)``
(and requires ``max_iters``, as Wasmtime does). ``test_async``/``fuzz_async``
take a function returning an awaitable.

Invariants:
- The algorithm is written once, as a generator that yields fault plans
  (:class:`~oomfuzz.inject.Injector`) and receives :class:`RunOutcome`;
  the sync and async drivers only execute plans, so both behave identically.
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
- ``shard=(k, n)`` keeps the indices ``i % n == k`` (interleaved), or with
  ``shard_contiguous`` the k-th of n contiguous runs of the schedule;
  ``sample=K`` first keeps K indices drawn with ``random.Random(seed)`` when
  there are more (sorted; the same seed and count give the same sample), so
  the shards of a sampled sweep partition the same sample.
- With ``raise_on_failure`` (the default, like Wasmtime) the first failing
  iteration ends the sweep and raises :class:`OomTestFailure`; otherwise
  every iteration runs and the result lists all failures.
- ``engine`` picks how injection runs execute: ``replay`` (the default)
  re-runs ``fn`` from scratch per injection; ``fork`` runs it once fault-free
  and forks a child at each scheduled allocation (:mod:`oomfuzz.forkengine`);
  ``auto`` forks when that is possible and should be cheaper (a cost model on
  the dry runs' time). Both engines share the dry-run phase,
  the schedule, the ordinals and the per-iteration checks (the sub-plans
  ``_dry_runs``/``_after_checks``), so an injection index gets the same
  classification from either. Where forking is unavailable (not POSIX, other
  non-daemon threads, async functions, or ``fn``/its object/the probe has
  ``oomfuzz_fork = False``) both ``fork`` and ``auto`` fall back to replay;
  ``fork`` then says so in ``notes``. ``OomTestResult.engine`` is the engine
  that ran.
"""

from __future__ import annotations

import gc
import os
import random
import time
import traceback
import tracemalloc
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from oomfuzz.checks import (
    CheckPolicy,
    FailureClass,
    Finding,
    _chain,
    classify_outcome,
    compare_resources,
    describe_exc,
    live_refs,
    primary,
)
from oomfuzz.inject import AllocRecord, InjectMode, Injector, Site

__all__ = [
    "DryRunError",
    "Iteration",
    "OomTest",
    "OomTestFailure",
    "OomTestResult",
    "Probe",
    "RunOutcome",
    "SiteStat",
]

MAX_DRY_RUNS = 10
SWEEP_MODES = ("transient", "persistent")
ENGINES = ("replay", "fork", "auto")


class Probe(Protocol):
    """Optional view into the code under test, used by the cleanup and leak checks."""

    def before_run(self) -> None: ...

    def resources(self) -> dict[str, object]:
        """Counters (pool metrics, store counts...) that must match the fault-free baseline."""
        ...

    def refs(self) -> list[tuple[str, weakref.ref[Any]]]:
        """Weak references to objects (stores, instances) the last run created."""
        ...


@dataclass(slots=True)
class RunOutcome:
    """What one execution of ``fn`` did."""

    injector: Injector
    value: object = None
    exc: BaseException | None = None
    exc_text: str = ""
    resources: dict[str, object] | None = None
    refs: list[tuple[str, weakref.ref[Any]]] = field(default_factory=list)


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


def _scrub(exc: BaseException) -> str:
    """Format ``exc`` and clear its frames (their locals could keep stores alive)."""
    text = "".join(traceback.format_exception(exc))
    for e in _chain(exc):
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)
            # A cleared frame still references its (closure) function, which can
            # reach a store: drop the traceback itself, it is formatted above.
            e.__traceback__ = None
    return text


def _finish(out: RunOutcome, probe: Probe | None) -> RunOutcome:
    if out.exc is not None:
        out.exc_text = _scrub(out.exc)
    if probe is not None:
        out.resources = probe.resources()
        out.refs = probe.refs()
    return out


def execute(fn: Callable[[], object], inj: Injector, probe: Probe | None = None) -> RunOutcome:
    """Run ``fn`` once under ``inj``; never raises except ``KeyboardInterrupt``."""
    out = RunOutcome(inj)
    if probe is not None:
        probe.before_run()
    try:
        with inj.installed():
            out.value = fn()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - the code under test may raise anything; it is classified, not hidden
        out.exc = e
    return _finish(out, probe)


async def execute_async(
    fn: Callable[[], Awaitable[object]], inj: Injector, probe: Probe | None = None
) -> RunOutcome:
    """Async twin of :func:`execute`; the hook is installed in the awaiting task's context."""
    out = RunOutcome(inj)
    if probe is not None:
        probe.before_run()
    try:
        with inj.installed():
            out.value = await fn()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - classified like in execute(); KeyboardInterrupt stops
        out.exc = e
    return _finish(out, probe)


Plan = Generator[Injector, RunOutcome, OomTestResult]


def drive_plan(
    plan: Generator[Injector, RunOutcome, Any], fn: Callable[[], object], probe: Probe | None
) -> Any:
    """Execute a (sub-)plan synchronously and return its value."""
    try:
        inj = next(plan)
        while True:
            inj = plan.send(execute(fn, inj, probe))
    except StopIteration as stop:
        return stop.value


class OomTest:
    """Builder for an OOM test (Wasmtime's ``OomTest`` knobs, plus oomfuzz's)."""

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
        shard: tuple[int, int] | None = None,
        shard_contiguous: bool = False,
        sample: int | None = None,
        stack_depth: int = 6,
        on_iteration: Callable[[Iteration, int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
        engine: str = "replay",
        fork_jobs: int | None = None,
        fork_timeout: float | None = None,
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
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if fork_jobs is not None and fork_jobs < 1:
            raise ValueError("fork_jobs must be >= 1")
        if fork_timeout is not None and fork_timeout <= 0:
            raise ValueError("fork_timeout must be > 0")
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
        self.probe = probe
        self.label = label
        self.indices = None if indices is None else sorted(set(indices))
        self.shard = shard
        self.shard_contiguous = shard_contiguous
        if sample is not None and sample < 0:
            raise ValueError("sample must be >= 0")
        self.sample = sample
        self.stack_depth = stack_depth
        self.on_iteration = on_iteration
        self.on_total = on_total
        self.engine = engine
        self.fork_jobs = fork_jobs
        self.fork_timeout = fork_timeout

    # -- entry points ---------------------------------------------------------

    def test(self, fn: Callable[[], object]) -> OomTestResult:
        return self._run_sync(fn, fuzz=False)

    def fuzz(self, fn: Callable[[], object]) -> OomTestResult:
        self._require_iters()
        return self._run_sync(fn, fuzz=True)

    async def test_async(self, fn: Callable[[], Awaitable[object]]) -> OomTestResult:
        return await self._drive_async(fn, self._plan(fn, fuzz=False))

    async def fuzz_async(self, fn: Callable[[], Awaitable[object]]) -> OomTestResult:
        self._require_iters()
        return await self._drive_async(fn, self._plan(fn, fuzz=True))

    def _require_iters(self) -> None:
        if self.max_iters is None:
            raise ValueError("OomTest.fuzz requires max_iters to be set")

    # -- drivers --------------------------------------------------------------

    def _run_sync(self, fn: Callable[[], object], fuzz: bool) -> OomTestResult:
        if self.engine != "replay":
            from oomfuzz.forkengine import ForkSweep, unavailable_reason

            reason = unavailable_reason(self, fn)
            if reason is None:
                return self._conclude(ForkSweep(self, fn, fuzz).run())
            result: OomTestResult = drive_plan(self._plan(fn, fuzz), fn, self.probe)
            if self.engine == "fork":
                result.notes.append(f"fork engine unavailable ({reason}); used replay")
            return self._conclude(result)
        return self._drive_sync(fn, self._plan(fn, fuzz))

    def _drive_sync(self, fn: Callable[[], object], plan: Plan) -> OomTestResult:
        result: OomTestResult = drive_plan(plan, fn, self.probe)
        return self._conclude(result)

    async def _drive_async(self, fn: Callable[[], Awaitable[object]], plan: Plan) -> OomTestResult:
        try:
            inj = next(plan)
            while True:
                inj = plan.send(await execute_async(fn, inj, self.probe))
        except StopIteration as stop:
            result: OomTestResult = stop.value
        if self.engine == "fork":
            result.notes.append("fork engine unavailable (async function); used replay")
        return self._conclude(result)

    def _conclude(self, result: OomTestResult) -> OomTestResult:
        failures = result.failures
        if failures and self.raise_on_failure:
            first = failures[0]
            raise OomTestFailure(format_iteration(result.label, first), result, first)
        return result

    # -- the algorithm ----------------------------------------------------------

    def _injector(
        self,
        mode: InjectMode,
        index: int = -1,
        record_all: bool = False,
        cls: type[Injector] = Injector,
    ) -> Injector:
        return cls(
            mode=mode,
            fail_at=index,
            record_all=record_all,
            stack_depth=self.stack_depth,
            allow_alloc_after_oom=self.allow_alloc_after_oom,
            alloc_succeeds_after_oom=self.alloc_succeeds_after_oom,
            panic_on_alloc_after_oom=self.panic_on_alloc_after_oom,
        )

    def _schedule(self, total: int, fuzz: bool) -> list[int]:
        if fuzz:
            if total == 0:
                return []
            rng = random.Random(self.seed)
            return [rng.randrange(total) for _ in range(self.max_iters or 0)]
        idx: Sequence[int] = self.indices if self.indices is not None else range(total)
        if self.sample is not None and len(idx) > self.sample:
            idx = sorted(random.Random(self.seed).sample(list(idx), self.sample))
        if self.shard is not None:
            k, n = self.shard
            if self.shard_contiguous:
                idx = list(idx)[len(idx) * k // n : len(idx) * (k + 1) // n]
            else:
                idx = [i for i in idx if i % n == k]
        return list(idx)

    def _label(self, fn: object) -> str:
        return self.label or getattr(fn, "__qualname__", None) or repr(fn)

    def _dry_runs(
        self, result: OomTestResult
    ) -> Generator[Injector, RunOutcome, tuple[dict[str, object] | None, list[AllocRecord]]]:
        """Count until two consecutive dry runs agree; fill ``total``, ``baseline``, ``sites``.

        Returns the last dry run's resources and its allocation records
        (``records[i]`` is allocation ``i``).
        """
        label = result.label
        last = -1
        dry: RunOutcome | None = None
        for _ in range(MAX_DRY_RUNS):
            dry = yield self._injector("count", record_all=True)
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
        result.total = dry.injector.count
        records = dry.injector.records
        for rec in records:
            stat = result.site_stat(rec.site)
            stat.hits += 1
            stat.kinds.add(rec.kind)
            stat.absorbing = stat.absorbing or rec.absorbing
        return dry.resources, records

    def _jobs(self, total: int, fuzz: bool) -> tuple[list[tuple[int, InjectMode]], int, str]:
        """The sweep's (index, mode) pairs in ordinal order, the ``on_total`` count, a stop note."""
        schedule = self._schedule(total, fuzz)
        jobs: list[tuple[int, InjectMode]] = []
        stopped = ""
        for index in schedule:
            for mode in self.modes:
                if self.max_iters is not None and len(jobs) >= self.max_iters and not fuzz:
                    stopped = f"max_iters={self.max_iters}"
                    break
                jobs.append((index, mode))
            if stopped:
                break
        return jobs, len(schedule) * len(self.modes), stopped

    def _after_checks(
        self, index: int, mode: InjectMode, ordinal: int, baseline: object, post_ok: bool
    ) -> Generator[Injector, RunOutcome, list[Finding]]:
        """The sampled checks that follow an injection run: post-OOM rerun, tracemalloc."""
        extra: list[Finding] = []
        if post_ok and CheckPolicy.due(self.policy.post_oom_every, ordinal):
            rerun = yield self._injector("count")
            if rerun.exc is not None:
                extra.append(
                    Finding(
                        FailureClass.POST_OOM_FAILURE,
                        f"fault-free rerun raised {describe_exc(rerun.exc)}",
                    )
                )
            elif rerun.value != baseline:
                extra.append(
                    Finding(
                        FailureClass.POST_OOM_FAILURE,
                        f"fault-free rerun gave {_short(rerun.value)}, "
                        f"first fault-free run gave {_short(baseline)}",
                    )
                )
            del rerun
        if CheckPolicy.due(self.policy.tracemalloc_every, ordinal):
            finding = yield from self._tracemalloc_check(mode, index)
            if finding is not None:
                extra.append(finding)
        return extra

    def _plan(self, fn: object, fuzz: bool) -> Plan:
        result = OomTestResult(label=self._label(fn))
        start = time.monotonic()
        # 1. Dry runs until two consecutive counts agree.
        baseline_resources, _records = yield from self._dry_runs(result)
        del _records
        # 2. The injection schedule.
        return (yield from self._sweep(result, start, baseline_resources, fuzz))

    def _sweep(
        self,
        result: OomTestResult,
        start: float,
        baseline_resources: dict[str, object] | None,
        fuzz: bool,
        announce: bool = True,
    ) -> Plan:
        """Replay every scheduled injection after the dry runs filled ``result``."""
        post_ok = not result.notes
        jobs, announced, truncated = self._jobs(result.total, fuzz)
        if announce and self.on_total is not None:
            self.on_total(announced)
        for ordinal, (index, mode) in enumerate(jobs):
            if self.max_duration is not None and time.monotonic() - start >= self.max_duration:
                result.stopped = f"max_duration={self.max_duration}s"
                break
            out = yield self._injector(mode, index)
            it = self._iteration(index, mode, out, baseline_resources, ordinal)
            del out
            extra = yield from self._after_checks(index, mode, ordinal, result.baseline, post_ok)
            it.findings.extend(extra)
            self._fix_verdict(it)
            self._record(result, it)
            if self.on_iteration is not None:
                self.on_iteration(it, ordinal + 1)
            if it.failed and self.fail_fast:
                result.stopped = "first failure"
                break
        else:
            if truncated:
                result.stopped = truncated
        result.elapsed = time.monotonic() - start
        return result

    def _baseline_findings(
        self, out: RunOutcome, baseline: dict[str, object] | None
    ) -> list[Finding]:
        found: list[Finding] = []
        if self.policy.cleanup and baseline is not None and out.resources is not None:
            f = compare_resources(baseline, out.resources)
            if f is not None:
                found.append(f)
        return found

    def _iteration(
        self,
        index: int,
        mode: str,
        out: RunOutcome,
        baseline: dict[str, object] | None,
        ordinal: int,
    ) -> Iteration:
        inj = out.injector
        findings = classify_outcome(
            out.exc, inj, allow_missed_oom_errors=self.allow_missed_oom_errors
        )
        findings.extend(self._baseline_findings(out, baseline))
        if out.refs and CheckPolicy.due(self.policy.leak_every, ordinal):
            alive = live_refs(out.refs)
            if alive:
                findings.append(
                    Finding(
                        FailureClass.LEAK,
                        f"still alive after gc.collect(): {', '.join(alive)}",
                    )
                )
        out.refs = []
        exc = out.exc
        it = Iteration(
            index=index,
            mode=mode,
            verdict=FailureClass.HANDLED,
            findings=findings,
            allocations=inj.count,
            injected=inj.oom_raised or inj.first_injection,
            after_oom=inj.after_oom[:5],
        )
        if exc is not None:
            it.exc_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
            it.exc_message = str(exc)
            it.exc_traceback = out.exc_text
        return it

    @staticmethod
    def _fix_verdict(it: Iteration) -> None:
        it.verdict = primary(it.findings)

    @staticmethod
    def _record(result: OomTestResult, it: Iteration) -> None:
        result.iterations.append(it)
        if it.injected is not None:
            stat = result.site_stat(it.injected.site)
            stat.injected += 1
            stat.kinds.add(it.injected.kind)
            if it.failed:
                stat.failures += 1

    def _tracemalloc_check(
        self, mode: InjectMode, index: int
    ) -> Generator[Injector, RunOutcome, Finding | None]:
        """Re-run the injection: a warm-up, then ``tracemalloc_repeats`` measured runs.

        A leak only if every measured run retained more than the tolerance
        (see :mod:`oomfuzz.checks`): one-off growth (a cache filling) is not.
        """
        pol = self.policy
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start(1)
        filters = [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, os.path.join(os.path.dirname(__file__), "*")),
            tracemalloc.Filter(False, "<frozen *>"),
            tracemalloc.Filter(False, "*/linecache.py"),
            tracemalloc.Filter(False, "*/traceback.py"),
        ]

        def snapshot() -> tracemalloc.Snapshot:
            gc.collect()
            return tracemalloc.take_snapshot().filter_traces(filters)

        growths: list[int] = []
        try:
            out = yield self._injector(mode, index)  # warm-up: caches fill here, not measured
            del out
            first = prev = snapshot()
            for _ in range(pol.tracemalloc_repeats):
                out = yield self._injector(mode, index)
                del out
                snap = snapshot()
                growths.append(sum(s.size_diff for s in snap.compare_to(prev, "filename")))
                prev = snap
        finally:
            if started:
                tracemalloc.stop()
        if min(growths) <= pol.tracemalloc_tolerance:
            return None
        stats = prev.compare_to(first, "lineno")
        top = max(stats, key=lambda s: s.size_diff)
        frame = top.traceback[0]
        return Finding(
            FailureClass.LEAK,
            f"tracemalloc: every one of {len(growths)} repeated runs retained memory "
            f"(+{', +'.join(map(str, growths))} B; tolerance {pol.tracemalloc_tolerance} B/run, "
            f"after a warm-up run); top growth +{top.size_diff} B at "
            f"{frame.filename}:{frame.lineno}",
        )


def _short(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
