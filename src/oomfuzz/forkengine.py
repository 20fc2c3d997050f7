"""The fork sweep engine: one fault-free run, a forked child per injection.

:class:`ForkEngine` is the sweep engine registered as ``fork`` (and tried
first by ``auto``) in :mod:`oomfuzz.engines`; it drives a
:class:`~oomfuzz.plan.SweepPlan` through the plan's public surface only.
After the same dry runs as the replay engine (``plan.dry_runs()``), the
parent runs ``fn`` once more, fault-free, under a :class:`_ForkingInjector`.
At each scheduled allocation ``k`` the hook ``os.fork()``\\ s one child per
(index, mode) job; the child refuses allocation ``k`` (and, persistent, every
later one), lets the exception travel up through the code under test exactly
as in a replayed run, classifies the outcome with the replay engine's own
code (``plan.verdict``: every registered check, so the post-OOM rerun and
the tracemalloc check run in the child, on a fresh store), sends the
:class:`~oomfuzz.oomtest.Iteration` to the parent as one JSON line over a
pipe and ``os._exit``\\ s. The parent continues fault-free.

Invariants:
- Numbering: the parent's hook is an ``Injector`` in ``count`` mode, so
  allocation ``k`` of the forking run is allocation ``k`` of a dry run and of
  replay's run for index ``k``; the child switches the same injector to the
  job's plan *inside* allocation ``k`` (``_planned_failure``), so the refusal,
  its site and traceback are built by ``Injector`` itself. If the forking run
  raises or its count differs from the dry runs', its children are discarded
  and the sweep falls back to replay (noted in ``result.notes``).
- Results: iterations are recorded in ordinal (schedule) order whatever order
  children finish in; ``on_iteration`` is called in that order too (a prefix
  is released as it completes). ``fail_fast`` keeps exactly replay's prefix:
  after a failure at ordinal ``f`` no job above ``f`` is forked, live ones
  above it are killed, and lower ones still run.
- At most ``fork_jobs`` (default: usable CPUs) children live at once; the
  parent drains their pipes while it waits, so a large verdict never blocks
  a child. A child that has not reported ``fork_timeout`` seconds after its
  fork is killed (SIGKILL) and gets the verdict ``timeout``
  (``exc_type`` :class:`ChildTimeout`); a child that dies without a
  verdict (signal, ``os._exit`` in the code under test, an error in the
  child's own bookkeeping) gets the verdict ``crashed``
  (:class:`ChildCrashed`), its exit status or signal in the finding. The parent never waits on a child without a
  deadline, and kills and reaps every child it started before it returns or
  raises (``KeyboardInterrupt`` included).
- A child never returns into the parent's stack (pytest, xdist, the CLI):
  everything after its injected run is inside ``try/finally: os._exit``. It
  never calls ``on_iteration``/``on_total``, never draws progress, and
  writes nothing to the inherited stdio: ``sys.stdout``/``sys.stderr`` are
  replaced by in-memory buffers (the parent flushes its own before each
  fork, so no buffered output is duplicated). SIGINT is reset to the default
  in children; Ctrl-C stops the parent, which kills them.
- gc: before the forking run the parent collects and ``gc.freeze()``\\ s what
  exists (children then do not copy those pages when they collect); objects
  of the run itself stay collectable, so the leak check sees what replay's
  sees. The parent unfreezes afterwards (unless someone else had frozen).
  tracemalloc state is inherited; a due tracemalloc check runs in the child.
- Availability (:func:`unavailable_reason`): POSIX ``os.fork``, no other
  non-daemon thread, and no opt-out (``fn``, its ``__self__`` or the probe
  having ``oomfuzz_fork = False``; scenarios say ``fork=false``). Daemon
  threads (rich's refresh thread, multiprocessing's queue feeder) are
  tolerated because a child touches none of their state: no stdio, no
  callbacks, only its own pipe.
- ``engine="auto"`` (``ForkEngine.run(plan, when_cheaper=True)``) forks only
  when that should be cheaper than replaying the schedule (``_worth_forking``:
  the dry runs' time against a measured fork cost); ``engine="fork"`` always
  forks when it is available.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import json
import linecache
import os
import select
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import NoReturn

from oomfuzz.checks import FailureClass, Finding, RunOutcome, describe_exc
from oomfuzz.deadline import Deadline
from oomfuzz.inject import InjectMode, Injector
from oomfuzz.plan import Iteration, Job, OomTestResult, SweepPlan, drive, finish_outcome, scrub
from oomfuzz.runstate import recording

__all__ = [
    "ChildCrashed",
    "ChildTimeout",
    "ForkEngine",
    "ForkSweep",
    "default_fork_jobs",
    "fork_cost",
    "unavailable_reason",
]

#: Exit status of a child whose own bookkeeping failed (EX_SOFTWARE).
CHILD_ERROR_STATUS = 70
#: Floor of the per-child deadline, in seconds.
MIN_TIMEOUT = 60.0
#: A child's overhead in units of a bare fork+exit+wait (see ``_worth_forking``): its
#: copy-on-write faults, deadline thread and verdict encoding, the parent's select and
#: decode. At 3 the corpus's small units forked on noisy timings and swept 10-20 %
#: slower than replaying (BENCHMARKS.md, issue 16 session 4); brotli still forks at 8.
FORK_OVERHEAD_FACTOR = 8.0

_fork_cost: float | None = None


def fork_cost() -> float:
    """Seconds for a bare fork + ``os._exit`` + ``waitpid`` of this process (measured once)."""
    global _fork_cost
    if _fork_cost is None:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            best = min(best, time.perf_counter() - t)
        _fork_cost = best
    return _fork_cost


class ChildCrashed(Exception):  # noqa: N818 - names a verdict, it is never raised
    """Names (in ``Iteration.exc_type``) a child that died without a verdict."""


class ChildTimeout(Exception):  # noqa: N818 - names a verdict, it is never raised
    """Names (in ``Iteration.exc_type``) a child killed at its deadline."""


def default_fork_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def unavailable_reason(plan: SweepPlan) -> str | None:
    """Why ``plan.fn`` cannot be swept by forking here, or ``None`` if it can."""
    if os.name != "posix" or not hasattr(os, "fork"):
        return "os.fork is not available on this platform"
    fn = plan.fn
    for obj in (fn, getattr(fn, "__self__", None), plan.probe):
        if obj is not None and getattr(obj, "oomfuzz_fork", True) is False:
            return "the scenario opts out of forking"
    current = threading.current_thread()
    busy = [t.name for t in threading.enumerate() if t is not current and not t.daemon]
    if busy:
        return f"other threads are running: {', '.join(sorted(busy))}"
    return None


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by signal {name}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return f"wait status {status}"


@dataclass(eq=False)
class _ForkingInjector(Injector):
    """The parent's fault-free hook; forks the scheduled children at their allocation."""

    sweep: ForkSweep | None = field(default=None, init=False)
    points: dict[int, list[int]] = field(default_factory=dict, init=False)
    forking: bool = field(default=True, init=False)

    def _planned_failure(self, index: int) -> bool:
        # Called by Injector.__call__ for allocation `index` (already counted).
        # In a child, fork_at has switched this injector to the job's plan.
        if self.forking and self.sweep is not None:
            ordinals = self.points.get(index)
            if ordinals is not None:
                self.sweep.fork_at(self, index, ordinals)
        return super()._planned_failure(index)


