"""Seeded bugs: break wasmrt one way at a time and check oomfuzz reports it
with the right class and site (the harness must be able to fail)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from oomfuzz.checks import FailureClass  # noqa: E402
from oomfuzz.oomtest import OomTest, OomTestResult  # noqa: E402
from oomfuzz.scenario import ScenarioRunner, load_scenario  # noqa: E402
from wasmrt.alloc import AllocKind, try_alloc  # noqa: E402
from wasmrt.errors import OutOfMemory, WasmtimeError  # noqa: E402
from wasmrt.runtime.allocator import PoolingInstanceAllocator  # noqa: E402
from wasmrt.runtime.func import Func  # noqa: E402

SCRIPT = """\
{header}
(module
  (memory (export "memory") 1)
  (table 2 funcref)
  (global (mut i32) (i32.const 1))
  (data (i32.const 0) "\\05")
  (func (export "get") (result i32) (i32.load8_u (i32.const 0))))
(assert_return (invoke "get") (i32.const 5))
"""


def sweep(tmp_path: Path, allocator: str, header: str = "") -> OomTestResult:
    path = tmp_path / "seeded.wast"
    path.write_text(SCRIPT.format(header=header))
    runner = ScenarioRunner(load_scenario(path), allocator)
    return OomTest(raise_on_failure=False, fail_fast=True, probe=runner).test(runner.run)


def first_failure(res: OomTestResult) -> Any:
    assert res.failures, "the seeded bug went unnoticed"
    return res.failures[0]


def called_from(name: str) -> bool:
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_name == name:
            return True
        f = f.f_back  # type: ignore[assignment]
    return False


def test_the_unbroken_runtime_passes(tmp_path: Path) -> None:
    for allocator in ("ondemand", "pooling"):
        assert sweep(tmp_path, allocator).passed


def test_cleanup_guard_skips_a_deallocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PoolingInstanceAllocator.deallocate_memory

    def skip_in_guard(self: Any, slot: int, memory: Any) -> None:
        if not called_from("instantiate"):
            real(self, slot, memory)

    monkeypatch.setattr(PoolingInstanceAllocator, "deallocate_memory", skip_in_guard)
    it = first_failure(sweep(tmp_path, "pooling"))
    assert it.verdict is FailureClass.CLEANUP_NOT_RESTORED
    assert "pool.memories" in it.detail
    assert it.injected.site.file.startswith("wasmrt/vm/")  # failed after the memory was allocated
    assert it.injected.kind in ("table", "instance", "func", "global", "segment", "list", "other")


def test_instance_count_never_decremented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = PoolingInstanceAllocator.decrement_core_instance_count

    def skip_in_guard(self: Any) -> None:
        if not called_from("instantiate"):
            real(self)

    monkeypatch.setattr(PoolingInstanceAllocator, "decrement_core_instance_count", skip_in_guard)
    it = first_failure(sweep(tmp_path, "pooling"))
    assert it.verdict is FailureClass.CLEANUP_NOT_RESTORED
    assert "pool.core_instances" in it.detail
    assert it.injected.site.file.startswith("wasmrt/")


def test_pooled_slot_never_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = PoolingInstanceAllocator.deallocate_table

    def keep_slot_on_error(self: Any, slot: int, table: Any) -> None:
        if not called_from("instantiate"):
            real(self, slot, table)

    monkeypatch.setattr(PoolingInstanceAllocator, "deallocate_table", keep_slot_on_error)
    header = ";; oomfuzz: allocator=pooling engine=shared total_tables=1 total_memories=1"
    res = sweep(tmp_path, "pooling", header)
    it = first_failure(res)
    assert it.verdict is FailureClass.CLEANUP_NOT_RESTORED
    assert "pool.tables" in it.detail


def test_oom_turned_into_a_generic_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Func.__call__

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        try:
            return real(self, store, *params)
        except OutOfMemory:
            raise WasmtimeError("call failed") from None

    monkeypatch.setattr(Func, "__call__", wrap)
    it = first_failure(sweep(tmp_path, "ondemand"))
    assert it.verdict is FailureClass.WRONG_ERROR
    assert "WasmtimeError: call failed" in it.detail
    assert it.injected.site.file.startswith("wasmrt/")


def test_error_path_allocates_after_oom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Func.__call__

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        try:
            return real(self, store, *params)
        except OutOfMemory:
            try_alloc(128, AllocKind.OTHER)  # e.g. formatting a message on the error path
            raise

    monkeypatch.setattr(Func, "__call__", wrap)
    it = first_failure(sweep(tmp_path, "ondemand"))
    assert it.verdict is FailureClass.ALLOC_AFTER_OOM
    assert it.after_oom[0].size == 128
    assert it.after_oom[0].site.function.endswith("wrap")


_REGISTRY: list[object] = []


def test_store_kept_alive_by_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Func.__call__

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        try:
            return real(self, store, *params)
        except OutOfMemory:
            _REGISTRY.append(store)  # a global registry keeps the failed store alive
            raise

    monkeypatch.setattr(Func, "__call__", wrap)
    try:
        it = first_failure(sweep(tmp_path, "ondemand"))
    finally:
        _REGISTRY.clear()
    assert it.verdict is FailureClass.LEAK
    assert "Store" in it.detail
