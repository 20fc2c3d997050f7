"""Hypothesis campaigns: a seeded bug on a rarely used path is found, shrunk and saved."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import wasmrt.vm.instance as vmi
from oomfuzz.campaign import CampaignConfig, describe, run_campaign
from oomfuzz.cli import main
from oomfuzz.scenario import load_scenario
from wasmrt.alloc import AllocKind
from wasmrt.errors import OutOfMemory


def seed_table_leak(
    monkeypatch: pytest.MonkeyPatch, when: Callable[[AllocKind, dict[str, Any]], bool]
) -> None:
    """Seed a cleanup bug in ``wasmrt.vm.instance.instantiate``: when an allocation
    matching ``when`` is refused, the instance forgets its table slots, so the
    guard never hands the tables back to the allocator (a leaked table count)."""
    real = vmi.try_alloc

    def leaky_try_alloc(size: int, kind: AllocKind, *args: Any, **kwargs: Any) -> Any:
        try:
            return real(size, kind, *args, **kwargs)
        except OutOfMemory:
            caller = sys._getframe(1).f_locals
            inst = caller.get("inst")
            if inst is not None and when(kind, caller):
                inst.table_slots.clear()
            raise

    monkeypatch.setattr(vmi, "try_alloc", leaky_try_alloc)


def passive_elem_copy(kind: AllocKind, caller: dict[str, Any]) -> bool:
    """The copy of a *passive* element segment (instantiation, rarely exercised)."""
    return kind == AllocKind.SEGMENT and getattr(caller.get("e"), "mode", None) == "passive"


def test_seeded_passive_segment_leak_is_found_and_shrunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_table_leak(monkeypatch, passive_elem_copy)
    start = time.monotonic()
    result = run_campaign(
        CampaignConfig(time_budget=55, seed=0, regressions=tmp_path, database=None)
    )
    elapsed = time.monotonic() - start
    with capsys.disabled():
        print("\n" + "\n".join(describe(result)) + f"\n(campaign + shrink: {elapsed:.1f}s)")
    assert result.findings, f"seeded bug not found in {result.examples} examples"
    f = result.findings[0]
    # A count the failed operation left changed: atomicity sees it first (its verdict
    # ranks before the cleanup check's), both name the tables.
    assert f.verdict in ("not_atomic", "cleanup_not_restored"), f.verdict
    assert "tables" in f.detail, f.detail
    assert f.functions <= 3
    assert "elem" in f.wat
    assert f.path is not None and f.reproduces, "the saved reproducer does not fail again"
    saved = load_scenario(f.path)
    assert saved.directives["index"] == str(f.index)
    assert saved.directives["mode"] == f.mode and saved.directives["allocator"] == f.allocator


def test_unbroken_runtime_passes_a_short_campaign(tmp_path: Path) -> None:
    result = run_campaign(
        CampaignConfig(time_budget=60, max_examples=8, chunk=8, seed=3, regressions=tmp_path)
    )
    assert result.examples == 8
    assert not result.findings, "\n".join(describe(result))


def test_fuzz_cli_time_box_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--time", "0", "--regressions", str(tmp_path)]) == 0
    assert "campaign: 0 examples" in capsys.readouterr().out
    assert main(["fuzz"]) == 2
    assert "--time" in capsys.readouterr().err
