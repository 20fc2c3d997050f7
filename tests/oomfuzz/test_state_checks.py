"""Atomicity (``not_atomic``), deep leaks and pool slot state: each check catches a bug of
its own kind, seeded into wasmrt (or into an embedder's code) here, with the right
class and the culprit named; the unbroken runtime gives no finding."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import seeded

import oomfuzz
import wasmrt
from oomfuzz.checks import FailureClass
from oomfuzz.oomtest import Iteration, OomTest, OomTestResult
from oomfuzz.runstate import untrack_all
from oomfuzz.scenario import ScenarioRunner, load_scenario
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import OutOfMemory
from wasmrt.runtime import _core
from wasmrt.vm import instance as vm_instance
from wasmrt.vm.allocator import PoolingInstanceAllocator
from wasmrt.vm.memory import LinearMemory
from wasmrt.vm.table import TableInstance

#: Where the seeded leak stashes what it keeps (a module global: the culprit to name).
STASH: list[Any] = []

GROW_TABLE = """\
(module
  (table $t (export "table") 1 funcref)
  (func (export "grow") (param i32) (result i32)
    (table.grow $t (ref.null func) (local.get 0)))
  (func (export "size") (result i32) (table.size $t)))
(invoke "grow" (i32.const 2))
(invoke "size")
"""

DATA_INTO_IMPORTED = """\
(module $lib (memory (export "mem") 1))
(register "lib" $lib)
(module
  (import "lib" "mem" (memory 1))
  (table 3 funcref)
  (global (mut i32) (i32.const 7))
  (data (i32.const 16) "seeded")
  (func (export "peek") (result i32) (i32.load8_u (i32.const 16))))
(invoke "peek")
"""

TABLE_MODULE = """\
(module
  (table 2 funcref)
  (memory 1)
  (global (mut i32) (i32.const 1))
  (func (export "f") (result i32) (i32.const 1)))
(assert_return (invoke "f") (i32.const 1))
"""


def sweep(
    tmp_path: Path, text: str, allocator: str = "ondemand", engine: str = "replay"
) -> OomTestResult:
    path = tmp_path / "scenario.wast"
    path.write_text(text)
    runner = ScenarioRunner(load_scenario(path), allocator)
    opts = OomTest(
        raise_on_failure=False, fail_fast=False, mode="both", probe=runner, engine=engine
    )
    return opts.test(runner.run)


def failures_of(res: OomTestResult, cls: FailureClass) -> list[Iteration]:
    return [it for it in res.failures if any(f.cls is cls for f in it.findings)]


def detail_of(it: Iteration, cls: FailureClass) -> str:
    return "; ".join(f.detail for f in it.findings if f.cls is cls)


# -- the unbroken runtime -------------------------------------------------------------------


@pytest.mark.parametrize("allocator", ["ondemand", "pooling"])
@pytest.mark.parametrize("text", [GROW_TABLE, DATA_INTO_IMPORTED, TABLE_MODULE])
def test_the_unbroken_runtime_gives_no_finding(tmp_path: Path, allocator: str, text: str) -> None:
    res = sweep(tmp_path, text, allocator, engine="fork")
    assert res.passed, [it.detail for it in res.failures]
    assert res.iterations


# -- atomicity ------------------------------------------------------------------------------


def test_table_grow_that_appends_before_asking_is_not_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def appends_first(
        self: TableInstance, delta: int, init: Any, *, from_wasm: bool = False
    ) -> int:
        old = len(self.elements)
        if old + delta > self.max:
            return -1
        self.elements.extend([init] * delta)  # the bug: grown before the allocation is granted
        try:
            try_alloc(delta * SLOT_SIZE, AllocKind.TABLE, absorbing=from_wasm)
        except OutOfMemory:
            if from_wasm:
                return -1  # ... and not rolled back
            raise
        return old

    monkeypatch.setattr(TableInstance, "grow", appends_first)
    res = sweep(tmp_path, GROW_TABLE, engine="fork")
    bad = failures_of(res, FailureClass.NOT_ATOMIC)
    assert bad, "the half-done table.grow went unnoticed"
    it = bad[0]
    assert it.verdict is FailureClass.NOT_ATOMIC
    detail = detail_of(it, FailureClass.NOT_ATOMIC)
    assert "table.grow failed (returned -1)" in detail
    assert "table.size before 1, after 3" in detail
    assert it.injected is not None and it.injected.absorbing
    assert it.injected.site.function.endswith(".appends_first")  # the culprit


def test_data_segment_written_before_instantiation_can_fail_is_not_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _core.vm_instantiate

    def init_first(store: Any, compiled: Any, imports: list[Any]) -> Any:
        memories = [e for e in imports if type(e).__name__ == "LinearMemory"]
        for dp in vm_instance.instance_plan(compiled).datas:
            if dp.mode == "active" and memories and isinstance(dp.offset, int):
                # The bug: segments copied in before the allocations that can still fail.
                memories[0].data[dp.offset : dp.offset + len(dp.bytes)] = dp.bytes
        return real(store, compiled, imports)

    monkeypatch.setattr(_core, "vm_instantiate", init_first)
    res = sweep(tmp_path, DATA_INTO_IMPORTED)
    bad = failures_of(res, FailureClass.NOT_ATOMIC)
    assert bad, "the data written by a failed instantiation went unnoticed"
    detail = detail_of(bad[0], FailureClass.NOT_ATOMIC)
    assert "ModuleCommand (line 3) failed (OutOfMemory)" in detail
    assert "scenario.wast:3" in detail  # the command that failed
    assert "memory.contents" in detail


def test_atomicity_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "scenario.wast"
    path.write_text(GROW_TABLE)
    runner = ScenarioRunner(load_scenario(path), "ondemand")

    def grows_then_fails(
        self: TableInstance, delta: int, init: Any, *, from_wasm: bool = False
    ) -> int:
        self.elements.extend([init] * delta)
        return -1

    monkeypatch.setattr(TableInstance, "grow", grows_then_fails)
    policy = oomfuzz.CheckPolicy(atomicity=False)
    res = OomTest(raise_on_failure=False, probe=runner, policy=policy).test(runner.run)
    assert not failures_of(res, FailureClass.NOT_ATOMIC)


# -- the public API from an embedder's code ----------------------------------------------------


class Host:
    """An embedder's object: a key-value store a host function writes into guest memory."""

    def __init__(self) -> None:
        self.kv: dict[str, bytes] = {}
        self.log: list[str] = []

    def put(self, key: str, value: bytes) -> None:
        with oomfuzz.operation("Host.put"):
            self.kv[key] = value  # written before the allocation that can fail ...
            self.log.append(key)
            try_alloc(len(value), AllocKind.OTHER)  # ... and not rolled back


