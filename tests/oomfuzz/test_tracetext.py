"""oomfuzz.tracetext: the traceback module's text, minus the caret lines, for less."""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Callable
from types import FrameType

import pytest

from oomfuzz.tracetext import exception_text, stack_text

CARET = re.compile(r"^\s*[~^]+\s*$")


def plain(lines: list[str]) -> str:
    """``traceback``'s text without its caret lines."""
    text = "".join(lines)
    return "".join(ln for ln in text.splitlines(keepends=True) if not CARET.match(ln))


def raised(fn: Callable[[], object]) -> BaseException:
    with pytest.raises(BaseException) as info:
        fn()
    return info.value


def divide(n: int) -> float:
    return 1 / (n - n)


def chained() -> None:
    try:
        divide(3)
    except ZeroDivisionError as e:
        raise ValueError("bad value") from e


def during() -> None:
    try:
        divide(3)
    except ZeroDivisionError:
        {}["missing"]  # noqa: B018 - raises KeyError during the handler


def suppressed() -> None:
    try:
        divide(3)
    except ZeroDivisionError:
        raise RuntimeError("clean") from None


def recurse(n: int) -> None:
    if n == 0:
        raise OverflowError("deep")
    recurse(n - 1)


@pytest.mark.parametrize(
    "fn", [lambda: divide(2), chained, during, suppressed, lambda: recurse(40)]
)
def test_exception_text_is_tracebacks_without_carets(fn: object) -> None:
    exc = raised(fn)
    assert exception_text(exc) == plain(traceback.format_exception(exc))


def test_a_deep_recursion_collapses_like_traceback() -> None:
    exc = raised(lambda: recurse(200))
    text = exception_text(exc)
    assert "[Previous line repeated 197 more times]" in text
    assert len(text.splitlines()) < 30


def test_stack_text_is_format_stack_without_carets() -> None:
    def inner() -> FrameType:
        return sys._getframe()

    frame = inner()
    assert stack_text(frame) == plain(traceback.format_stack(frame))
    assert stack_text(None) == ""


def test_exception_groups_are_formatted_by_traceback() -> None:
    exc = raised(lambda: (_ for _ in ()).throw(ExceptionGroup("two", [ValueError(1), KeyError(2)])))
    text = exception_text(exc)
    assert "ExceptionGroup: two (2 sub-exceptions)" in text and "ValueError: 1" in text
