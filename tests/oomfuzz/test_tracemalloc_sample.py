"""The cheap, default-on tracemalloc check: the last injection of a sweep is re-run
under tracemalloc, so a leak on the OOM error path is found without
``tracemalloc_every``."""

from __future__ import annotations

from pathlib import Path

import seeded

from oomfuzz.checks import CheckPolicy, FailureClass
from oomfuzz.oomtest import OomTest
from oomfuzz.scenario import load_scenario
from oomfuzz.sweep import sweep_units
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory

#: Where the seeded bug keeps what every failed call leaves behind.
_FAILED_CALLS: list[bytes] = []


def leaks_on_the_error_path() -> int:
    """Six allocations; a failed one leaves 16 KiB in a module-level list (the bug)."""
    for i in range(6):
        try:
            try_alloc(64, AllocKind.OTHER)
        except OutOfMemory:
            _FAILED_CALLS.append(bytes(16384 + i))
            raise
    return 6


def test_the_default_sweep_finds_a_leak_on_the_oom_path() -> None:
    try:
        res = OomTest(raise_on_failure=False).test(leaks_on_the_error_path)
    finally:
        _FAILED_CALLS.clear()
    assert [it.index for it in res.failures] == [5]  # only the sampled (last) injection
    (it,) = res.failures
    assert it.verdict is FailureClass.LEAK
    assert "tracemalloc: every one of 3 repeated runs retained memory" in it.detail
    assert "test_tracemalloc_sample.py" in it.detail  # the culprit's line


def test_the_sample_can_be_turned_off_and_gives_way_to_the_full_check() -> None:
    try:
        off = OomTest(raise_on_failure=False, policy=CheckPolicy(tracemalloc_sample=0))
        assert off.test(leaks_on_the_error_path).passed
        full = OomTest(raise_on_failure=False, policy=CheckPolicy(tracemalloc_every=2))
        assert [it.index for it in full.test(leaks_on_the_error_path).failures] == [0, 2, 4]
    finally:
        _FAILED_CALLS.clear()


def test_a_clean_function_passes_the_sampled_check() -> None:
    def clean() -> int:
        for _ in range(6):
            try_alloc(64, AllocKind.OTHER)
        return 6

    assert OomTest(raise_on_failure=False).test(clean).passed


def test_a_sweep_gives_the_sampled_check_to_each_scenarios_first_unit(tmp_path: Path) -> None:
    a = load_scenario(seeded.write_script(tmp_path, name="a.wast"))
    b = load_scenario(seeded.write_script(tmp_path, name="b.wast"))
    units = sweep_units([a, b], "both", "both", shards=2, tracemalloc_sample=2)
    firsts = [u for u in units if u.tracemalloc_sample]
    assert [(u.scenario, u.tracemalloc_sample) for u in firsts] == [(a.name, 2), (b.name, 2)]
    assert units[0] is firsts[0] and len(units) == 16
