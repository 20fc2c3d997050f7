"""Traceback text for reports, formatted cheaply on every injection.

Every injection formats the allocation's stack and the exception the run
raised (both travel in reports and across processes as text). The
:mod:`traceback` module pays, per frame, for Python 3.11's ``^^^^`` caret
lines (an ``ast`` parse of the frame's source line) and for a
``linecache.checkcache`` (a ``stat`` of the file): most of an injection's
formatting cost. These functions give :mod:`traceback`'s text in Python
3.10's format (no caret lines), reading source lines from ``linecache``
without re-checking files during the sweep.

Invariants:
- The text is what :mod:`traceback` prints (frames, source lines, the
  exception chain with its "direct cause" / "during handling" separators,
  the exception lines), minus the caret lines; runs of more than
  ``_REPEATS`` identical frames collapse to one "[Previous line repeated N
  more times]" line as :mod:`traceback` does.
- Exception groups are formatted by :mod:`traceback` itself (rare, nested).
- Nothing here keeps a frame alive, and nothing recurses (a deep stack or a
  long chain of exceptions costs a loop, not Python's stack).
"""

from __future__ import annotations

import linecache
import traceback
from collections.abc import Iterable
from types import FrameType

__all__ = ["exception_text", "stack_text"]

#: Identical consecutive frames shown before the rest collapse (``traceback``'s own).
_REPEATS = 3
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _frames_text(frames: Iterable[tuple[str, int, str]], out: list[str]) -> None:
    last: tuple[str, int, str] | None = None
    count = 0
    for entry in frames:
        if entry == last:
            count += 1
            if count > _REPEATS:
                continue
        else:
            _repeated(count, out)
            last, count = entry, 1
        filename, lineno, name = entry
        out.append(f'  File "{filename}", line {lineno}, in {name}\n')
        line = linecache.getline(filename, lineno).strip()
        if line:
            out.append(f"    {line}\n")
    _repeated(count, out)


def _repeated(count: int, out: list[str]) -> None:
    if count > _REPEATS:
        n = count - _REPEATS
        out.append(f"  [Previous line repeated {n} more time{'s' if n > 1 else ''}]\n")


def stack_text(frame: FrameType | None) -> str:
    """``traceback.format_stack(frame)`` joined, without caret lines ("" for ``None``)."""
    frames: list[tuple[str, int, str]] = []
    f = frame
    while f is not None:
        frames.append((f.f_code.co_filename, f.f_lineno or 0, f.f_code.co_name))
        f = f.f_back
    out: list[str] = []
    _frames_text(reversed(frames), out)
    return "".join(out)


def _chain(exc: BaseException) -> list[tuple[BaseException, str]]:
    """``exc`` and the exceptions it was raised from or during, oldest first, each with
    the separator printed after it."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    joint = ""
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append((e, joint))
        if e.__cause__ is not None:
            e, joint = e.__cause__, _CAUSE
        elif e.__context__ is not None and not e.__suppress_context__:
            e, joint = e.__context__, _CONTEXT
        else:
            e = None
    return chain[::-1]


def exception_text(exc: BaseException) -> str:
    """``traceback.format_exception(exc)`` joined, without caret lines."""
    chain = _chain(exc)
    if any(isinstance(e, BaseExceptionGroup) for e, _ in chain):
        te = traceback.TracebackException.from_exception(exc)
        return "".join(te.format())
    out: list[str] = []
    for e, joint in chain:
        tb = e.__traceback__
        if tb is not None:
            out.append("Traceback (most recent call last):\n")
            frames = []
            while tb is not None:
                code = tb.tb_frame.f_code
                frames.append((code.co_filename, tb.tb_lineno or 0, code.co_name))
                tb = tb.tb_next
            _frames_text(frames, out)
        out.extend(traceback.format_exception_only(type(e), e))
        out.append(joint)
    return "".join(out)
