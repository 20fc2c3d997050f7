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
- ``cleanup_not_restored``: a resource snapshot (pooling metrics, store
  counts, slots) taken after the run differs from the fault-free baseline.
- ``leak``: a weakref to a store/instance of the run is alive after
  ``gc.collect()``, or tracemalloc shows retained growth across repeated runs
  of the same injection beyond the tolerance.
- ``post_oom_failure``: the fault-free rerun after the injection fails or
  gives a different result than the first fault-free run.
- ``crashed``: (fork engine) the forked child running the injection died
  without sending a verdict: killed by a signal, ``os._exit`` in the code
  under test, or an error in the child's own bookkeeping.
- ``timeout``: (fork engine) the forked child did not report within its
  deadline and was killed.

``crashed`` and ``timeout`` rank first: they mean no verdict could be
computed at all, and ``allow_missed_oom_errors`` never excuses them.

The tracemalloc leak check (``CheckPolicy.tracemalloc_every``) re-runs the
same injection: one warm-up run whose growth is ignored (caches, interned
strings and lazily built tables fill there), then ``tracemalloc_repeats``
(default 3) measured runs, each followed by ``gc.collect()`` and a snapshot.
Growth is the change of traced memory between consecutive snapshots, outside
the harness's own files, tracemalloc, linecache and traceback. It is a
``leak`` only if *every* measured run grew by more than
``tracemalloc_tolerance`` bytes (default 4096 B per run): a cache filling or
an allocator's free list settling grows once, then stops; a real leak (a
module-level list appended to on every run) grows on every one.

Invariants:
- Classification is a pure function of the run's exception, its injector and
  the policy; it never touches the code under test.
- An iteration may have several classes; ``primary`` is the first failure
  class in ``FAILURE_ORDER``.
