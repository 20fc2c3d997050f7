"""Real-exhaustion sweeps: a scenario run in forked children under a ladder of RLIMIT_AS limits.

The injection sweeps (``replay``/``fork`` engines) refuse allocations the
runtime *announces* through ``try_alloc``; they cannot see an allocation that
is never announced, or one that is announced but whose real ``MemoryError``
is not mapped to ``OutOfMemory``. This sweep kind lets the host refuse for
real: each run is a forked child that lowers its own soft ``RLIMIT_AS`` to a
limit and runs the scenario once, fault-free as far as the hook goes.

The ladder of one (scenario, allocator) unit (:func:`exhaust_scenario`):

0. Every child first fills the free blocks its parent left in each pymalloc
   size class and some malloc chunk sizes (ballast, :func:`fill_free_memory`),
   so that the run's own allocations reach for new address space.
1. A reference child without a limit: the address space already mapped when
   it starts (``base``, ``VmSize`` after the ballast), its peak after the run (``VmPeak``; an
   upper bound: a forked child inherits its parent's high-water mark), its
   ``ru_maxrss`` and its time (the children's deadline is derived from it).
2. One child at ``upper`` (the peak, rounded up, plus ``min_step``), one at
   ``base`` (nothing new can be mapped: the interpreter's floor), then
   bisection of the gaps between tried limits: gaps whose ends ended
   differently first, then gaps below the lowest fault-free limit (where
   the run meets the limit), widest first; until ``points`` limits were
   tried or every gap is narrower than ``2 * min_step``. Each step is
   logged (``log``) and kept (``ExhaustReport.steps``).

What a child at limit L ends with (``LimitStep.outcome``):

- ``ok``: the scenario returned. ``handled``: it ended with one of the
  runtime's documented errors (``OutOfMemory`` or any ``WasmtimeError``, a
  ``Trap``) or a failed expectation of the scenario (after a ``memory.grow``
  that returned -1 the script's later assertions may fail): correct handling.
- ``floor``: the harness itself could not run at L: its probe allocation
  of ``probe_bytes`` failed before the scenario started, or a Python error
  was raised outside wasmrt (the harness, the scenario's own code or a host
  function ran out first), or the child crashed at or below the highest
  such limit. The unit's ``floor`` is the highest such limit; never a
  finding. When even ``base`` is not a floor (the interpreter ran on memory
  already mapped at the fork) the report says no floor was reached.
- findings, with the limit: ``host_memory_error`` (a bare ``MemoryError``
  raised inside wasmrt), ``host_error`` (another bare Python error raised
  inside wasmrt: ``struct.error``, ``RuntimeError``...; see
  :func:`classify_exception` for the exception chain), ``crashed`` (the
  child died without a verdict above the floor: a segfault, an abort),
  ``timeout`` (no verdict by the deadline; the child is killed). Their
  ``Finding``\\ s are the registered checks' (``checks.judge_lost``).

Invariants:
- The parent never waits for a child without a deadline and kills and reaps
  every child it started before it returns or raises.
- A child never returns into the parent's stack: everything after the fork
  is inside ``try/finally: os._exit``. Only the soft limit is lowered, and it
  is raised back to the hard limit before the child builds its verdict, so
  the report of a run is never lost to the limit it ran under. The child's
  stdout/stderr go to buffers and its fd 2 to a temporary file whose tail
  becomes the detail of a crash (CPython's fatal-error text).
- Linux only for the measurements (``/proc/self/status``); elsewhere, or
  without ``os.fork``/``resource``, :func:`unavailable_reason` says why and
  the unit reports that as its ``error``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import os
import select
import signal
import sys
import sysconfig
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import wasmrt.errors
from oomfuzz.checks import (
    ExpectationFailed,
    FailureClass,
    Finding,
    exception_chain,
    judge_lost,
)
from oomfuzz.scenario import Scenario, ScenarioError, ScenarioRunner, load_scenario
from wasmrt.trap import Trap

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None  # type: ignore[assignment]

__all__ = [
    "ExhaustOptions",
    "ExhaustReport",
    "ExhaustUnit",
    "LimitStep",
    "exhaust_scenario",
    "run_exhaust_unit",
    "unavailable_reason",
]

PAGE = 4096
MIB = 1 << 20
#: Floor of a child's deadline, in seconds.
MIN_TIMEOUT = 20.0
#: Exit status of a child whose own bookkeeping failed (EX_SOFTWARE).
CHILD_ERROR_STATUS = 70
_WASMRT_DIR = str(Path(wasmrt.errors.__file__).resolve().parent)
#: Generated wasm code's file name (wasmrt.compile.cache): a runtime frame too.
_WASM_CODE = "<wasm module>"
_STDLIB = tuple({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})
#: Outcomes that are no finding.
PASSING = ("ok", "handled", "floor")


@dataclass(frozen=True, slots=True)
class ExhaustOptions:
    """The knobs of one ladder: how many limits, how fine, how long a child may take."""

    points: int = 12
    min_step: int = 64 * 1024
    timeout: float | None = None
    probe_bytes: int = 64 * 1024
    fill: bool = True

    def __post_init__(self) -> None:
        if self.points < 2:
            raise ValueError("points must be >= 2 (the peak and the floor)")
        if self.min_step < PAGE:
            raise ValueError(f"min_step must be >= {PAGE}")


@dataclass(frozen=True, slots=True)
class ExhaustUnit:
    """One real-exhaustion unit: a scenario with one allocator (picklable)."""

    scenario: str
    allocator: str
    options: ExhaustOptions = ExhaustOptions()


@dataclass(slots=True)
class LimitStep:
    """One child: the limit it ran under (``None``: the reference run) and how it ended."""

    limit: int | None
    outcome: str
    detail: str = ""
    seconds: float = 0.0
    traceback: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome not in PASSING

    def describe(self) -> str:
        where = "no limit" if self.limit is None else f"RLIMIT_AS={_mib(self.limit)}"
        detail = f": {self.detail}" if self.detail else ""
        return f"{where} -> {self.outcome}{detail} ({self.seconds:.2f}s)"


@dataclass(slots=True)
class ExhaustReport:
    """What the ladder of one unit saw (``to_dict``/``from_dict`` cross processes)."""

    scenario: str
    allocator: str
    base: int = 0
    peak: int = 0
    maxrss: int = 0
    floor: int | None = None
    ok_from: int | None = None
    run_seconds: float = 0.0
    elapsed: float = 0.0
    steps: list[LimitStep] = field(default_factory=list)
    error: str | None = None

    @property
    def findings(self) -> list[LimitStep]:
        return [s for s in self.steps if s.failed]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            if s.limit is not None:
                out[s.outcome] = out.get(s.outcome, 0) + 1
        return out

    def finding_records(self) -> list[Finding]:
        """The registered checks' findings for the failing steps, each naming its limit."""
        found: list[Finding] = []
        for s in self.findings:
            found += judge_lost(Finding(FailureClass(s.outcome), s.describe()))
        return found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExhaustReport:
        steps = [LimitStep(**s) for s in d.get("steps", [])]
        return cls(**{**d, "steps": steps})