def _two_puts(host_type: type[Host]) -> int:
    """A tracked host whose state is declared, and two puts into it."""
    host = oomfuzz.track(host_type(), host_type.__name__)
    oomfuzz.state(lambda: (dict(host.kv), list(host.log)), "host")
    host.put("a", b"1")
    host.put("b", b"22")
    return len(host.kv)


def test_a_half_done_embedder_operation_is_not_atomic() -> None:
    res = OomTest(raise_on_failure=False).test(lambda: _two_puts(Host))
    bad = failures_of(res, FailureClass.NOT_ATOMIC)
    assert len(bad) == 2  # each put's allocation
    detail = detail_of(bad[0], FailureClass.NOT_ATOMIC)
    assert "Host.put failed (OutOfMemory)" in detail
    assert "test_state_checks.py" in detail and "(put)" in detail  # where the operation is
    assert "state host" in detail


def test_a_correct_embedder_operation_passes() -> None:
    class GoodHost(Host):
        def put(self, key: str, value: bytes) -> None:
            with oomfuzz.operation("GoodHost.put"):
                try_alloc(len(value), AllocKind.OTHER)  # ask first, then write
                self.kv[key] = value
                self.log.append(key)

    res = OomTest(raise_on_failure=False).test(lambda: _two_puts(GoodHost))
    assert res.passed, [it.detail for it in res.failures]


def test_state_registered_outside_the_runs_applies_to_each_and_is_removable() -> None:
    shared = Host()  # long-lived: a fixture's object

    def body() -> int:
        shared.put("k", b"v")
        shared.kv.pop("k")
        shared.log.clear()
        return 0

    with oomfuzz.state(lambda: dict(shared.kv), "shared kv"):
        res = OomTest(raise_on_failure=False).test(body)
    assert failures_of(res, FailureClass.NOT_ATOMIC)
    shared.kv.clear()
    res = OomTest(raise_on_failure=False).test(body)  # the registration is gone
    assert not failures_of(res, FailureClass.NOT_ATOMIC)


