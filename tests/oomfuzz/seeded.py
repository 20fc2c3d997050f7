"""Seeded bugs shared by the oomfuzz tests: each function breaks wasmrt one way
(through ``monkeypatch``) so a test can check that oomfuzz reports it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory, WasmtimeError
from wasmrt.runtime import _core
from wasmrt.runtime.func import Func
from wasmrt.vm.allocator import PoolingInstanceAllocator
from wasmrt.vm.instance import instance_plan
from wasmrt.vm.store import StoreCore

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


def write_script(tmp_path: Path, header: str = "", name: str = "seeded.wast") -> Path:
    """The scenario the seeded bugs are swept against, written to ``tmp_path``."""
    path = tmp_path / name
    path.write_text(SCRIPT.format(header=header))
    return path


def called_from(name: str) -> bool:
    """Whether the caller of the patched method runs (directly or not) under ``name``."""
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_name == name:
            return True
        f = f.f_back  # type: ignore[assignment]
    return False


def _skip_in_instantiate_guard(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    real = getattr(PoolingInstanceAllocator, method)

    def skip_in_guard(self: Any, *args: Any) -> None:
        if not called_from("instantiate"):
            real(self, *args)

    monkeypatch.setattr(PoolingInstanceAllocator, method, skip_in_guard)


def guard_skips_memory_deallocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """instantiate's cleanup guard never returns a pooled memory."""
    _skip_in_instantiate_guard(monkeypatch, "deallocate_memory")


def guard_skips_instance_count_decrement(monkeypatch: pytest.MonkeyPatch) -> None:
    """instantiate's cleanup guard never decrements the pool's core instance count."""
    _skip_in_instantiate_guard(monkeypatch, "decrement_core_instance_count")


def guard_skips_table_deallocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """instantiate's cleanup guard never returns a pooled table slot."""
    _skip_in_instantiate_guard(monkeypatch, "deallocate_table")


def oom_becomes_wasmtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Func calls turn OutOfMemory into a generic ``WasmtimeError("call failed")``."""
    real = Func.__call__

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        try:
            return real(self, store, *params)
        except OutOfMemory:
            raise WasmtimeError("call failed") from None

    monkeypatch.setattr(Func, "__call__", wrap)


def error_path_allocates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Func calls allocate 128 bytes (site function ``...wrap``) after an OutOfMemory."""
    real = Func.__call__

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        try:
            return real(self, store, *params)
        except OutOfMemory:
            try_alloc(128, AllocKind.OTHER)  # e.g. formatting a message on the error path
            raise

    monkeypatch.setattr(Func, "__call__", wrap)


def failed_store_kept_alive(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Func calls keep the store of a call that hit OutOfMemory alive in the returned
    registry (clear it when done)."""
    registry: list[object] = []
    real = Func.__call__

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        try:
            return real(self, store, *params)
        except OutOfMemory:
            registry.append(store)  # a global registry keeps the failed store alive
            raise

    monkeypatch.setattr(Func, "__call__", wrap)
    return registry


def failed_instantiate_keeps_store_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """instantiate's cleanup guard, on an ``OutOfMemory``, releases the instance but never
    gives the store its instance/memory/table counts back: the store looks fuller after
    every failed instantiation, so a later instantiation on the same store hits
    ``limits.instances`` (a fresh store never sees it)."""
    real = StoreCore.unbump_counts

    def unbump(self: StoreCore, memories: int, tables: int) -> None:
        if called_from("instantiate") and isinstance(sys.exc_info()[1], OutOfMemory):
            return
        real(self, memories, tables)

    monkeypatch.setattr(StoreCore, "unbump_counts", unbump)


def failed_instantiate_empties_module_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """An instantiation that fails with ``OutOfMemory`` drops the module's active data
    segments in place (in the module's cached instantiation plan, not in the instance): the next
    instance of the *same* ``Module`` starts with zeroed memory (a recompiled module
    does not)."""
    real = _core.vm_instantiate

    def instantiate(store: Any, compiled: Any, imports: Any) -> Any:
        try:
            return real(store, compiled, imports)
        except OutOfMemory:
            for seg in instance_plan(compiled).datas:  # the module's cached plan
                if seg.mode == "active":
                    seg.bytes = bytes(len(seg.bytes))
            raise

    monkeypatch.setattr(_core, "vm_instantiate", instantiate)


#: A header that makes the table bug show: one pooled table and memory, shared engine.
POOLED_HEADER = ";; oomfuzz: allocator=pooling engine=shared total_tables=1 total_memories=1"

#: The seeded wasmrt bugs with the allocator and script header each shows under
#: (the schedule tests and ``benchmarks/bench_schedule.py --seeded`` run them all).
BUGS: list[tuple[Any, str, str]] = [
    (guard_skips_memory_deallocation, "pooling", ""),
    (guard_skips_instance_count_decrement, "pooling", ""),
    (guard_skips_table_deallocation, "pooling", POOLED_HEADER),
    (oom_becomes_wasmtime_error, "ondemand", ""),
    (error_path_allocates, "ondemand", ""),
    (failed_store_kept_alive, "ondemand", ""),
]