def _mib(n: int) -> str:
    return f"{n / MIB:.2f}MiB"


def unavailable_reason() -> str | None:
    """Why real-exhaustion sweeps cannot run here, or ``None``."""
    if os.name != "posix" or not hasattr(os, "fork") or resource is None:
        return "needs POSIX os.fork and the resource module"
    if not hasattr(resource, "RLIMIT_AS"):
        return "RLIMIT_AS is not available"
    if not Path("/proc/self/status").exists():
        return "needs /proc/self/status to measure the address space"
    return None


def vm_status() -> dict[str, int]:
    """``VmSize`` and ``VmPeak`` of this process, in bytes (Linux ``/proc``)."""
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmSize", "VmPeak"):
                out[key] = int(rest.split()[0]) * 1024
    return out


# -- classifying a child's run ----------------------------------------------------------


def _raised_in_runtime(tb: TracebackType | None) -> bool:
    """Was the exception raised by wasmrt (its innermost project frame is wasmrt's)?

    Standard-library frames are skipped (a ``struct.error`` raised in ``struct``
    called by wasmrt is wasmrt's); a host function or the harness called by
    wasmrt raising is theirs (wasmrt propagates a host's exception unchanged).
    """
    runtime = False
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == _WASM_CODE or name.startswith(_WASMRT_DIR):
            runtime = True
        elif not name.startswith(_STDLIB) and not name.startswith("<frozen"):
            runtime = False
        tb = tb.tb_next
    return runtime


