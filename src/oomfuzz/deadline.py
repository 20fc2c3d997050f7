"""Per-run deadlines: stop a run of the code under test that passes its time, and say where it was.

:func:`deadline` arms a timer around one run. When it expires,
:class:`RunTimeout` (a ``BaseException``, so the code under test's
``except Exception`` cannot swallow it) is raised *inside* the running code,
between two bytecodes: wasmrt's generated code is Python, so a guest loop
that never polls fuel or epochs is stopped too. The exception names where
the run was (:func:`where`): the innermost wasm function on the stack (from
the generated code's contract in ``wasmrt.vm.backtrace``: a ``f{k}``
function whose module globals hold ``OWNER_KEY``), the innermost Python frame
outside the harness and the standard library, and the last frames of the stack.

Invariants:
- In the main thread the timer is ``SIGALRM`` (``signal.setitimer``): it also
  interrupts blocking calls (``time.sleep``, ``select``) in a host function.
  Elsewhere (a pytest thread, an embedder's worker) a watchdog thread raises
  the exception in the running thread with
  ``PyThreadState_SetAsyncExc``, which takes effect at the next bytecode.
- The timer re-fires every ``max(1 s, seconds)`` after the first expiry, so
  code under test that catches and drops the first ``RunTimeout`` is
  stopped again; it is disarmed (and the previous handler and timer
  restored) when the ``with`` block exits, before the exception reaches the
  caller.
- ``deadline(None)`` (or ``<= 0``) arms nothing and costs nothing.
- ``RunTimeout`` holds strings only (no frame), so keeping it cannot keep a
  store alive.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from oomfuzz.inject import short_path
from wasmrt.vm.backtrace import OWNER_KEY

__all__ = ["Deadline", "RunTimeout", "deadline", "where"]

#: Frames of the stuck stack shown in a timeout finding (innermost last).
STACK_LINES = 8


class RunTimeout(BaseException):  # noqa: N818 - names the event, like TimeoutError
    """A run of the code under test passed its deadline (raised inside the run)."""

    def __init__(self, seconds: float, location: str, stack: str) -> None:
        super().__init__(f"the run did not finish within {seconds:g}s; it was in {location}")
        self.seconds = seconds
        self.location = location
        self.stack = stack


def _wasm_function(frame: FrameType | None) -> str | None:
    """The innermost wasm function on the stack from ``frame`` outward, named for people."""
    while frame is not None:
        ref = frame.f_globals.get(OWNER_KEY)
        name = frame.f_code.co_name
        if ref is not None and name[:1] == "f" and name[1:].isdigit():
            index = int(name[1:])
            compiled = ref()
            module = getattr(compiled, "module", None)
            return f"wasm function {_func_name(module, index)}"
        frame = frame.f_back
    return None


def _func_name(module: object, index: int) -> str:
    names = getattr(module, "names", None)
    named = names.functions.get(index) if names is not None else None
    if named:
        return f"${named} (index {index})"
    for exp in getattr(module, "exports", ()):
        if exp.kind == "func" and exp.index == index:
            return f"{exp.name!r} (index {index})"
    return f"index {index}"


_OOMFUZZ_DIR = os.path.dirname(os.path.abspath(__file__))
_STDLIB_DIR = sysconfig.get_paths()["stdlib"]


def _harness(filename: str) -> bool:
    """Is ``filename`` oomfuzz's own code or the standard library (tracebacks, linecache)?"""
    return filename.startswith((_OOMFUZZ_DIR, _STDLIB_DIR, "<frozen ", "<string>"))


