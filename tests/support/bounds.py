"""Measuring one call's peak traced memory and time, for linear-bound tests.

``measure(fn, expected)`` runs ``fn()`` under ``tracemalloc`` and returns
what it returned or which ``expected`` error it raised (any other exception
propagates, failing the test with its own traceback), the peak of memory allocated during the call (bytes above
what was live when it started) and the wall time. Memory is the primary
bound (deterministic on a loaded machine); time bounds built on it must be
generous, since tracemalloc itself slows the call several-fold.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Measured:
    value: Any
    error: BaseException | None
    peak: int
    seconds: float


def measure(fn: Callable[[], Any], expected: tuple[type[BaseException], ...] = ()) -> Measured:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    value: Any = None
    error: BaseException | None = None
    t0 = time.perf_counter()
    try:
        value = fn()
    except expected as e:
        error = e
    finally:
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] - base
        if not was_tracing:
            tracemalloc.stop()
    return Measured(value, error, peak, seconds)