def _documented(exc: BaseException) -> bool:
    return isinstance(exc, wasmrt.errors.WasmtimeError | Trap | ExpectationFailed)


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """(outcome, detail) of a run that raised ``exc`` under a limit.

    Walks the chain from ``exc`` inward (``__cause__``, else ``__context__``):
    a documented error there ends the walk (``handled``: whatever it replaced
    was mapped); a bare error raised inside wasmrt is the finding (the harness
    may have failed only while handling it, e.g. ``asyncio.run``'s shutdown);
    a chain of harness errors only is ``floor``.
    """
    for e in exception_chain(exc):
        if _documented(e):
            return "handled", _describe(e)
        if _raised_in_runtime(e.__traceback__):
            cls = (
                FailureClass.HOST_MEMORY_ERROR
                if isinstance(e, MemoryError)
                else (FailureClass.HOST_ERROR)
            )
            outer = "" if e is exc else f" (then {_describe(exc)})"
            return cls.value, f"bare {_describe(e)}{outer}"
    return "floor", f"the harness failed: {_describe(exc)}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {str(exc)[:300]}"


# -- one child ----------------------------------------------------------------------------


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by signal {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return f"wait status {status}"


#: Sizes of the ballast objects: every pymalloc size class, then glibc malloc chunks.
_FILL_SIZES = (*range(2, 500, 16), 1000, 4000, 16000, 60000)


def fill_free_memory() -> list[bytes]:
    """Ballast: allocate objects of each size until the address space grows, and keep them.

    A forked child inherits its parent's heap and pymalloc arenas with their free
    blocks; allocations served from them need no new mapping, so no address-space
    limit could refuse them. Filling the free blocks of each size class first makes
    the run's allocations reach for fresh address space (where the limit bites).
    Partial by nature: the last growth of each class leaves some free room.
    """
    keep: list[bytes] = []
    for n in _FILL_SIZES:
        start = vm_status().get("VmSize", 0)
        batch = max(1, 65536 // (n + 40))
        while vm_status().get("VmSize", 0) == start:
            keep.extend(bytes(bytearray(n)) for _ in range(batch))
    return keep


def _child(
    fn: Callable[[], object], limit: int | None, options: ExhaustOptions, fd: int, err: int
) -> NoReturn:
    """The forked child: lower the limit, probe, run, restore, report. Never returns."""
    status = 0
    msg: dict[str, Any] = {}
    try:
        os.dup2(err, 2)
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        # A crash's Python stack goes to the captured fd 2 (the crash finding's text).
        faulthandler.enable(file=open(2, "w", closefd=False))  # noqa: SIM115 - lives until os._exit
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        ballast = fill_free_memory() if options.fill else []
        start = vm_status()
        msg = {"base": start.get("VmSize", 0), "phase": "probe", "ballast": len(ballast)}
        probe_bytes = options.probe_bytes
        exc: BaseException | None = None
        t = time.perf_counter()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        try:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
                probe = bytearray(probe_bytes)
                del probe
            msg["phase"] = "run"
            fn()
        except BaseException as e:  # noqa: BLE001 - the run's outcome, classified below once the limit is lifted
            exc = e
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        msg["seconds"] = time.perf_counter() - t
        msg["peak"] = vm_status().get("VmPeak", 0)
        msg["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if exc is None:
            msg["outcome"], msg["detail"] = "ok", ""
        elif msg["phase"] == "probe":
            msg["outcome"] = "floor"
            msg["detail"] = f"the harness's probe of {probe_bytes} B failed: {exc!r}"[:300]
        else:
            msg["outcome"], msg["detail"] = classify_exception(exc)
            msg["traceback"] = "".join(traceback.format_exception(exc))[-4000:]
    except BaseException:  # noqa: BLE001 - the child must reach os._exit; the parent reports a crash
        status = CHILD_ERROR_STATUS
        msg = {"error": traceback.format_exc()[-2000:]}
    finally:
        try:
            data = memoryview(json.dumps(msg).encode() + b"\n")
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os._exit(status)


def run_child(
    fn: Callable[[], object], limit: int | None, timeout: float, options: ExhaustOptions
) -> dict[str, Any]:
    """Run ``fn`` once in a forked child under ``limit``; its message (``outcome``...)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    with tempfile.TemporaryFile() as errfile:
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:
            os.close(r)
            _child(fn, limit, options, w, errfile.fileno())
        os.close(w)
        t = time.monotonic()
        try:
            buf, status = _collect(pid, r, t + timeout)
        finally:
            os.close(r)
        seconds = time.monotonic() - t
        if status is None:
            return {
                "outcome": FailureClass.TIMEOUT.value,
                "detail": f"no verdict within {timeout:g}s (killed with SIGKILL)",
                "seconds": seconds,
            }
        line = bytes(buf).rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            msg: dict[str, Any] = json.loads(line) if line else {}
        except ValueError:
            msg = {}
        if "outcome" in msg and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return msg
        errfile.seek(0)
        tail = errfile.read()[-1500:].decode(errors="replace").strip()
        text = str(msg.get("error", "")) or tail
        return {
            "outcome": FailureClass.CRASHED.value,
            "detail": f"the child {_describe_status(status)} without a verdict",
            "traceback": text,
            "phase": msg.get("phase", ""),
            "seconds": seconds,
        }


def _collect(pid: int, fd: int, deadline: float) -> tuple[bytearray, int | None]:
    """Read the child's pipe until EOF and reap it; ``None`` status: killed at the deadline."""
    buf = bytearray()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return buf, None
            if select.select([fd], [], [], left)[0]:
                data = os.read(fd, 1 << 16)
                if not data:
                    break
                buf += data
        while True:
            got, status = os.waitpid(pid, os.WNOHANG)
            if got:
                pid = 0
                return buf, status
            if time.monotonic() >= deadline:
                return buf, None
            time.sleep(0.002)
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


# -- the ladder -----------------------------------------------------------------------------


def _align(n: int) -> int:
    return (n + PAGE - 1) // PAGE * PAGE


def _kind(outcome: str) -> str:
    return "finding" if outcome not in PASSING else outcome


class _Ladder:
    """The limits tried for one unit, and which gap to bisect next."""

    def __init__(
        self,
        report: ExhaustReport,
        fn: Callable[[], object],
        options: ExhaustOptions,
        timeout: float,
        log: Callable[[str], None] | None,
    ) -> None:
        self.report, self.fn, self.options = report, fn, options
        self.timeout, self.log = timeout, log
        self.tried: dict[int, str] = {}

    def step(self, limit: int) -> None:
        msg = run_child(self.fn, limit, self.timeout, self.options)
        s = LimitStep(
            limit,
            str(msg.get("outcome")),
            str(msg.get("detail", "")),
            float(msg.get("seconds", 0.0)),
            str(msg.get("traceback", "")),
        )
        self.report.steps.append(s)
        self.tried[limit] = s.outcome
        if self.log is not None:
            self.log(
                f"{self.report.scenario} [{self.report.allocator}] step "
                f"{len(self.tried)}: {s.describe()}"
            )

    def next_gap(self) -> tuple[int, int] | None:
        limits = sorted(self.tried)
        gaps = [
            (lo, hi)
            for lo, hi in zip(limits, limits[1:], strict=False)
            if hi - lo >= 2 * self.options.min_step
        ]
        if not gaps:
            return None

        oks = [lim for lim, out in self.tried.items() if out == "ok"]
        lowest_ok = min(oks) if oks else limits[-1] + 1

        def priority(g: tuple[int, int]) -> tuple[bool, bool, int]:
            # A boundary first, then the region under the lowest fault-free limit
            # (where the run meets the limit), then the widest gap.
            differs = _kind(self.tried[g[0]]) != _kind(self.tried[g[1]])
            return (differs, g[1] <= lowest_ok, g[1] - g[0])

        return max(gaps, key=priority)

    def run(self, base: int, upper: int) -> None:
        self.step(upper)
        self.step(base)
        while len(self.tried) < self.options.points:
            gap = self.next_gap()
            if gap is None:
                break
            self.step(_align((gap[0] + gap[1]) // 2))


def _settle(report: ExhaustReport) -> None:
    """The floor, the lowest fault-free limit, and crashes at or below the floor."""
    limited = [s for s in report.steps if s.limit is not None]
    floors = [s.limit for s in limited if s.outcome == "floor" and s.limit is not None]
    report.floor = max(floors) if floors else None
    for s in limited:
        if s.outcome == FailureClass.CRASHED.value and report.floor is not None:
            assert s.limit is not None
            if s.limit <= report.floor:
                s.outcome, s.detail = "floor", f"{s.detail} (at or below the floor)"
    oks = [s.limit for s in limited if s.outcome == "ok" and s.limit is not None]
    report.ok_from = min(oks) if oks else None


def exhaust_scenario(
    scn: Scenario,
    allocator: str,
    options: ExhaustOptions | None = None,
    log: Callable[[str], None] | None = None,
) -> ExhaustReport:
    """Run the ladder of ``scn`` with ``allocator`` (see the module docstring)."""
    options = options or ExhaustOptions()
    report = ExhaustReport(scn.name, allocator)
    reason = unavailable_reason()
    if reason is not None:
        report.error = f"real-exhaustion sweep unavailable: {reason}"
        return report
    start = time.monotonic()
    runner = ScenarioRunner(scn, allocator)
    ref = run_child(runner.run, None, options.timeout or 300.0, options)
    ref_step = LimitStep(
        None,
        str(ref.get("outcome")),
        str(ref.get("detail", "")),
        float(ref.get("seconds", 0.0)),
        str(ref.get("traceback", "")),
    )
    report.steps.append(ref_step)
    if log is not None:
        log(f"{scn.name} [{allocator}] reference: {ref_step.describe()}")
    if ref_step.outcome != "ok":
        report.error = f"the fault-free reference run did not pass: {ref_step.describe()}"
        report.elapsed = time.monotonic() - start
        return report
    report.base, report.peak = int(ref["base"]), int(ref["peak"])
    report.maxrss, report.run_seconds = int(ref["maxrss"]), ref_step.seconds
    timeout = options.timeout or max(MIN_TIMEOUT, 20.0 * report.run_seconds)
    upper = _align(max(report.peak, report.base) + options.min_step)
    _Ladder(report, runner.run, options, timeout, log).run(_align(report.base), upper)
    _settle(report)
    report.elapsed = time.monotonic() - start
    return report


def run_exhaust_unit(unit: ExhaustUnit, log: Callable[[str], None] | None = None) -> ExhaustReport:
    """Load the unit's scenario and run its ladder; input problems become ``error``."""
    try:
        scn = load_scenario(unit.scenario)
    except ScenarioError as e:
        report = ExhaustReport(unit.scenario, unit.allocator)
        report.error = f"input error: {e}"
        return report
    return exhaust_scenario(scn, unit.allocator, unit.options, log)