def where(frame: FrameType | None) -> tuple[str, str]:
    """(location, stack): the wasm function and Python frame ``frame`` is in, and its stack."""
    if frame is None:
        return "an unknown place (no Python frame)", ""
    inner = frame
    while inner.f_back is not None and _harness(inner.f_code.co_filename):
        inner = inner.f_back  # the harness's own bookkeeping is not where the run was
    code = inner.f_code
    python = f"{short_path(code.co_filename)}:{inner.f_lineno} in {code.co_qualname}"
    wasm = _wasm_function(frame)
    location = f"{wasm}, Python frame {python}" if wasm else f"Python frame {python}"
    stack = "".join(traceback.format_stack(frame)[-STACK_LINES:])
    return location, stack


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RunTimeout` inside the ``with`` block once ``seconds`` have passed."""
    timer = Deadline(seconds)
    timer.start()
    try:
        yield
    except _Fired:
        raise timer.fired[-1] from None
    finally:
        timer.stop()


class _Fired(BaseException):  # noqa: N818 - internal signal from the watchdog
    """Raised asynchronously in the watched thread; turned into its ``RunTimeout``."""


def _set_async_exc(ident: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in thread ``ident`` at its next bytecode.

    Never called with ``NULL`` to cancel one: in CPython 3.11 that leaves the
    interpreter's "async exception pending" flag set with no exception to deliver,
    so every thread takes the eval loop's slow path from then on (a process-wide
    slowdown of orders of magnitude). A pending one is drained instead
    (:func:`_drain_pending`).
    """
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


def _drain_pending() -> None:
    """Let a pending ``_Fired`` arrive here, where it is dropped (the run is over)."""
    try:
        for _ in range(64):  # backward jumps: the eval loop delivers a pending exception
            pass
    except _Fired:
        pass


class Deadline:
    """A deadline armed by :meth:`start` and disarmed by :meth:`stop` (for a run that
    does not fit one ``with`` block, like a forked child's continuation)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired: list[RunTimeout] = []
        self._previous: Any = None
        self._outer: tuple[float, float] = (0.0, 0.0)
        self._began = 0.0
        self._guard: threading.Thread | None = None
        self._done = threading.Event()
        self._target = 0
        self._armed = False
        self._stopping = False

    def start(self) -> None:
        seconds = self.seconds
        if seconds is None or seconds <= 0:
            return
        self._armed = True
        self._stopping = False
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
            self._began = time.monotonic()
            self._outer = signal.setitimer(signal.ITIMER_REAL, seconds, max(1.0, seconds))
        else:
            self._target = threading.get_ident()
            self._guard = threading.Thread(target=self._watch, name="oomfuzz-deadline", daemon=True)
            self._guard.start()

    def stop(self) -> None:
        """Disarm; safe against the alarm firing meanwhile (see :meth:`_disarm`)."""
        while True:
            try:
                self._disarm()
                return
            except (RunTimeout, _Fired):
                # The alarm fired on the way in, before ``_stopping`` was set: the
                # run is over either way, so disarming goes on (it never leaves the
                # timer and our handler armed for unrelated code).
                continue

    def _disarm(self) -> None:
        if not self._armed:
            return
        self._stopping = True  # from here on the SIGALRM handler raises nothing
        if self._guard is None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._armed = False
            if self._outer[0] > 0:  # an enclosing timer (pytest-timeout...): what is left of it
                left = self._outer[0] - (time.monotonic() - self._began)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), self._outer[1])
            return
        self._done.set()
        self._guard.join()
        self._armed = False
        if self.fired:
            _drain_pending()  # one may still be pending: never let it escape

    def translate(self, exc: BaseException | None) -> BaseException | None:
        """``exc``, or the ``RunTimeout`` it stands for (the watchdog's raw signal)."""
        if isinstance(exc, _Fired) and self.fired:
            return self.fired[-1]
        return exc

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            return  # the run is over; its deadline no longer applies
        location, stack = where(frame)
        raise RunTimeout(float(self.seconds or 0), location, stack)

    def _watch(self) -> None:
        seconds = float(self.seconds or 0)
        wait = seconds
        while not self._done.wait(wait):
            frame = sys._current_frames().get(self._target)
            location, stack = where(frame)
            del frame
            self.fired.append(RunTimeout(seconds, location, stack))
            _set_async_exc(self._target, _Fired)
            wait = max(1.0, seconds)
