"""Traceback text for reports, formatted without Python 3.11's caret lines.

Every injection formats the allocation's stack and the exception the run
raised (both travel in reports and across processes as text). Python 3.11+
underlines each frame's expression with ``^^^^`` carets, found by parsing
that frame's source line with ``ast``: most of the formatting's cost, paid
on every injection. These functions give the same text without the caret
lines (Python 3.10's format).

Invariants:
- The text is what :mod:`traceback` prints (frames, source lines, the
  exception chain and its messages) minus the caret lines; no frame is
  dropped and nothing else changes.
- Nothing here keeps a frame alive: frames are read into summaries and the
  summaries are returned as text.
"""

from __future__ import annotations

import traceback
from types import FrameType

__all__ = ["exception_text", "stack_text"]


def _without_carets(stack: traceback.StackSummary) -> traceback.StackSummary:
    # A frame summary without column offsets is formatted without carets.
    for fs in stack:
        fs.colno = fs.end_colno = None
    return stack


def stack_text(frame: FrameType | None) -> str:
    """``traceback.format_stack(frame)`` joined, without caret lines ("" for ``None``)."""
    if frame is None:
        return ""
    return "".join(_without_carets(traceback.extract_stack(frame)).format())


def exception_text(exc: BaseException) -> str:
    """``traceback.format_exception(exc)`` joined, without caret lines."""
    te = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    todo = [te]
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        _without_carets(t.stack)
        todo.extend(c for c in (t.__cause__, t.__context__) if c is not None)
        todo.extend(getattr(t, "exceptions", None) or ())
    return "".join(te.format())