"""

from __future__ import annotations

import enum
import gc
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from oomfuzz.inject import AllocationAfterOom, Injector
from wasmrt.errors import OutOfMemory
from wasmrt.trap import Trap

__all__ = [
    "CheckPolicy",
    "ExpectationFailed",
    "FailureClass",
    "Finding",
    "classify_outcome",
    "compare_resources",
    "live_refs",
]


class FailureClass(enum.StrEnum):
    HANDLED = "handled"
    NOT_REACHED = "not_reached"
    ALLOWED = "allowed"
    MISSED_OOM = "missed_oom"
    WRONG_ERROR = "wrong_error"
    SPURIOUS_ERROR = "spurious_error"
    ALLOC_AFTER_OOM = "alloc_after_oom"
    CLEANUP_NOT_RESTORED = "cleanup_not_restored"
    LEAK = "leak"
    POST_OOM_FAILURE = "post_oom_failure"
    CRASHED = "crashed"
    TIMEOUT = "timeout"

    def __str__(self) -> str:
        return self.value

    @property
    def is_failure(self) -> bool:
        return self not in PASS_CLASSES


PASS_CLASSES = frozenset({FailureClass.HANDLED, FailureClass.NOT_REACHED, FailureClass.ALLOWED})
FAILURE_ORDER: tuple[FailureClass, ...] = (
    FailureClass.CRASHED,
    FailureClass.TIMEOUT,
    FailureClass.MISSED_OOM,
    FailureClass.WRONG_ERROR,
    FailureClass.SPURIOUS_ERROR,
    FailureClass.ALLOC_AFTER_OOM,
    FailureClass.CLEANUP_NOT_RESTORED,
    FailureClass.LEAK,
    FailureClass.POST_OOM_FAILURE,
)
#: Classes ``allow_missed_oom_errors`` turns into passes (Wasmtime's table 3.4).
MISSABLE = frozenset(
    {FailureClass.MISSED_OOM, FailureClass.WRONG_ERROR, FailureClass.SPURIOUS_ERROR}
)


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

    ``leak_every``: weakref liveness (a ``gc.collect()`` only when a ref is
    still alive). ``post_oom_every``: a fault-free rerun compared with the
    baseline. ``tracemalloc_every``: rerun the same injection once as a
    warm-up (ignored), then ``tracemalloc_repeats`` times; a leak only if
    every measured run retained more than ``tracemalloc_tolerance`` bytes
    (see the module docstring).
    """

    cleanup: bool = True
    leak_every: int = 1
    post_oom_every: int = 1
    tracemalloc_every: int = 0
    tracemalloc_repeats: int = 3
    tracemalloc_tolerance: int = 4096

    def __post_init__(self) -> None:
        if self.tracemalloc_repeats < 1:
            raise ValueError("tracemalloc_repeats must be >= 1")
        if self.tracemalloc_tolerance < 0:
            raise ValueError("tracemalloc_tolerance must be >= 0")

    @staticmethod
    def due(every: int, ordinal: int) -> bool:
        return every > 0 and ordinal % every == 0


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not s for s in seen):
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def describe_exc(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


def classify_outcome(
    exc: BaseException | None, inj: Injector, *, allow_missed_oom_errors: bool = False
) -> list[Finding]:
    """Classify one injection run from its exception (``None``: normal return)."""
    out: list[Finding] = []
    injected = bool(inj.injected)
    non_absorbing = inj.injected_non_absorbing
    first = inj.oom_raised or inj.first_injection
    where = f" (injected {first.describe()})" if first else ""
    if isinstance(exc, AllocationAfterOom):
        out.append(Finding(FailureClass.ALLOC_AFTER_OOM, str(exc)))
    elif exc is None:
        if non_absorbing:
            out.append(Finding(FailureClass.MISSED_OOM, f"returned normally{where}"))
        elif injected:
            out.append(Finding(FailureClass.HANDLED, "absorbing site refused; returned normally"))
        else:
            out.append(Finding(FailureClass.NOT_REACHED, "no allocation at this index"))
    elif not injected:
        out.append(
            Finding(
                FailureClass.SPURIOUS_ERROR,
                f"raised {describe_exc(exc)} although nothing was injected",
            )
        )
    elif type(exc) is OutOfMemory or isinstance(exc, OutOfMemory):
        if non_absorbing:
            out.append(Finding(FailureClass.HANDLED, "OutOfMemory reached the caller"))
        else:
            out.append(
                Finding(
                    FailureClass.WRONG_ERROR,
                    f"OutOfMemory escaped from an absorbing site{where}; it should have been absorbed",
                )
            )
    elif not non_absorbing and isinstance(exc, WASM_LEVEL):
        out.append(Finding(FailureClass.HANDLED, f"absorbed refusal, then {describe_exc(exc)}"))
    else:
        wrapped = any(isinstance(e, OutOfMemory) for e in _chain(exc)[1:])
        how = "OutOfMemory wrapped in " if wrapped else "instead of OutOfMemory: "
        out.append(Finding(FailureClass.WRONG_ERROR, f"{how}{describe_exc(exc)}{where}"))
    if inj.after_oom and not any(f.cls is FailureClass.ALLOC_AFTER_OOM for f in out):
        recs = "; ".join(r.describe() for r in inj.after_oom[:3])
        more = f" (+{len(inj.after_oom) - 3} more)" if len(inj.after_oom) > 3 else ""
        out.append(
            Finding(
                FailureClass.ALLOC_AFTER_OOM,
                f"{len(inj.after_oom)} allocation(s) after the injected OOM: {recs}{more}",
            )
        )
    if allow_missed_oom_errors:
        out = [
            Finding(FailureClass.ALLOWED, f"{f.cls}: {f.detail}") if f.cls in MISSABLE else f
            for f in out
        ]
    return out


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


def live_refs(refs: Sequence[tuple[str, weakref.ref[object]]]) -> list[str]:
    """Labels of the objects still alive after (only if needed) a full collection."""
    if not any(r() is not None for _, r in refs):
        return []
    gc.collect()
    return [label for label, r in refs if r() is not None]


def primary(findings: Sequence[Finding]) -> FailureClass:
    classes = {f.cls for f in findings}
    for c in FAILURE_ORDER:
        if c in classes:
            return c
    for c in (FailureClass.ALLOWED, FailureClass.HANDLED, FailureClass.NOT_REACHED):
        if c in classes:
            return c
    return FailureClass.HANDLED
