"""Sweep engines: how a :class:`~oomfuzz.plan.SweepPlan`'s runs execute, behind one protocol.

An engine (:class:`SweepEngine`) takes a plan and returns its
:class:`~oomfuzz.plan.OomTestResult`, using only the plan's public surface
(``dry_runs``, ``jobs``, ``fault_plan``, ``verdict``, ``record``, ``notify``,
``time_up``, ``replay``, ``finish``). Two are registered in ``ENGINES``:

- ``replay`` (:class:`ReplayEngine`): re-runs ``fn`` from scratch per
  injection (``plan.steps()``); the only engine for async functions.
- ``fork`` (:class:`oomfuzz.forkengine.ForkEngine`): one fault-free run, a
  forked child per injection.

``auto`` is not an engine but a choice: it asks ``AUTO_ENGINE`` to run the
plan ``when_cheaper`` (that engine falls back to replaying when it would not
pay off). A new engine is one class with ``name``, ``unavailable(plan)`` and
``run(plan, when_cheaper=...)``, added to ``ENGINES``.

Invariants:
- The engine never changes a verdict: every engine judges each run with the
  plan's ``verdict`` (the registered checks), so an injection index gets the
  same classification from any engine.
- Where the chosen engine is unavailable (``unavailable(plan)`` gives the
  reason) the plan is replayed; an explicitly chosen engine says so in
  ``OomTestResult.notes`` ("fork engine unavailable (...); used replay"),
  ``auto`` silently. ``OomTestResult.engine`` names the engine that ran.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from oomfuzz.forkengine import ForkEngine
from oomfuzz.plan import OomTestResult, SweepPlan, drive, execute_async

__all__ = [
    "AUTO",
    "AUTO_ENGINE",
    "ENGINES",
    "ReplayEngine",
    "SweepEngine",
    "engine_choices",
    "run_plan",
    "run_plan_async",
]


class SweepEngine(Protocol):
    """How the runs of a sweep plan execute."""

    name: str

    def unavailable(self, plan: SweepPlan) -> str | None:
        """Why this engine cannot run ``plan`` here, or ``None``."""
        ...

    def run(self, plan: SweepPlan, *, when_cheaper: bool = False) -> OomTestResult:
        """Run the plan (its dry runs included) and return its result."""
        ...


class ReplayEngine:
    """Every run from scratch: the dry runs, then each scheduled injection."""

    name = "replay"

    def unavailable(self, plan: SweepPlan) -> str | None:
        return None

    def run(self, plan: SweepPlan, *, when_cheaper: bool = False) -> OomTestResult:
        result: OomTestResult = drive(plan.steps(), plan.fn, plan.probe, plan.run_limit)
        return result


REPLAY = ReplayEngine()
ENGINES: dict[str, SweepEngine] = {"replay": REPLAY, "fork": ForkEngine()}
AUTO = "auto"
#: The engine ``auto`` tries (it replays instead when forking would not pay off).
AUTO_ENGINE = "fork"


def engine_choices() -> tuple[str, ...]:
    """What ``OomTest(engine=...)`` and ``oomfuzz sweep --engine`` accept."""
    return (*ENGINES, AUTO)


def run_plan(plan: SweepPlan, name: str) -> OomTestResult:
    """Run ``plan`` with the engine called ``name`` (or ``auto``), falling back to replay."""
    auto = name == AUTO
    engine = ENGINES[AUTO_ENGINE if auto else name]
    reason = engine.unavailable(plan)
    if reason is None:
        return engine.run(plan, when_cheaper=auto)
    result = REPLAY.run(plan)
    if not auto:
        result.notes.append(f"{name} engine unavailable ({reason}); used replay")
    return result


async def run_plan_async(
    plan: SweepPlan, fn: Callable[[], Awaitable[object]], name: str
) -> OomTestResult:
    """Replay ``plan`` for the async function ``fn`` (no other engine runs async code)."""
    steps = plan.steps()
    try:
        inj = next(steps)
        while True:
            inj = steps.send(await execute_async(fn, inj, plan.probe))
    except StopIteration as stop:
        result: OomTestResult = stop.value
    if name not in (REPLAY.name, AUTO):
        result.notes.append(f"{name} engine unavailable (async function); used replay")
    return result