@dataclass(slots=True)
class _Child:
    pid: int
    fd: int
    ordinal: int
    index: int
    mode: InjectMode
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    eof: bool = False


@dataclass(frozen=True, slots=True)
class _Job:
    """What a forked child is: its ordinal, injection index and mode, and its pipe."""

    ordinal: int
    index: int
    mode: InjectMode
    fd: int


class ForkEngine:
    """The ``fork`` sweep engine (see the module docstring)."""

    name = "fork"

    def unavailable(self, plan: SweepPlan) -> str | None:
        return unavailable_reason(plan)

    def run(self, plan: SweepPlan, *, when_cheaper: bool = False) -> OomTestResult:
        return ForkSweep(plan, when_cheaper).run()


class ForkSweep:
    """One sweep of a plan with the fork engine (see the module docstring)."""

    def __init__(self, plan: SweepPlan, when_cheaper: bool = False) -> None:
        self.plan = plan
        self.options = plan.options
        self.when_cheaper = when_cheaper
        self.fn = plan.fn
        self.probe = plan.probe
        self.max_children = plan.options.fork_jobs or default_fork_jobs()
        self.result = plan.result
        self.jobs: list[Job] = []
        self.timeout = MIN_TIMEOUT
        self.live: dict[int, _Child] = {}
        self.done: dict[int, Iteration] = {}
        self.skipped: set[int] = set()
        self.cutoff: int | None = None
        self.next_emit = 0
        self.emitted = 0
        self.fork_error: str | None = None
        self.child: _Job | None = None
        #: A child's deadline for the rest of its injected run (armed in ``_enter_child``).
        self.child_deadline = Deadline(None)
        self._warm: set[str] = set()

    # -- the parent -------------------------------------------------------------

    def run(self) -> OomTestResult:
        plan, result = self.plan, self.result
        result.engine = "fork"
        drive(plan.dry_runs(), self.fn, self.probe, plan.run_limit)
        run_time = plan.run_seconds
        self.jobs = plan.jobs
        self.timeout = self.options.fork_timeout or self._default_timeout(run_time)
        if self.jobs and not self._worth_forking(run_time):
            result.engine = "replay"
            return self._replay_rest()
        if self.jobs:
            problem = self._forking_run()
            if problem is not None:
                result.notes.append(f"fork engine: {problem}; used replay")
                result.engine = "replay"
                return self._replay_rest()
        self._emit()
        for o in sorted(self.done):
            plan.record(self.done[o])
        if self.cutoff is not None:
            return plan.finish("first failure")
        if self.skipped:
            return plan.finish(f"max_duration={self.options.max_duration}s")
        return plan.finish(plan.truncated or None)

    def _default_timeout(self, run_time: float) -> float:
        """The parent's backstop: a child runs the rest of its injection and every
        re-run of the checks, each under its own deadline (``plan.run_limit()``),
        which names where a stuck run was; SIGKILL only if all of that fails."""
        pol = self.options.policy
        runs = (
            2
            + (pol.post_oom_every > 0)
            + (pol.tracemalloc_repeats + 1) * (pol.tracemalloc_every > 0)
        )
        per_run = self.plan.run_limit() or 20.0 * run_time
        return max(MIN_TIMEOUT, per_run * runs + 30.0)

    def _worth_forking(self, run_time: float) -> bool:
        """``auto``: fork only if it should beat replaying the schedule's prefixes.

        Replay re-executes, per job, the prefix up to its index (the post-OOM
        rerun and the checks cost the same in both engines); forking costs one
        more full run plus, per job, about ``FORK_OVERHEAD_FACTOR`` times a bare
        fork+exit (the child's copy-on-write faults cost about as much again),
        spread over the parallel children.
        """
        if not self.when_cheaper:
            return True
        total = max(1, self.result.total)
        replay = sum(job.index for job in self.jobs) / total * run_time
        parallel = min(self.max_children, default_fork_jobs())
        fork = run_time + len(self.jobs) * FORK_OVERHEAD_FACTOR * fork_cost() / parallel
        return fork < replay

    def _replay_rest(self) -> OomTestResult:
        """Replay the schedule on the dry runs already made (``on_total`` was announced)."""
        result: OomTestResult = drive(self.plan.replay(), self.fn, self.probe, self.plan.run_limit)
        return result

    def _forking_run(self) -> str | None:
        """Run ``fn`` fault-free, forking the jobs; ``None`` or why its results are void."""
        points: dict[int, list[int]] = {}
        for job in self.jobs:
            points.setdefault(job.index, []).append(job.ordinal)
        inj = self.plan.fault_plan("count", cls=_ForkingInjector)
        assert isinstance(inj, _ForkingInjector)
        inj.sweep = self
        inj.points = points
        froze = gc.get_freeze_count() == 0
        if froze:
            gc.collect()
            gc.freeze()
        out = RunOutcome(inj)
        try:
            if self.probe is not None:
                self.probe.before_run()
            try:
                with inj.installed(), recording() as out.state:
                    out.value = self.fn()
            except BaseException as e:  # noqa: BLE001 - in a child this is the injected run's outcome, classified in _child_main; in the parent it is checked below (KeyboardInterrupt re-raised)
                if self.child is None and isinstance(e, KeyboardInterrupt):
                    raise
                out.exc = e
            if self.child is not None:
                self._child_main(out)
            problem = self.fork_error
            if out.exc is not None:
                problem = f"the forking run raised {describe_exc(out.exc)}"
                scrub(out.exc)
                out.exc = None
            elif inj.selected != self.result.total:
                problem = (
                    f"the forking run made {inj.selected} allocations, "
                    f"the dry runs {self.result.total}"
                )
            if problem is not None:
                return problem
            while self.live:
                self._poll(block=True)
            return None
        finally:
            if self.child is None:
                self._kill_all()
                if froze:
                    gc.unfreeze()

    def fork_at(self, inj: _ForkingInjector, index: int, ordinals: list[int]) -> None:
        """Fork one child per job at allocation ``index`` (called from the hook)."""
        for ordinal in ordinals:
            if self.cutoff is not None and ordinal > self.cutoff:
                continue
            if self._time_up():
                self.skipped.add(ordinal)
                self._emit()
                continue
            self._poll(block=False)
            while len(self.live) >= self.max_children:
                self._poll(block=True)
            if self.cutoff is not None and ordinal > self.cutoff:
                continue
            mode = self.jobs[ordinal].mode
            self._before_fork()
            r, w = os.pipe()
            try:
                pid = os.fork()
            except OSError as e:
                os.close(r)
                os.close(w)
                self.fork_error = f"os.fork failed: {e}"
                inj.forking = False
                return
            if pid == 0:
                os.close(r)
                self._enter_child(inj, _Job(ordinal, index, mode, w))
                return
            os.close(w)
            self.live[r] = _Child(pid, r, ordinal, index, mode, time.monotonic() + self.timeout)

    def _time_up(self) -> bool:
        return self.plan.time_up()

    def _before_fork(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        # The child formats tracebacks of this very stack: read its sources once, here.
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            if name not in self._warm:
                self._warm.add(name)
                linecache.getlines(name)
            frame = frame.f_back  # type: ignore[assignment]

    def _poll(self, block: bool) -> None:
        """Read whatever children wrote; collect the finished, kill the overdue."""
        if not self.live:
            return
        wait = 0.0
        if block:
            wait = min(c.deadline for c in self.live.values()) - time.monotonic()
            if any(c.eof for c in self.live.values()):
                wait = min(wait, 0.005)  # an exiting child without a verdict: re-check soon
            wait = max(0.0, wait)
        fds = [fd for fd, c in self.live.items() if not c.eof]
        ready = select.select(fds, [], [], wait)[0] if fds else []
        if not fds and wait:
            select.select([], [], [], wait)
        for fd in ready:
            c = self.live[fd]
            data = os.read(fd, 1 << 16)
            if data:
                c.buf += data
            else:
                c.eof = True
        now = time.monotonic()
        for c in list(self.live.values()):
            if self.live.get(c.fd) is not c:
                continue  # reaped meanwhile: storing a failure under fail_fast kills them all
            if c.eof:
                # A child that sent its verdict is inside os._exit: wait for it.
                flags = 0 if c.buf.endswith(b"\n") else os.WNOHANG
                pid, status = os.waitpid(c.pid, flags)
                if pid:
                    self._forget(c)
                    self._store(c.ordinal, self._verdict(c, status))
                    continue
            if now >= c.deadline:
                self._kill(c)
                detail = (
                    f"the forked child did not report within {self.timeout:g}s "
                    "(killed with SIGKILL)"
                )
                self._store(c.ordinal, self._broken(c, FailureClass.TIMEOUT, detail))

    def _verdict(self, c: _Child, status: int) -> Iteration:
        how = _describe_status(status)
        line = bytes(c.buf).rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            msg = json.loads(line) if line else {}
        except ValueError:
            msg = {}
        if "iteration" in msg and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return Iteration.from_dict(msg["iteration"])
        detail = f"the forked child {how} without a verdict"
        return self._broken(c, FailureClass.CRASHED, detail, str(msg.get("error", "")))

    def _broken(self, c: _Child, cls: FailureClass, detail: str, text: str = "") -> Iteration:
        """The iteration of a child that gave no verdict (``crashed`` or ``timeout``).

        The registered checks judge the lost run (``RunOutcome.lost``); the engine
        adds what it knows: the allocation the child was refusing and why it is gone.
        """
        plan = self.plan
        lost = RunOutcome(plan.fault_plan("count"), lost=Finding(cls, detail))
        it: Iteration = drive(plan.verdict(Job(c.ordinal, c.index, c.mode), lost), self.fn, None)
        kind = ChildTimeout if cls is FailureClass.TIMEOUT else ChildCrashed
        records = plan.records
        rec = records[c.index] if c.index < len(records) else None
        it.injected = dataclasses.replace(rec, injected=True) if rec is not None else None
        it.exc_type = f"{kind.__module__}.{kind.__qualname__}"
        it.exc_message = detail
        it.exc_traceback = text
        return it

    def _store(self, ordinal: int, it: Iteration) -> None:
        if self.cutoff is not None and ordinal > self.cutoff:
            return
        self.done[ordinal] = it
        if it.failed and self.options.fail_fast:
            self.cutoff = ordinal
            for c in list(self.live.values()):
                if c.ordinal > ordinal:
                    self._kill(c)
            for o in [o for o in self.done if o > ordinal]:
                del self.done[o]
        self._emit()

    def _emit(self) -> None:
        """Release the completed prefix of the schedule to ``on_iteration``."""
        while self.next_emit < len(self.jobs):
            o = self.next_emit
            if self.cutoff is not None and o > self.cutoff:
                break
            if o in self.done:
                self.emitted += 1
                self.plan.notify(self.done[o], self.emitted)
            elif o not in self.skipped:
                break
            self.next_emit += 1

    def _forget(self, c: _Child) -> None:
        self.live.pop(c.fd, None)
        with contextlib.suppress(OSError):
            os.close(c.fd)

    def _kill(self, c: _Child) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(c.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(c.pid, 0)
        self._forget(c)

    def _kill_all(self) -> None:
        for c in list(self.live.values()):
            self._kill(c)

    # -- a child ----------------------------------------------------------------

    def _enter_child(self, inj: _ForkingInjector, job: _Job) -> None:
        """Turn this fresh fork into the job's injected run (then the hook refuses)."""
        self.child = job
        for fd in self.live:
            os.close(fd)  # the siblings' pipes belong to the parent
        self.live = {}
        inj.forking = False
        inj.mode = job.mode
        inj.fail_at = job.index
        inj.retry = self.plan.retries(job.ordinal)
        sys.stdout = io.StringIO()
        sys.stderr = io.StringIO()
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        # The rest of the injected run gets a run's deadline; it stops the run
        # inside the code under test and names where it was (the parent's
        # SIGKILL deadline is only the backstop).
        self.child_deadline = Deadline(self.plan.run_limit())
        self.child_deadline.start()

    def _child_main(self, out: RunOutcome) -> NoReturn:
        """Classify the injected run, send the verdict, exit. Never returns."""
        job = self.child
        assert job is not None
        status = 0
        payload = b""
        try:
            self.child_deadline.stop()
            out.exc = self.child_deadline.translate(out.exc)
            finish_outcome(out, self.probe)
            it = drive(
                self.plan.verdict(Job(job.ordinal, job.index, job.mode), out),
                self.fn,
                self.probe,
                self.plan.run_limit,
            )
            del out
            payload = json.dumps({"iteration": it.to_dict()}).encode() + b"\n"
        except BaseException:  # noqa: BLE001 - the child must reach os._exit; the error goes to the parent, which classifies the iteration as crashed
            status = CHILD_ERROR_STATUS
            payload = json.dumps({"error": traceback.format_exc()}).encode() + b"\n"
        finally:
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(job.fd, view) :]
            finally:
                os._exit(status)
