"""``OomTestResult.summary()``: the one line a user prints after a sweep."""

from __future__ import annotations

from oomfuzz.oomtest import OomTest
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory


def three_allocations() -> None:
    for _ in range(3):
        try_alloc(8, AllocKind.OTHER)


def test_summary_counts_points_verdicts_and_sites() -> None:
    line = OomTest(mode="both").test(three_allocations).summary()
    assert line.startswith("three_allocations: 3 allocation points, 6 injections (6 handled)")
    assert "1 sites" in line


def test_summary_names_failures() -> None:
    def swallows() -> None:
        try:
            try_alloc(8, AllocKind.OTHER)
        except OutOfMemory:
            pass  # the bug under test: an OOM that never reaches the caller

    result = OomTest(raise_on_failure=False).test(swallows)
    assert "1 missed_oom" in result.summary()
