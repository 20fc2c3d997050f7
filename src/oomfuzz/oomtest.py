"""``OomTest``: the builder users call (Wasmtime's ``OomTest`` semantics, stricter checks).

``OomTest(...).test(fn)`` sweeps ``fn`` (no arguments; returns normally iff
it hit no OOM): a :class:`~oomfuzz.plan.SweepPlan` (dry runs, schedule,
checks; see :mod:`oomfuzz.plan` for the algorithm and the knobs) run by the
engine named ``engine`` (:mod:`oomfuzz.engines`: ``replay``, ``fork`` or
``auto``). ``fuzz`` picks ``max_iters`` random indices instead (and requires
``max_iters``, as Wasmtime does). ``test_async``/``fuzz_async`` take a
function returning an awaitable and always replay.

Invariants:
- With ``raise_on_failure`` (the default, like Wasmtime) the first failing
  iteration ends the sweep and raises :class:`OomTestFailure`; otherwise
  every iteration runs and the result lists all failures.
- The engine only changes how runs execute, never a verdict;
  ``OomTestResult.engine`` is the engine that ran, and a chosen engine that
  is unavailable (not POSIX, other non-daemon threads, async functions,
  ``oomfuzz_fork = False`` on ``fn``, its object or the probe) falls back to
  replay and says so in ``notes``.
- The result types live in :mod:`oomfuzz.plan` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from oomfuzz.checks import RunOutcome
from oomfuzz.engines import engine_choices, run_plan, run_plan_async
from oomfuzz.plan import (
    DryRunError,
    Iteration,
    OomTestFailure,
    OomTestResult,
    Probe,
    SiteStat,
    SweepOptions,
    SweepPlan,
    execute,
    format_iteration,
)

__all__ = [
    "DryRunError",
    "Iteration",
    "OomTest",
    "OomTestFailure",
    "OomTestResult",
    "Probe",
    "RunOutcome",
    "SiteStat",
    "execute",
    "format_iteration",
]


class OomTest(SweepOptions):
    """Builder for an OOM test (Wasmtime's ``OomTest`` knobs, plus oomfuzz's)."""

    @classmethod
    def engine_names(cls) -> tuple[str, ...]:
        return engine_choices()

    def test(self, fn: Callable[[], object]) -> OomTestResult:
        return self._conclude(run_plan(SweepPlan(self, fn, fuzz=False), self.engine))

    def fuzz(self, fn: Callable[[], object]) -> OomTestResult:
        self._require_iters()
        return self._conclude(run_plan(SweepPlan(self, fn, fuzz=True), self.engine))

    async def test_async(self, fn: Callable[[], Awaitable[object]]) -> OomTestResult:
        result = await run_plan_async(SweepPlan(self, fn, fuzz=False), fn, self.engine)
        return self._conclude(result)

    async def fuzz_async(self, fn: Callable[[], Awaitable[object]]) -> OomTestResult:
        self._require_iters()
        result = await run_plan_async(SweepPlan(self, fn, fuzz=True), fn, self.engine)
        return self._conclude(result)

    def _require_iters(self) -> None:
        if self.max_iters is None:
            raise ValueError("OomTest.fuzz requires max_iters to be set")

    def _conclude(self, result: OomTestResult) -> OomTestResult:
        failures = result.failures
        if failures and self.raise_on_failure:
            first = failures[0]
            raise OomTestFailure(format_iteration(result.label, first), result, first)
        return result
