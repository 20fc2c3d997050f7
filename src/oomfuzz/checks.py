"""What every OOM-injection iteration must satisfy, and how an iteration is classified.

Classes (``FailureClass``), in the order a report ranks them:

- ``handled``: the injected ``OutOfMemory`` reached the caller as itself, or
  only absorbing sites were refused (their -1 is correct wasm behaviour, so a
  normal return, a changed result or a wasm trap afterwards are all fine).
- ``not_reached``: the run made fewer allocations than the dry run, so
  nothing was injected and it returned normally (a pass, as in Wasmtime).
- ``allowed``: a failure that ``allow_missed_oom_errors`` turned into a pass;
  kept visible in reports.
- ``missed_oom``: normal return although a non-absorbing allocation failed.
- ``wrong_error``: an injection happened and something other than a bare
  ``OutOfMemory`` came out (a generic ``WasmtimeError``, a trap, an
  ``OutOfMemory`` wrapped in another exception, an ``OutOfMemory`` escaping an
  absorbing site, a wrong result after a non-absorbing refusal, a Python
  error). oomfuzz is stricter than Wasmtime's ``is::<OutOfMemory>()``, which
  sees through context: Python users write ``except OutOfMemory``.
- ``spurious_error``: an error although nothing was injected.
- ``alloc_after_oom``: strict mode saw an allocation after the injected OOM.
- ``not_atomic``: an operation that failed for lack of memory (``OutOfMemory``,
  a limiter refusal, -1 from ``memory.grow``/``table.grow``) left observable
  state changed (:mod:`oomfuzz.runstate` records the operations and their
  snapshots: the runtime's grows, WAST state commands, host API calls,
  ``oomfuzz.operation`` blocks).
- ``cleanup_not_restored``: a resource snapshot (pooling metrics, store
  counts, pool slot occupancy and bookkeeping) taken after the run differs
  from the fault-free baseline.
- ``leak``: an object of the run (a tracked store/instance, an object given to
  ``oomfuzz.track``, an internal vm object the run created) is alive after a
  collection, reported with the chain of referrers keeping it alive; or
  tracemalloc shows retained growth across repeated runs of the same injection
  beyond the tolerance.
- ``post_oom_failure``: the fault-free rerun after the injection fails or
  gives a different result than the first fault-free run. The rerun uses a
  new store on the injected run's engine and compiled modules when the
  scenario offers them (``Injector.reuse``), so a damaged engine or module
  shows up too.
- ``guest_abort``: (programs) only the guest's side was refused and the
  guest trapped (``abort()``), or exited non-zero with nothing on stderr.
- ``guest_corrupt``: (programs) only the guest's side was refused and the
  guest exited 0 with output different from the fault-free run.
  A program that reports the failure (non-zero exit with a message) or
  absorbs it (the same result) is ``handled`` (:mod:`oomfuzz.guest`); a
  scenario accepts guest verdicts with ``accept=`` (they become ``allowed``).
- ``retry_failure``: retry and continue. When the injected run's
  ``OutOfMemory`` leaves a scenario step, the step is retried fault-free on
  the *same* store, linker and engine and the script goes on (the run still
  ends with that ``OutOfMemory``, so the other checks judge it as before).
  The continuation must finish and give exactly the fault-free results;
  where the refusal hit while guest code ran (its side effects before the
  OOM are legitimately visible), only an error that is not a wasm-level
  outcome counts.
- ``crashed``: (fork engine) the forked child running the injection died
  without sending a verdict: killed by a signal, ``os._exit`` in the code
  under test, or an error in the child's own bookkeeping.
- ``timeout``: (fork engine) the forked child did not report within its
  deadline and was killed.
- ``host_memory_error``: (real-exhaustion sweeps, :mod:`oomfuzz.exhaust`) a
  bare ``MemoryError`` came out of the runtime under an address-space limit
  (a real allocation the ``try_alloc`` model does not map to ``OutOfMemory``).
- ``host_error``: (real-exhaustion sweeps) another bare Python error
  (``RecursionError``, ``struct.error``...) came out of the runtime under a limit.

``crashed`` and ``timeout`` rank first: they mean no verdict could be
computed at all, and ``allow_missed_oom_errors`` never excuses them.

The tracemalloc leak check (``CheckPolicy.tracemalloc_every``) re-runs the
same injection: one warm-up run whose growth is ignored (caches, interned
strings and lazily built tables fill there), then ``tracemalloc_repeats``
(default 3) measured runs, each followed by ``gc.collect()`` and a snapshot.
Growth is the change of traced memory between consecutive snapshots in the
code under test: outside the harness's own files, the standard library and
installed third-party packages (wasmrt counts wherever it is installed), whose
threads (a Dask worker's monitor) allocate while a run is measured. It is a
``leak`` only if *every* measured run grew by more than
``tracemalloc_tolerance`` bytes (default 4096 B per run): a cache filling or
an allocator's free list settling grows once, then stops; a real leak (a
module-level list appended to on every run) grows on every one.

The check protocol (:class:`Check`): a check is one class registered with
:func:`register`, holding its failure class (``failure``), the
:class:`CheckPolicy` field that switches or samples it (``knob``; ``None``:
every run), the policy field that excuses its findings (``excused_by``:
``allow_missed_oom_errors`` turns them into ``allowed``) and how it judges
one injection run (:meth:`Check.judge`, given a :class:`JudgedRun`). A check
that only looks at the run subclasses :class:`RunCheck` and implements
``inspect``; a check that needs more runs of the code under test (the
post-OOM rerun, the tracemalloc repeats) subclasses :class:`RerunCheck` and
yields their fault plans from ``judge``, like the sweep plan does. The sweep
plan (:mod:`oomfuzz.plan`) runs ``CHECKS`` in registration order for every
injection, in both engines; adding a check is one registered class here (and
its ``FailureClass`` member if the class is new).

Invariants:
- Classification is a pure function of the run's outcome, its injector and
  the policy; the checks never touch the code under test except through the
  fault plans a ``RerunCheck`` yields.
- Run checks (``RunCheck``) judge first, then re-run checks (each group in
  registration order); the plan drops the injected run's outcome
  (``JudgedRun.outcome``) before the re-runs, so what it held cannot keep a
  store alive while the next run executes.
- A run that gave no verdict (``JudgedRun.lost``: an engine lost it, e.g. a
  forked child died or passed its deadline) is judged only by the checks
  with ``judges_lost`` (``crashed``, ``timeout``).
- An iteration may have several classes; ``primary`` is the first failure
  class in ``FAILURE_ORDER``, which is the registration order of ``CHECKS``.
"""