def test_tracked_runtime_objects_are_snapshotted_by_default() -> None:
    def body() -> int:
        store = wasmrt.Store(wasmrt.Engine())
        mem = oomfuzz.track(
            wasmrt.Memory(store, wasmrt.MemoryType(wasmrt.Limits(1, 4))), "guest memory"
        )
        with oomfuzz.operation("write result"):
            mem.write(store, b"half", 0)  # the first half of the result ...
            try_alloc(64, AllocKind.CALL)  # ... then the buffer for the rest fails
        return 0

    res = OomTest(raise_on_failure=False).test(body)
    bad = failures_of(res, FailureClass.NOT_ATOMIC)
    assert bad
    assert "tracked guest memory: memory.contents" in detail_of(bad[0], FailureClass.NOT_ATOMIC)


# -- deep leaks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["replay", "fork"])
def test_an_internal_instance_kept_on_an_error_path_is_a_leak_naming_the_stash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    real = vm_instance.deallocate_module

    def stashes(allocator: Any, inst: Any) -> None:
        if inst is not None:
            STASH.append(inst)  # the bug: kept for "diagnostics" on the error path
        real(allocator, inst)

    monkeypatch.setattr(vm_instance, "deallocate_module", stashes)
    monkeypatch.setattr(f"{__name__}.STASH", [])
    res = sweep(tmp_path, TABLE_MODULE, engine=engine)
    bad = failures_of(res, FailureClass.LEAK)
    assert bad, "the stashed ModuleInstance went unnoticed"
    detail = detail_of(bad[0], FailureClass.LEAK)
    assert "ModuleInstance" in detail
    assert (
        f"ModuleInstance kept by module {__name__}['STASH'] -> list (item) -> ModuleInstance"
        in (
            detail.split("; ")[1]  # the first chain given is the culprit's
        )
    )
    # Only the internal object is kept: the public wrappers were all freed.
    assert "Store," not in detail and "Instance," not in detail.replace("ModuleInstance", "")


def test_a_tracked_user_object_kept_alive_is_a_leak_with_its_chain() -> None:
    cache: dict[str, Any] = {}

    def remember(host: Host, _cache: dict[str, Any] = cache) -> None:
        _cache["last"] = host

    def body() -> int:
        host = oomfuzz.track(Host(), "plugin host")
        try:
            try_alloc(8, AllocKind.OTHER)
        except OutOfMemory:
            remember(host)  # the bug: the error path caches the host
            raise
        return 0

    res = OomTest(raise_on_failure=False).test(body)
    bad = failures_of(res, FailureClass.LEAK)
    assert bad
    detail = detail_of(bad[0], FailureClass.LEAK)
    assert "plugin host" in detail
    assert "remember (default arguments)" in detail and "['last']" in detail


def test_objects_tracked_outside_a_run_are_long_lived() -> None:
    host = Host()
    reg = oomfuzz.track(host, "fixture host")

    def body() -> int:
        host.kv["x"] = b""
        return 0

    try:
        assert OomTest(raise_on_failure=False).test(body).passed
    finally:
        untrack_all()
    assert reg is host


# -- pool slot state ------------------------------------------------------------------------------


def test_a_slot_not_returned_on_the_error_path_with_fresh_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PoolingInstanceAllocator.deallocate_table

    def forgets_free_list(self: Any, slot: int, table: Any) -> None:
        if not seeded.called_from("instantiate"):
            return real(self, slot, table)
        with self._lock:  # the bug: counts and tenant cleared, slot never queued back
            self._table_slots[slot].tenant = None
            table.elements.clear()
            self._live_tables -= 1
        return None

    monkeypatch.setattr(PoolingInstanceAllocator, "deallocate_table", forgets_free_list)
    res = sweep(tmp_path, TABLE_MODULE, "pooling")  # engine=fresh: a new Engine per run
    bad = failures_of(res, FailureClass.CLEANUP_NOT_RESTORED)
    assert bad, "the kept table slot went unnoticed"
    detail = detail_of(bad[0], FailureClass.CLEANUP_NOT_RESTORED)
    assert "pool.table_slots_kept: baseline 0, now 1" in detail
    assert "in use without a tenant" in detail
    assert "pool.tables:" not in detail  # the live count was restored: only slots tell


