"""Seeded bugs: break wasmrt one way at a time and check oomfuzz reports it
with the right class and site (the harness must be able to fail)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import seeded

from oomfuzz.checks import FailureClass
from oomfuzz.oomtest import OomTest, OomTestResult
from oomfuzz.scenario import ScenarioRunner, load_scenario


def sweep(tmp_path: Path, allocator: str, header: str = "") -> OomTestResult:
    path = seeded.write_script(tmp_path, header)
    runner = ScenarioRunner(load_scenario(path), allocator)
    return OomTest(raise_on_failure=False, fail_fast=True, probe=runner).test(runner.run)


def first_failure(res: OomTestResult) -> Any:
    assert res.failures, "the seeded bug went unnoticed"
    return res.failures[0]


def test_the_unbroken_runtime_passes(tmp_path: Path) -> None:
    for allocator in ("ondemand", "pooling"):
        assert sweep(tmp_path, allocator).passed


def test_cleanup_guard_skips_a_deallocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded.guard_skips_memory_deallocation(monkeypatch)
    it = first_failure(sweep(tmp_path, "pooling"))
    assert it.verdict is FailureClass.CLEANUP_NOT_RESTORED
    assert "pool.memories" in it.detail
    assert it.injected.site.file.startswith("wasmrt/vm/")  # failed after the memory was allocated
    assert it.injected.kind in ("table", "instance", "func", "global", "segment", "list", "other")


def test_instance_count_never_decremented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded.guard_skips_instance_count_decrement(monkeypatch)
    it = first_failure(sweep(tmp_path, "pooling"))
    assert it.verdict is FailureClass.CLEANUP_NOT_RESTORED
    assert "pool.core_instances" in it.detail
    assert it.injected.site.file.startswith("wasmrt/")


def test_pooled_slot_never_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded.guard_skips_table_deallocation(monkeypatch)
    header = ";; oomfuzz: allocator=pooling engine=shared total_tables=1 total_memories=1"
    res = sweep(tmp_path, "pooling", header)
    it = first_failure(res)
    assert it.verdict is FailureClass.CLEANUP_NOT_RESTORED
    assert "pool.tables" in it.detail


def test_oom_turned_into_a_generic_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded.oom_becomes_wasmtime_error(monkeypatch)
    it = first_failure(sweep(tmp_path, "ondemand"))
    assert it.verdict is FailureClass.WRONG_ERROR
    assert "WasmtimeError: call failed" in it.detail
    assert it.injected.site.file.startswith("wasmrt/")


def test_error_path_allocates_after_oom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded.error_path_allocates(monkeypatch)
    it = first_failure(sweep(tmp_path, "ondemand"))
    assert it.verdict is FailureClass.ALLOC_AFTER_OOM
    assert it.after_oom[0].size == 128
    assert it.after_oom[0].site.function.endswith("wrap")


def test_store_kept_alive_by_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = seeded.failed_store_kept_alive(monkeypatch)
    try:
        it = first_failure(sweep(tmp_path, "ondemand"))
    finally:
        registry.clear()
    assert it.verdict is FailureClass.LEAK
    assert "Store" in it.detail