from __future__ import annotations

import enum
import gc
import os
import sys
import sysconfig
import threading
import time
import tracemalloc
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from oomfuzz.guest import judge, program_result
from oomfuzz.inject import AllocationAfterOom, Injector
from oomfuzz.runstate import RunState, reachable_from, referrer_chain
from wasmrt.errors import OutOfMemory
from wasmrt.trap import Trap

__all__ = [
    "CHECKS",
    "Check",
    "CheckPolicy",
    "Checking",
    "ExpectationFailed",
    "FailureClass",
    "Finding",
    "JudgedRun",
    "RerunCheck",
    "RunCheck",
    "RunOutcome",
    "classify_outcome",
    "compare_resources",
    "describe_exc",
    "exception_chain",
    "excuse",
    "judge_lost",
    "live_refs",
    "primary",
    "register",
]


class FailureClass(enum.StrEnum):
    HANDLED = "handled"
    NOT_REACHED = "not_reached"
    ALLOWED = "allowed"
    MISSED_OOM = "missed_oom"
    WRONG_ERROR = "wrong_error"
    SPURIOUS_ERROR = "spurious_error"
    ALLOC_AFTER_OOM = "alloc_after_oom"
    NOT_ATOMIC = "not_atomic"
    CLEANUP_NOT_RESTORED = "cleanup_not_restored"
    LEAK = "leak"
    POST_OOM_FAILURE = "post_oom_failure"
    RETRY_FAILURE = "retry_failure"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    GUEST_ABORT = "guest_abort"
    GUEST_CORRUPT = "guest_corrupt"
    HOST_MEMORY_ERROR = "host_memory_error"
    HOST_ERROR = "host_error"

    def __str__(self) -> str:
        return self.value

    @property
    def is_failure(self) -> bool:
        return self not in PASS_CLASSES


PASS_CLASSES = frozenset({FailureClass.HANDLED, FailureClass.NOT_REACHED, FailureClass.ALLOWED})


class ExpectationFailed(AssertionError):
    """A scenario command's own expectation failed (assert_return mismatch, missing trap...).

    A wasm-level outcome: after an absorbed refusal it is legitimate, after a
    non-absorbing refusal it means the OOM was turned into a wrong result.
    """


#: Outcomes that are legitimate wasm behaviour once an absorbing site refused.
WASM_LEVEL = (Trap, ExpectationFailed)


@dataclass(frozen=True, slots=True)
class Finding:
    cls: FailureClass
    detail: str


@dataclass(slots=True)
class CheckPolicy:
    """Which checks run, and how often (every k-th iteration; 0 disables).

    ``atomicity``: the ``not_atomic`` check. ``leak_every``: weakref liveness
    (a collection only when a ref is still alive). ``post_oom_every``: a fault-free rerun compared with the
    baseline. ``tracemalloc_every``: rerun the same injection once as a
    warm-up (ignored), then ``tracemalloc_repeats`` times; a leak only if
    every measured run retained more than ``tracemalloc_tolerance`` bytes
    (see the module docstring). ``tracemalloc_sample``: the cheap, default-on
    form of that check, on the last ``K`` scheduled injections of a sweep
    (evenly spread when ``K`` > 1) while ``tracemalloc_every`` is 0.
    ``retry_every``: retry the failed step on the
    same store and continue (``retry_failure``). ``allow_missed_oom_errors``: the findings of
    the checks it excuses (``missed_oom``, ``wrong_error``,
    ``spurious_error``) become ``allowed`` (Wasmtime's knob of that name).
    """

    cleanup: bool = True
    atomicity: bool = True
    leak_every: int = 1
    post_oom_every: int = 1
    tracemalloc_every: int = 0
    tracemalloc_repeats: int = 3
    tracemalloc_tolerance: int = 4096
    tracemalloc_sample: int = 1
    retry_every: int = 1
    allow_missed_oom_errors: bool = False
    #: Guest verdicts a program scenario accepts (directive ``accept=``).
    accept_guest_abort: bool = False
    accept_guest_corrupt: bool = False
    #: Non-zero exit codes a program may end with, silently, after a refusal.
    accept_exit: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.tracemalloc_repeats < 1:
            raise ValueError("tracemalloc_repeats must be >= 1")
        if self.tracemalloc_tolerance < 0:
            raise ValueError("tracemalloc_tolerance must be >= 0")

    @staticmethod
    def due(every: int, ordinal: int) -> bool:
        return every > 0 and ordinal % every == 0