def test_a_slot_queued_twice_breaks_the_pool_invariants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PoolingInstanceAllocator.deallocate_memory

    def queues_twice(self: Any, slot: int, memory: Any) -> None:
        real(self, slot, memory)
        if seeded.called_from("instantiate"):
            with self._lock:
                self._decommit_queue.append(("memory", slot))  # the bug: a second release

    monkeypatch.setattr(PoolingInstanceAllocator, "deallocate_memory", queues_twice)
    res = sweep(tmp_path, TABLE_MODULE, "pooling")
    it = res.failures[0]
    assert it.verdict is FailureClass.CLEANUP_NOT_RESTORED
    # The broken invariant shows as the pool's problems: a slot queued for decommit
    # while free, or (once retry-and-continue reused the pool and closing tripped
    # over the double release) a slot in use without a tenant.
    detail = detail_of(it, FailureClass.CLEANUP_NOT_RESTORED)
    assert re.search(r"pool\.problems: baseline \[\], now \['memory slot \d+ ", detail), detail


# -- a .py scenario: a host function that writes half its result, then fails ------------------

HOST_SCENARIO = '''\
import oomfuzz
from wasmrt.alloc import AllocKind, try_alloc

WAT = """(module
  (import "host" "get" (func $get (param i32)))
  (memory (export "memory") 1)
  (func (export "run") (call $get (i32.const 64))))"""


def scenario(ctx):
    api = ctx.api
    store = ctx.store()
    linker = api("Linker")(store.engine)
    value = b"0123456789abcdef"

    def get(caller, ptr):
        with oomfuzz.operation("host get"):
            mem = caller.get("memory")
            mem.write(caller, value[:8], ptr)  # half of the result ...
            {WRITE}
            mem.write(caller, value[8:], ptr + 8)

    fty = api("FuncType")([api("ValType").i32()], [])
    linker.define_func("host", "get", fty, get, access_caller=True)
    inst = linker.instantiate(store, api("Module")(store.engine, WAT))
    inst.exports(store)["run"](store)
    return bytes(inst.exports(store)["memory"].read(store, 64, 80))
'''


@pytest.mark.parametrize(
    ("write", "atomic"),
    [
        ("try_alloc(8, AllocKind.CALL)  # ... then the rest's buffer fails", False),
        ("pass", True),
    ],
)
def test_a_py_scenario_host_function_that_fails_half_way(
    tmp_path: Path, write: str, atomic: bool
) -> None:
    path = tmp_path / "host_get.py"
    path.write_text(HOST_SCENARIO.replace("{WRITE}", write))
    runner = ScenarioRunner(load_scenario(path), "ondemand")
    res = OomTest(raise_on_failure=False, mode="both", probe=runner).test(runner.run)
    bad = failures_of(res, FailureClass.NOT_ATOMIC)
    if atomic:
        assert res.passed, [it.detail for it in res.failures]
        return
    assert bad, "the half-written result went unnoticed"
    detail = detail_of(bad[0], FailureClass.NOT_ATOMIC)
    assert "host get failed (OutOfMemory)" in detail
    assert "host_get.py:" in detail and "(get)" in detail
    assert "tracked Store" in detail and "memory.contents" in detail


LIMITED_GROW = """\
;; oomfuzz: limits.memory_size=65536
(module
  (memory (export "memory") 1)
  (func (export "grow") (result i32) (memory.grow (i32.const 1)))
  (func (export "size") (result i32) (memory.size)))
(invoke "grow")
(invoke "size")
"""


def test_a_grow_refused_by_the_limiter_must_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = LinearMemory.grow

    def counts_pages_first(self: LinearMemory, delta: int, **kw: Any) -> int:
        old = self.pages
        result = int(real(self, delta, **kw))
        if result == -1:
            self.pages = old + delta  # the bug: the refused growth is recorded anyway
        return result

    monkeypatch.setattr(LinearMemory, "grow", counts_pages_first)
    res = sweep(tmp_path, LIMITED_GROW)
    bad = failures_of(res, FailureClass.NOT_ATOMIC)
    assert bad, "the growth a limiter refused went unnoticed"
    detail = detail_of(bad[0], FailureClass.NOT_ATOMIC)
    assert (
        "memory.grow failed (returned -1)" in detail and "memory.pages before 1, after 2" in detail
    )


def test_a_grow_refused_by_the_limiter_passes_when_correct(tmp_path: Path) -> None:
    assert sweep(tmp_path, LIMITED_GROW).passed
