"""The ``sites`` schedule (``oomfuzz.schedule``): every site first, then the rest.

Its first part alone (``sample=0``: one injection per distinct site and calling
context) must find every seeded bug the exhaustive schedule finds; uncut, it
injects exactly the exhaustive schedule's indices.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import seeded

from oomfuzz.checks import FailureClass
from oomfuzz.cli import main
from oomfuzz.inject import AllocRecord, Site
from oomfuzz.oomtest import OomTest, OomTestResult
from oomfuzz.scenario import ScenarioRunner, load_scenario
from oomfuzz.schedule import context_firsts, order


def rec(index: int, line: int, caller: int = 1) -> AllocRecord:
    return AllocRecord(
        index,
        8,
        "other",
        False,
        Site("wasmrt/x.py", line, "f"),
        (Site("c.py", caller, "g"),),
        point=index,
    )


def test_firsts_are_one_per_site_and_calling_context_in_allocation_order() -> None:
    records = [rec(0, 10), rec(1, 11), rec(2, 10), rec(3, 10, caller=2), rec(4, 11), rec(5, 12)]
    assert context_firsts(records) == [0, 1, 3, 5]
    assert context_firsts(records, depth=0) == [0, 1, 5]
    # Sites first, then the calling contexts not injected yet, then the rest.
    assert order("sites", range(6), records, 0, seed=0) == [0, 1, 5, 3]
    assert order("sites:firsts", range(6), records, None, seed=0) == [0, 1, 5]
    assert order("sites:rest", range(6), records, 0, seed=0) == [3]
    assert sorted(order("sites:rest", range(6), records, None, seed=0)) == [2, 3, 4]
    # Sites an earlier unit's first pass injected wait for this unit's second pass.
    covered = frozenset({str(records[1].site)})
    assert order("sites:firsts", range(6), records, None, 0, covered) == [0, 5]
    assert sorted(order("sites:rest", range(6), records, None, 0, covered)) == [1, 2, 3, 4]


def test_sites_order_puts_the_firsts_first_then_a_seeded_order_of_the_rest() -> None:
    records = [rec(i, 10 + i % 3) for i in range(30)]
    got = order("sites", range(30), records, None, seed=7)
    assert got[:3] == [0, 1, 2]
    assert sorted(got) == list(range(30))
    assert got == order("sites", range(30), records, None, seed=7)
    assert got[3:] != sorted(got[3:])
    assert order("sites", range(30), records, 0, seed=7) == [0, 1, 2]
    assert len(order("sites", range(30), records, 5, seed=7)) == 8
    # Indices narrowed before (a selection, a shard of points) stay narrowed.
    assert order("sites", [1, 2, 5, 9], records, None, 0)[:2] == [1, 2]
    assert sorted(order("sites", [1, 2, 5, 9], records, None, 0)) == [1, 2, 5, 9]


def test_exhaustive_order_is_allocation_order() -> None:
    records = [rec(i, 10) for i in range(10)]
    assert order("exhaustive", range(10), records, None, 0) == list(range(10))
    assert order("exhaustive", range(10), records, 3, 0) == sorted(
        order("exhaustive", range(10), records, 3, 0)
    )
    with pytest.raises(ValueError, match="schedule must be one of"):
        order("random", range(10), records, None, 0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        OomTest(schedule="random")


def script(tmp_path: Path, header: str = "") -> Path:
    """The seeded-bug scenario, invoking again: allocations at sites and calling
    contexts injected already."""
    path = seeded.write_script(tmp_path, header)
    path.write_text(path.read_text() + '(assert_return (invoke "get") (i32.const 5))\n' * 3)
    return path


def sweep(
    tmp_path: Path, allocator: str, header: str, schedule: str, sample: int | None
) -> OomTestResult:
    runner = ScenarioRunner(load_scenario(script(tmp_path, header)), allocator)
    return OomTest(
        raise_on_failure=False, probe=runner, schedule=schedule, sample=sample, engine="replay"
    ).test(runner.run)


BUGS = seeded.BUGS


@pytest.mark.parametrize(
    ("bug", "allocator", "header"), BUGS, ids=lambda b: getattr(b, "__name__", "")
)
def test_the_sites_schedule_finds_each_seeded_bug_the_exhaustive_one_finds(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bug: Callable[[pytest.MonkeyPatch], Any],
    allocator: str,
    header: str,
) -> None:
    registry = bug(monkeypatch)
    try:
        exhaustive = sweep(tmp_path, allocator, header, "exhaustive", None)
        firsts = sweep(tmp_path, allocator, header, "sites", 0)
    finally:
        if isinstance(registry, list):
            registry.clear()
    found = {it.verdict for it in exhaustive.failures}
    assert found, "the seeded bug went unnoticed"
    assert {it.verdict for it in firsts.failures} == found
    assert len(firsts.iterations) < len(exhaustive.iterations)
    assert set(firsts.sites) == set(exhaustive.sites)
    injected = {k for k, s in exhaustive.sites.items() if s.injected}
    assert {k for k, s in firsts.sites.items() if s.injected} == injected


def test_an_uncut_sites_sweep_injects_what_the_exhaustive_one_does(tmp_path: Path) -> None:
    exhaustive = sweep(tmp_path, "ondemand", "", "exhaustive", None)
    sites = sweep(tmp_path, "ondemand", "", "sites", None)
    assert sorted(it.index for it in sites.iterations) == [it.index for it in exhaustive.iterations]
    assert [it.index for it in sites.iterations] != [it.index for it in exhaustive.iterations]
    assert sites.passed and exhaustive.passed
    assert FailureClass.HANDLED in {it.verdict for it in sites.iterations}


def test_cli_sweep_takes_the_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = script(tmp_path)
    argv = ["sweep", str(path), "--allocator", "both", "--mode", "both", "-q", "--json"]

    def summary(*flags: str) -> dict[str, Any]:
        out = tmp_path / "r.json"
        assert main([*argv, str(out), *flags]) == 0
        return json.loads(out.read_text())["summary"]  # type: ignore[no-any-return]

    exhaustive = summary()
    # Two passes (every unit's firsts, then every unit's rest) merge into the same report.
    assert summary("--schedule", "sites") == {**exhaustive, "engines": ANY}
    firsts = summary("--schedule", "sites", "--sample", "0")
    assert firsts["injection_points"] < exhaustive["injection_points"]
    assert firsts["sites_injected"] == exhaustive["sites_injected"]
    assert firsts["units"] == exhaustive["units"]
    assert main(["sweep", str(path), "--schedule", "nope"]) != 0
    capsys.readouterr()