# -- what the checks judge --------------------------------------------------------------


@dataclass(slots=True)
class RunOutcome:
    """What one execution of the code under test did.

    ``lost`` is set by an engine that got no verdict from the run (a forked
    child that died or passed its deadline); the other fields are then empty.
    """

    injector: Injector
    value: object = None
    exc: BaseException | None = None
    exc_text: str = ""
    resources: dict[str, object] | None = None
    refs: list[tuple[str, weakref.ref[Any]]] = field(default_factory=list)
    lost: Finding | None = None
    #: The run's recording (:class:`oomfuzz.runstate.RunState`) until the run is finished.
    state: RunState | None = None
    #: Operations that failed and left state changed (``not_atomic``).
    violations: list[str] = field(default_factory=list)
    #: Objects declared to outlive the run: what they keep alive is not a leak.
    long_lived: list[weakref.ref[Any]] = field(default_factory=list)


@dataclass(slots=True)
class JudgedRun:
    """One injection run as the checks see it, with what they compare it against.

    ``fault_plan(mode, index)`` makes the fault plan of a re-run (``"count"``:
    fault-free); a :class:`RerunCheck` yields such plans and receives their
    :class:`RunOutcome`.
    """

    index: int
    mode: str
    ordinal: int
    outcome: RunOutcome | None
    policy: CheckPolicy
    fault_plan: Callable[[str, int], Injector]
    baseline: object = None
    baseline_resources: dict[str, object] | None = None
    deterministic: bool = True
    lost: Finding | None = None
    #: How many injections the sweep scheduled (``ordinal`` counts within them).
    scheduled: int = 0

    @property
    def injector(self) -> Injector:
        assert self.outcome is not None, "the injected run's outcome was already dropped"
        return self.outcome.injector

    @property
    def exc(self) -> BaseException | None:
        return None if self.outcome is None else self.outcome.exc


#: A check's judgement: yields fault plans for extra runs, returns its findings.
Checking = Generator[Injector, RunOutcome, list[Finding]]


class Check(Protocol):
    """One check: its failure class, its policy knob, how it judges one run."""

    failure: ClassVar[FailureClass]
    knob: ClassVar[str | None]
    excused_by: ClassVar[str | None]
    reruns: ClassVar[bool]
    judges_lost: ClassVar[bool]

    def due(self, run: JudgedRun) -> bool: ...

    def judge(self, run: JudgedRun) -> Checking: ...


class RunCheck:
    """Base of the checks that judge the injected run alone (no extra runs)."""

    failure: ClassVar[FailureClass]
    #: The ``CheckPolicy`` field switching (bool) or sampling (every k-th run) this check.
    knob: ClassVar[str | None] = None
    #: The ``CheckPolicy`` field that turns this check's findings into ``allowed``.
    excused_by: ClassVar[str | None] = None
    reruns: ClassVar[bool] = False
    judges_lost: ClassVar[bool] = False

    def due(self, run: JudgedRun) -> bool:
        if (run.lost is not None) != self.judges_lost:
            return False
        if self.knob is None:
            return True
        value = getattr(run.policy, self.knob)
        if isinstance(value, bool):
            return value
        return CheckPolicy.due(int(value), run.ordinal)

    def judge(self, run: JudgedRun) -> Checking:
        yield from ()
        return self.inspect(run)

    def inspect(self, run: JudgedRun) -> list[Finding]:
        raise NotImplementedError


class RerunCheck(RunCheck):
    """Base of the checks that run the code under test again (``judge`` yields fault plans)."""

    reruns: ClassVar[bool] = True

    def judge(self, run: JudgedRun) -> Checking:
        raise NotImplementedError


#: Every check, in the order they judge a run (which is also the verdict ranking).
CHECKS: list[Check] = []


_C = TypeVar("_C", bound=type[RunCheck])


def register(cls: _C) -> _C:
    """Class decorator: add one instance of the check to ``CHECKS``."""
    CHECKS.append(cls())
    return cls


# -- helpers ------------------------------------------------------------------------------


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc``, then its causes/contexts outward (each once)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not s for s in seen):
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def describe_exc(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


def _where(inj: Injector) -> str:
    first = inj.oom_raised or inj.first_injection
    return f" (injected {first.describe()})" if first else ""


def _short(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare_resources(baseline: Mapping[str, object], now: Mapping[str, object]) -> Finding | None:
    """A ``cleanup_not_restored`` finding if any counter differs from the baseline."""
    diffs = []
    for key in sorted(set(baseline) | set(now)):
        b, n = baseline.get(key), now.get(key)
        if b != n:
            diffs.append(f"{key}: baseline {b!r}, now {n!r}")
    if not diffs:
        return None
    return Finding(FailureClass.CLEANUP_NOT_RESTORED, "; ".join(diffs))


#: Extra full collections before an object counts as leaked (a multi-threaded host, such
#: as a Dask worker, may be collecting on another thread when the check collects).
FULL_COLLECTION_RETRIES = 4


def live_refs(refs: Sequence[tuple[str, weakref.ref[object]]], full: bool = True) -> list[str]:
    """Labels of the objects still alive after (only if needed) a collection.

    The run's internal objects often die in reference cycles (an instance and its
    function space), so a collection is usually needed: the young generations first
    (cheap, and where a run's objects mostly are), a full collection only if some
    object survives those (and ``full``).
    """
    for generation in (None, 1, 2) if full else (None, 1):
        if generation is not None:
            gc.collect(generation)
        if not any(r() is not None for _, r in refs):
            return []
    return [label for label, r in refs if r() is not None]


def _outlive_retries(
    alive: list[tuple[str, weakref.ref[Any]]],
) -> list[tuple[str, weakref.ref[Any]]]:
    """The unexcused survivors that outlive ``FULL_COLLECTION_RETRIES`` more collections.

    ``gc.collect()`` does nothing while another thread's collection is running (its
    finalizers may have let this thread in; a Dask worker has threads of its own):
    let that one finish (1, 4, 16... ms: paid only when a leak is about to be reported).
    """
    for attempt in range(FULL_COLLECTION_RETRIES if alive else 0):
        time.sleep(0.001 * 4**attempt)
        gc.collect()
        alive = [(label, r) for label, r in alive if r() is not None]
        if not alive:
            break
    return alive


def _foreign_stores(refs: Sequence[tuple[str, weakref.ref[Any]]]) -> list[weakref.ref[Any]]:
    """Weak references to the live stores that survivors belong to but the run did not create."""
    own = {id(r()) for label, r in refs if label == "StoreCore" and r() is not None}
    out: list[weakref.ref[Any]] = []
    for _, r in refs:
        store = getattr(r(), "store", None)
        if store is not None and id(store) not in own:
            try:
                out.append(weakref.ref(store))
            except TypeError:
                continue
    return out


# -- the checks (registration order = judging order = verdict ranking) --------------------


@register
class Crashed(RunCheck):
    """The engine lost the run: it died without a verdict (a forked child killed by a
    signal, ``os._exit`` in the code under test, or an error in the child's own
    bookkeeping). Ranked first: no verdict could be computed at all, and
    ``allow_missed_oom_errors`` never excuses it."""

    failure = FailureClass.CRASHED
    judges_lost = True

    def inspect(self, run: JudgedRun) -> list[Finding]:
        return [run.lost] if run.lost is not None and run.lost.cls is self.failure else []


@register
class TimedOut(Crashed):
    """The engine stopped the run at its deadline (a forked child killed after
    ``fork_timeout``)."""

    failure = FailureClass.TIMEOUT


class _Outcome(RunCheck):
    """Base of the checks that classify how the injected run ended (exactly one fires,
    unless strict mode's ``AllocationAfterOom`` ended it)."""

    def inspect(self, run: JudgedRun) -> list[Finding]:
        exc, inj = run.exc, run.injector
        if isinstance(exc, AllocationAfterOom):
            return []
        detail = self.classify(exc, inj, bool(inj.injected), inj.injected_non_absorbing)
        return [] if detail is None else [Finding(self.failure, detail)]

    def classify(
        self, exc: BaseException | None, inj: Injector, injected: bool, non_absorbing: bool
    ) -> str | None:
        raise NotImplementedError


@register
class Handled(_Outcome):
    """The injected ``OutOfMemory`` reached the caller as itself, or only absorbing
    sites were refused (their -1 is correct wasm behaviour, so a normal return, a
    changed result or a wasm trap afterwards are all fine)."""

    failure = FailureClass.HANDLED

    def inspect(self, run: JudgedRun) -> list[Finding]:
        # A program run the guest checks judge gets their (more telling) verdict.
        return [] if guest_judged(run) else super().inspect(run)

    def classify(
        self, exc: BaseException | None, inj: Injector, injected: bool, non_absorbing: bool
    ) -> str | None:
        if not injected:
            return None
        if exc is None:
            return None if non_absorbing else "absorbing site refused; returned normally"
        if isinstance(exc, OutOfMemory):
            return "OutOfMemory reached the caller" if non_absorbing else None
        if not non_absorbing and isinstance(exc, WASM_LEVEL):
            return f"absorbed refusal, then {describe_exc(exc)}"
        return None


@register
class NotReached(_Outcome):
    """The run made fewer allocations than the dry run, so nothing was injected
    and it returned normally (a pass, as in Wasmtime)."""

    failure = FailureClass.NOT_REACHED

    def classify(
        self, exc: BaseException | None, inj: Injector, injected: bool, non_absorbing: bool
    ) -> str | None:
        return "no allocation at this index" if exc is None and not injected else None


@register
class MissedOom(_Outcome):
    """A normal return although a non-absorbing allocation failed."""

    failure = FailureClass.MISSED_OOM
    excused_by = "allow_missed_oom_errors"

    def classify(
        self, exc: BaseException | None, inj: Injector, injected: bool, non_absorbing: bool
    ) -> str | None:
        return f"returned normally{_where(inj)}" if exc is None and non_absorbing else None


@register
class WrongError(_Outcome):
    """An injection happened and something other than a bare ``OutOfMemory`` came out
    (a generic ``WasmtimeError``, a trap, an ``OutOfMemory`` wrapped in another
    exception, an ``OutOfMemory`` escaping an absorbing site, a wrong result after a
    non-absorbing refusal, a Python error). Stricter than Wasmtime's
    ``is::<OutOfMemory>()``, which sees through context: Python users write
    ``except OutOfMemory``."""

    failure = FailureClass.WRONG_ERROR
    excused_by = "allow_missed_oom_errors"

    def classify(
        self, exc: BaseException | None, inj: Injector, injected: bool, non_absorbing: bool
    ) -> str | None:
        if exc is None or not injected:
            return None
        if isinstance(exc, OutOfMemory):
            if non_absorbing:
                return None
            return (
                f"OutOfMemory escaped from an absorbing site{_where(inj)}; "
                "it should have been absorbed"
            )
        if not non_absorbing and isinstance(exc, WASM_LEVEL):
            return None
        wrapped = any(isinstance(e, OutOfMemory) for e in exception_chain(exc)[1:])
        how = "OutOfMemory wrapped in " if wrapped else "instead of OutOfMemory: "
        return f"{how}{describe_exc(exc)}{_where(inj)}"


@register
class SpuriousError(_Outcome):
    """An error although nothing was injected."""

    failure = FailureClass.SPURIOUS_ERROR
    excused_by = "allow_missed_oom_errors"

    def classify(
        self, exc: BaseException | None, inj: Injector, injected: bool, non_absorbing: bool
    ) -> str | None:
        if exc is None or injected:
            return None
        return f"raised {describe_exc(exc)} although nothing was injected"


def guest_judged(run: JudgedRun) -> bool:
    """Is ``run`` a program run whose refusals were all on the guest's side, that ended
    without an exception (what the guest checks judge)?"""
    out = run.outcome
    if out is None or out.exc is not None:
        return False
    inj = out.injector
    if not inj.injected or inj.injected_non_absorbing:
        return False
    return program_result(out.value) is not None and program_result(run.baseline) is not None


class _GuestOutcome(RunCheck):
    """Base of the guest checks: a program run in which only absorbing sites (the
    guest's ``memory.grow``) were refused and that ended without an exception,
    judged against the fault-free run by :func:`oomfuzz.guest.judge`; exactly one
    of them fires for such a run."""

    def inspect(self, run: JudgedRun) -> list[Finding]:
        if not guest_judged(run):
            return []
        assert run.outcome is not None
        result, fault_free = program_result(run.outcome.value), program_result(run.baseline)
        assert result is not None and fault_free is not None
        verdict, detail = judge(result, fault_free, run.policy.accept_exit)
        return [Finding(self.failure, detail)] if verdict == self.failure.value else []


@register
class GuestHandled(_GuestOutcome):
    """The guest absorbed the refusal (the fault-free result) or reported it (a
    non-zero exit with a message, or an exit code the scenario accepts)."""

    failure = FailureClass.HANDLED


@register
class GuestAbort(_GuestOutcome):
    """The guest trapped, or exited non-zero with nothing on stderr."""

    failure = FailureClass.GUEST_ABORT
    excused_by = "accept_guest_abort"


@register
class GuestCorrupt(_GuestOutcome):
    """The guest exited 0 with output different from the fault-free run."""

    failure = FailureClass.GUEST_CORRUPT
    excused_by = "accept_guest_corrupt"


@register
class AllocAfterOom(RunCheck):
    """Strict mode saw an allocation after the injected OOM (the injector records
    them unless ``allow_alloc_after_oom``; ``panic_on_alloc_after_oom`` ends the
    run with :class:`~oomfuzz.inject.AllocationAfterOom`)."""

    failure = FailureClass.ALLOC_AFTER_OOM

    def inspect(self, run: JudgedRun) -> list[Finding]:
        exc, inj = run.exc, run.injector
        if isinstance(exc, AllocationAfterOom):
            return [Finding(self.failure, str(exc))]
        if not inj.after_oom:
            return []
        recs = "; ".join(r.describe() for r in inj.after_oom[:3])
        more = f" (+{len(inj.after_oom) - 3} more)" if len(inj.after_oom) > 3 else ""
        return [
            Finding(
                self.failure,
                f"{len(inj.after_oom)} allocation(s) after the injected OOM: {recs}{more}",
            )
        ]


@register
class NotAtomic(RunCheck):
    """An operation that failed (``OutOfMemory``, a limiter refusal, an absorbed refusal:
    ``memory.grow``/``table.grow`` returning -1) left observable state changed: the
    run's recording (:mod:`oomfuzz.runstate`) compared its snapshot after the failure
    with the one before the operation (the runtime's grows, each WAST command that
    builds state, every ``oomfuzz.operation`` block)."""

    failure = FailureClass.NOT_ATOMIC
    knob = "atomicity"

    def inspect(self, run: JudgedRun) -> list[Finding]:
        out = run.outcome
        if out is None or not out.violations:
            return []
        more = f" (+{len(out.violations) - 3} more)" if len(out.violations) > 3 else ""
        return [Finding(self.failure, "; ".join(out.violations[:3]) + more)]


@register
class CleanupNotRestored(RunCheck):
    """A resource snapshot (pooling metrics, store counts, slots) taken after the
    run differs from the fault-free baseline."""

    failure = FailureClass.CLEANUP_NOT_RESTORED
    knob = "cleanup"

    def inspect(self, run: JudgedRun) -> list[Finding]:
        out = run.outcome
        if run.baseline_resources is None or out is None or out.resources is None:
            return []
        found = compare_resources(run.baseline_resources, out.resources)
        return [] if found is None else [found]


@register
class Leak(RunCheck):
    """An object of the run is alive after a collection: a store or instance the
    scenario tracked, an object ``oomfuzz.track`` named, or an internal object the
    run created (store core, module instance, memory, table, compiled module). Each
    survivor is reported with the chain of referrers keeping it alive, the
    culprit's first. Survivors reachable from what outlives the run are excused:
    objects declared long-lived (a shared engine, objects tracked outside any run)
    and stores the run did not create (a long-lived store owns what the run put in
    it until it closes)."""

    failure = FailureClass.LEAK
    knob = "leak_every"

    def inspect(self, run: JudgedRun) -> list[Finding]:
        out = run.outcome
        if out is None or not out.refs or not live_refs(out.refs, full=False):
            return []
        # Survivors the run keeps on purpose (a kept engine and its modules, a
        # long-lived store) are excused before paying for a full collection: with
        # them, something survives the young generations on nearly every run, and a
        # full collection costs the whole heap.
        roots = [*out.long_lived, *_foreign_stores(out.refs)]
        survivors = [(label, r, r()) for label, r in out.refs]
        # Held strongly (``survivors``) while their ids are compared: no id is reused.
        targets = {id(obj) for _, _, obj in survivors if obj is not None}
        kept = reachable_from(roots, targets) if roots and targets else set()
        alive = [
            (label, r) for label, r, obj in survivors if obj is not None and id(obj) not in kept
        ]
        del survivors
        if alive:
            gc.collect()
            alive = [(label, r) for label, r in alive if r() is not None]
        alive = _outlive_retries(alive)
        if not alive:
            return []
        labels = list(dict.fromkeys(label for label, _ in alive))
        chains = []
        for label in labels[:3]:
            obj = next(r() for lb, r in alive if lb == label)
            if obj is not None:
                chains.append(f"{label} kept by {referrer_chain(obj)}")
            del obj
        chains.sort(key=lambda c: c.count(" -> "))  # the culprit is nearest its root
        return [
            Finding(
                self.failure,
                f"still alive after gc.collect(): {', '.join(labels)}; " + "; ".join(chains),
            )
        ]


@register
class PostOomFailure(RerunCheck):
    """The fault-free rerun after the injection fails or gives a different result
    than the first fault-free run (off when the dry runs' results differ)."""

    failure = FailureClass.POST_OOM_FAILURE
    knob = "post_oom_every"

    def due(self, run: JudgedRun) -> bool:
        return run.deterministic and super().due(run)

    def judge(self, run: JudgedRun) -> Checking:
        plan = run.fault_plan("count", -1)
        plan.reuse = True  # a new store on the injected run's engine and modules, if offered
        rerun = yield plan
        if rerun.lost is not None:
            return [Finding(self.failure, f"fault-free rerun: {rerun.lost.detail}")]
        if rerun.exc is not None:
            return [Finding(self.failure, f"fault-free rerun raised {describe_exc(rerun.exc)}")]
        if rerun.value != run.baseline:
            return [
                Finding(
                    self.failure,
                    f"fault-free rerun gave {_short(rerun.value)}, "
                    f"first fault-free run gave {_short(run.baseline)}",
                )
            ]
        return []


@register
class RetryFailure(RunCheck):
    """Retry and continue: in the injected run, the step the ``OutOfMemory`` left was
    retried fault-free on the same store, linker and engine and the script went on
    (``Injector.retried``; the plan asks for it with ``Injector.retry`` where
    ``retry_every`` is due and the dry runs agreed); the continuation must end
    normally with exactly the fault-free results (Wasmtime's promise: a store stays
    usable after an OOM). Where the refusal hit while guest code ran, only an error
    that is not a wasm-level outcome counts. Scenarios opt in through steps (every
    WAST command is one); a run without steps is not judged."""

    failure = FailureClass.RETRY_FAILURE
    knob = "retry_every"

    def inspect(self, run: JudgedRun) -> list[Finding]:
        inj = run.injector
        if not inj.retried:
            return []
        where = f"after retrying {inj.retried} on the same store"
        # An absorbed refusal (-1 from a grow) is a legitimate outcome that the
        # guest saw: the state it leaves differs from the fault-free run's, so only
        # errors that are not wasm-level outcomes count, as for a guest-side OOM.
        diverged = inj.in_guest or any(r.absorbing for r in inj.injected)
        if inj.continued_error:
            if diverged and inj.continued_wasm_level:
                return []  # the failed attempt ran guest code: its side effects may show
            return [Finding(self.failure, f"{where}: {inj.continued_error}{_where(inj)}")]
        if inj.continued != run.baseline and not diverged:
            diff = _first_difference(inj.continued, run.baseline)
            return [Finding(self.failure, f"{where}: {diff}{_where(inj)}")]
        return []


def _first_difference(got: object, want: object) -> str:
    """Where two runs' results part (both lists of step outcomes, usually)."""
    if isinstance(got, list) and isinstance(want, list):
        for i, (g, w) in enumerate(zip(got, want, strict=False)):
            if g != w:
                return f"result {i} is {_short(g)}, the fault-free run's {_short(w)}"
        return f"{len(got)} results, the fault-free run has {len(want)}"
    return f"gave {_short(got)}, the fault-free run {_short(want)}"


#: Where the tracemalloc check does not count growth: the standard library and installed
#: third-party packages (a Dask worker's monitor, psutil, tornado... allocate on their
#: own threads while a run is measured), except wasmrt itself, wherever it is installed.
_NOT_UNDER_TEST = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)
_WASMRT_DIR = (
    os.path.dirname(os.path.abspath(sys.modules[OutOfMemory.__module__].__file__ or "")) + os.sep
)


def _counted(stat: tracemalloc.StatisticDiff) -> bool:
    """Is this growth in the code under test (module docstring: the tracemalloc check)?"""
    name = stat.traceback[0].filename
    return name.startswith(_WASMRT_DIR) or not name.startswith(_NOT_UNDER_TEST)


_TRACEMALLOC_LOCK = threading.Lock()


@register
class TracemallocLeak(RerunCheck):
    """Re-run the injection: a warm-up, then ``tracemalloc_repeats`` measured runs.

    Growth is the change of traced memory between consecutive snapshots,
    outside the harness's own files, tracemalloc, linecache and traceback. A
    ``leak`` only if *every* measured run grew by more than
    ``tracemalloc_tolerance`` bytes (default 4096 B per run): a cache filling
    or an allocator's free list settling grows once, then stops; a real leak
    (a module-level list appended to on every run) grows on every one.
    """

    failure = FailureClass.LEAK
    knob = "tracemalloc_every"

    @staticmethod
    def _rerun(run: JudgedRun) -> Injector:
        """The injected run again, building its modules for real (``real_builds``)."""
        plan = run.fault_plan(run.mode, run.index)
        plan.real_builds = True
        return plan

    def judge(self, run: JudgedRun) -> Checking:
        pol = run.policy
        # tracemalloc is per process: one measurement at a time (a thread executor
        # runs units side by side), and only its starter stops it.
        _TRACEMALLOC_LOCK.acquire()
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
        # The heap as it is now is frozen for the measurement: each snapshot's full
        # collection then scans only what the re-runs created (a full collection of
        # the whole heap costs 20-50 ms). Garbage frozen with it is freed after the
        # thaw; it was allocated before the warm-up, so it is the same in every
        # snapshot and no growth. The fork engine's children are frozen already.
        thaw = gc.get_freeze_count() == 0
        if thaw:
            gc.freeze()
        try:
            out = yield self._rerun(run)  # warm-up: caches fill, not measured
            del out
            first = prev = snapshot()
            for _ in range(pol.tracemalloc_repeats):
                out = yield self._rerun(run)
                del out
                snap = snapshot()
                growths.append(
                    sum(s.size_diff for s in snap.compare_to(prev, "filename") if _counted(s))
                )
                prev = snap
        finally:
            if thaw:
                gc.unfreeze()
            if started:
                tracemalloc.stop()
            _TRACEMALLOC_LOCK.release()
        if min(growths) <= pol.tracemalloc_tolerance:
            return []
        stats = [s for s in prev.compare_to(first, "lineno") if _counted(s)]
        top = max(stats, key=lambda s: s.size_diff)
        frame = top.traceback[0]
        return [
            Finding(
                self.failure,
                f"tracemalloc: every one of {len(growths)} repeated runs retained memory "
                f"(+{', +'.join(map(str, growths))} B; tolerance {pol.tracemalloc_tolerance} "
                f"B/run, after a warm-up run); top growth +{top.size_diff} B at "
                f"{frame.filename}:{frame.lineno}",
            )
        ]


@register
class SampledTracemallocLeak(TracemallocLeak):
    """The cheap, default-on form of the tracemalloc check: the same measurement
    (a warm-up, then every measured re-run must retain memory) on only
    ``tracemalloc_sample`` injections of a sweep (default 1): the last ones scheduled,
    which run the longest prefix of the code under test before their OOM, so an
    error path's leak and most of the run's allocations are in what is measured.
    Off while the full check (``tracemalloc_every``) runs. Its cost is measured in
    BENCHMARKS.md ("Sweep cost of the checks")."""

    knob = "tracemalloc_sample"

    def due(self, run: JudgedRun) -> bool:
        k, n = run.policy.tracemalloc_sample, run.scheduled
        if run.lost is not None or run.policy.tracemalloc_every > 0 or k <= 0 or n <= 0:
            return False
        return run.ordinal in {n - 1 - (i * n) // k for i in range(min(k, n))}


# Lost-run classes of real-exhaustion sweeps (oomfuzz.exhaust); registered last, they
# never meet the injection checks' classes in one run.


@register
class HostMemoryError(Crashed):
    """A real-exhaustion run (:mod:`oomfuzz.exhaust`) under an address-space limit
    let a bare ``MemoryError`` out of the runtime: an allocation the ``try_alloc``
    model does not cover (wasmrt's promise is ``OutOfMemory``, or -1 from a grow)."""

    failure = FailureClass.HOST_MEMORY_ERROR


@register
class HostError(Crashed):
    """A real-exhaustion run let another bare Python error (``RecursionError``,
    ``struct.error``...) out of the runtime under an address-space limit."""

    failure = FailureClass.HOST_ERROR


@register
class LongLivedState(RunCheck):
    """The long-lived form (:class:`oomfuzz.Lifecycle`): after the injected failure the
    same state, run on fault-free (the failed step retried, the later steps, teardown),
    raised or gave other results than the fault-free run. The lifecycle reports it on
    the run's injector (``Injector.reported``); the detail names the form. Registered
    last so the verdict ranking is unchanged (its class is ``post_oom_failure``)."""

    failure = FailureClass.POST_OOM_FAILURE

    def inspect(self, run: JudgedRun) -> list[Finding]:
        return [Finding(FailureClass(cls), detail) for cls, detail in run.injector.reported]


FAILURE_ORDER: tuple[FailureClass, ...] = tuple(
    dict.fromkeys(c.failure for c in CHECKS if c.failure.is_failure)
)
#: Classes ``allow_missed_oom_errors`` turns into passes (Wasmtime's table 3.4).
MISSABLE = frozenset(c.failure for c in CHECKS if c.excused_by == "allow_missed_oom_errors")


def excuse(check: Check, policy: CheckPolicy, findings: list[Finding]) -> list[Finding]:
    """``findings`` of ``check``, as ``allowed`` where its ``excused_by`` knob is set."""
    if check.excused_by is None or not getattr(policy, check.excused_by):
        return findings
    return [Finding(FailureClass.ALLOWED, f"{f.cls}: {f.detail}") for f in findings]


def classify_outcome(
    exc: BaseException | None, inj: Injector, *, allow_missed_oom_errors: bool = False
) -> list[Finding]:
    """Classify one injection run from its exception (``None``: normal return).

    The registered checks that judge the run alone and need no baseline
    (the outcome classes and ``alloc_after_oom``), as the sweep runs them.
    """
    policy = CheckPolicy(
        cleanup=False, leak_every=0, allow_missed_oom_errors=allow_missed_oom_errors
    )
    run = JudgedRun(-1, "transient", 0, RunOutcome(inj, exc=exc), policy, _no_reruns)
    found: list[Finding] = []
    for check in CHECKS:
        if not check.reruns and check.due(run):
            found += excuse(check, policy, _inspect(check, run))
    return found


def judge_lost(lost: Finding, policy: CheckPolicy | None = None) -> list[Finding]:
    """The registered findings for a run an engine lost with ``lost`` (no verdict of its own).

    Only the checks with ``judges_lost`` judge it (``crashed``, ``timeout``,
    ``host_memory_error``, ``host_error``); a class none of them reports yields nothing.
    """
    policy = policy or CheckPolicy()
    run = JudgedRun(-1, "transient", 0, None, policy, _no_reruns, lost=lost)
    found: list[Finding] = []
    for check in CHECKS:
        if not check.reruns and check.due(run):
            found += excuse(check, policy, _inspect(check, run))
    return found


def _no_reruns(mode: str, index: int) -> Injector:
    raise RuntimeError("classify_outcome judges one run; it cannot re-run anything")


def _inspect(check: Check, run: JudgedRun) -> list[Finding]:
    """Run a check that yields no fault plan to its findings."""
    steps = check.judge(run)
    try:
        next(steps)
    except StopIteration as stop:
        found: list[Finding] = stop.value
        return found
    raise RuntimeError(f"{type(check).__name__} asked for a re-run")


def primary(findings: Sequence[Finding]) -> FailureClass:
    classes = {f.cls for f in findings}
    for c in FAILURE_ORDER:
        if c in classes:
            return c
    for c in (FailureClass.ALLOWED, FailureClass.HANDLED, FailureClass.NOT_REACHED):
        if c in classes:
            return c
    return FailureClass.HANDLED
