"""The fork engine: same verdicts as replay, per injection index; crashes, hangs, fallbacks."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import seeded

if not hasattr(os, "fork"):  # pragma: no cover - the engine is POSIX-only
    pytest.skip("os.fork is not available", allow_module_level=True)


from oomfuzz import forkengine  # noqa: E402
from oomfuzz.checks import FailureClass  # noqa: E402
from oomfuzz.cli import main  # noqa: E402
from oomfuzz.oomtest import Iteration, OomTest, OomTestResult  # noqa: E402
from oomfuzz.scenario import ScenarioRunner, load_scenario  # noqa: E402
from wasmrt.alloc import AllocKind, try_alloc  # noqa: E402
from wasmrt.errors import OutOfMemory  # noqa: E402
from wasmrt.runtime.func import Func  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def key(it: Iteration) -> tuple[object, ...]:
    """Everything an iteration's classification consists of (not the traceback texts)."""
    inj = it.injected
    return (
        it.index,
        it.mode,
        it.verdict,
        [(f.cls, f.detail) for f in it.findings],
        it.allocations,
        (inj.site, inj.kind, inj.size, inj.absorbing) if inj else None,
        [(r.index, r.site, r.size) for r in it.after_oom],
        it.exc_type,
        it.exc_message,
    )


def both(make: Callable[[str], OomTestResult]) -> tuple[OomTestResult, OomTestResult]:
    replay, fork = make("replay"), make("fork")
    assert replay.engine == "replay"
    assert fork.engine == "fork", fork.notes
    return replay, fork


def assert_same(replay: OomTestResult, fork: OomTestResult) -> None:
    assert fork.total == replay.total
    assert fork.stopped == replay.stopped
    assert [key(i) for i in fork.iterations] == [key(i) for i in replay.iterations]
    sites = {k: (s.hits, s.injected, s.failures) for k, s in fork.sites.items()}
    assert sites == {k: (s.hits, s.injected, s.failures) for k, s in replay.sites.items()}


def scenario_sweep(path: Path, allocator: str, **kw: Any) -> Callable[[str], OomTestResult]:
    def make(engine: str) -> OomTestResult:
        runner = ScenarioRunner(load_scenario(path), allocator)
        opts: dict[str, Any] = {"raise_on_failure": False, "mode": "both", **kw}
        return OomTest(probe=runner, engine=engine, **opts).test(runner.run)

    return make


# -- identical verdicts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "allocator"),
    [
        ("func_call.wast", "ondemand"),
        ("memory_grow_wasm.wast", "pooling"),  # absorbing sites
        ("start_trap.wast", "ondemand"),  # traps
        ("pool_exhausted.wast", "pooling"),  # expected unlinkable
        ("host_callback.wast", "pooling"),  # host -> wasm re-entry
        ("limiter_trap_on_grow.wast", "ondemand"),
    ],
)
def test_corpus_verdicts_match_replay(name: str, allocator: str) -> None:
    replay, fork = both(scenario_sweep(CORPUS / name, allocator))
    assert replay.total > 0 and len(replay.iterations) == 2 * replay.total
    assert {i.mode for i in fork.iterations} == {"transient", "persistent"}
    assert_same(replay, fork)


def seeded_sweep(tmp_path: Path, allocator: str, header: str = "", **kw: Any) -> Any:
    return scenario_sweep(seeded.write_script(tmp_path, header), allocator, **kw)


def test_seeded_cleanup_bug_same_class_and_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded.guard_skips_memory_deallocation(monkeypatch)
    replay, fork = both(seeded_sweep(tmp_path, "pooling"))
    assert_same(replay, fork)
    first = fork.failures[0]
    assert first.verdict is FailureClass.CLEANUP_NOT_RESTORED and "pool.memories" in first.detail


def test_seeded_wrong_error_same_class_and_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded.oom_becomes_wasmtime_error(monkeypatch)
    replay, fork = both(seeded_sweep(tmp_path, "ondemand"))
    assert_same(replay, fork)
    assert {i.verdict for i in fork.failures} == {FailureClass.WRONG_ERROR}
    assert "WasmtimeError: call failed" in fork.failures[0].detail


def test_seeded_alloc_after_oom_same_class_and_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded.error_path_allocates(monkeypatch)
    replay, fork = both(seeded_sweep(tmp_path, "ondemand", mode="transient"))
    assert_same(replay, fork)
    first = fork.failures[0]
    assert first.verdict is FailureClass.ALLOC_AFTER_OOM
    assert first.after_oom[0].size == 128 and first.after_oom[0].site.function.endswith("wrap")


def test_seeded_leak_same_class_and_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = seeded.failed_store_kept_alive(monkeypatch)
    try:
        replay, fork = both(seeded_sweep(tmp_path, "ondemand", mode="transient", fail_fast=True))
    finally:
        registry.clear()
    assert_same(replay, fork)
    assert fork.failures[0].verdict is FailureClass.LEAK and "Store" in fork.failures[0].detail


def test_seeded_post_oom_failure_is_found_by_the_childs_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OOM poisons process state: only a fault-free rerun *after* the OOM sees it."""
    real = Func.__call__
    poisoned: list[bool] = []

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        if poisoned:
            return 6  # the runtime now computes garbage
        try:
            return real(self, store, *params)
        except OutOfMemory:
            poisoned.append(True)
            raise

    monkeypatch.setattr(Func, "__call__", wrap)
    sweep = seeded_sweep(tmp_path, "ondemand", mode="transient", fail_fast=True)

    def fresh_process_state(engine: str) -> OomTestResult:
        poisoned.clear()  # replay poisoned this very process
        return sweep(engine)  # type: ignore[no-any-return]

    replay, fork = both(fresh_process_state)
    assert_same(replay, fork)
    first = fork.failures[0]
    assert first.verdict is FailureClass.POST_OOM_FAILURE
    assert "fault-free rerun" in first.detail
    assert not poisoned  # the parent's state never saw the child's OOM


def test_plain_function_missed_oom_and_system_exit() -> None:
    def body() -> None:
        try_alloc(8, AllocKind.STORE)
        try:
            try_alloc(16, AllocKind.LIST)
        except OutOfMemory:
            pass
        try:
            try_alloc(24, AllocKind.FUNC)
        except OutOfMemory:
            raise SystemExit(5) from None  # must be classified, never end a child early

    def make(engine: str) -> OomTestResult:
        return OomTest(raise_on_failure=False, mode="both", engine=engine).test(body)

    replay, fork = both(make)
    assert_same(replay, fork)
    verdicts = [(i.index, i.mode, i.verdict) for i in fork.iterations]
    assert (1, "transient", FailureClass.MISSED_OOM) in verdicts
    assert (2, "transient", FailureClass.WRONG_ERROR) in verdicts


def test_fail_fast_keeps_replays_prefix_and_callbacks_in_order() -> None:
    def body() -> None:
        for i in range(12):
            try:
                try_alloc(8 + i, AllocKind.LIST)
            except OutOfMemory:
                if i == 7:
                    return  # the only swallowed allocation
                raise

    seen: dict[str, list[tuple[int, int]]] = {"replay": [], "fork": []}

    def make(engine: str) -> OomTestResult:
        def cb(it: Iteration, n: int) -> None:
            seen[engine].append((it.index, n))

        return OomTest(
            raise_on_failure=False, fail_fast=True, engine=engine, fork_jobs=3, on_iteration=cb
        ).test(body)

    replay, fork = both(make)
    assert_same(replay, fork)
    assert fork.stopped == "first failure" and fork.iterations[-1].index == 7
    assert seen["fork"] == seen["replay"] == [(i, i + 1) for i in range(8)]


def test_raise_on_failure_raises_like_replay() -> None:
    def body() -> None:
        try_alloc(8, AllocKind.STORE)
        try:
            try_alloc(16, AllocKind.LIST)
        except OutOfMemory:
            pass

    with pytest.raises(AssertionError) as info:
        OomTest(engine="fork").test(body)
    assert "missed_oom at injection index 1" in str(info.value)


# -- children that crash or hang ------------------------------------------------------------


def test_child_crash_is_a_crashed_verdict() -> None:
    parent = os.getpid()

    def body() -> None:
        try_alloc(8, AllocKind.STORE)
        try:
            try_alloc(16, AllocKind.LIST)
        except OutOfMemory:
            if os.getpid() == parent:
                raise RuntimeError("only a forked child may crash") from None
            os._exit(3)
        try:
            try_alloc(32, AllocKind.FUNC)
        except OutOfMemory:
            if os.getpid() != parent:
                import signal

                os.kill(os.getpid(), signal.SIGKILL)
            raise

    res = OomTest(raise_on_failure=False, engine="fork").test(body)
    assert res.engine == "fork"
    by_index = {it.index: it for it in res.iterations}
    assert by_index[0].verdict is FailureClass.HANDLED
    for index, how in ((1, "exited with status 3"), (2, "killed by signal SIGKILL")):
        it = by_index[index]
        assert it.verdict is FailureClass.CRASHED and it.failed
        assert [f.cls for f in it.findings] == [FailureClass.CRASHED]
        assert it.exc_type == "oomfuzz.forkengine.ChildCrashed"
        assert it.detail.startswith("crashed: the forked child") and how in it.detail
        assert it.injected is not None and it.injected.site.function.endswith("body")
    # allow_missed_oom_errors never excuses a crash.
    lenient = OomTest(raise_on_failure=False, engine="fork", allow_missed_oom_errors=True)
    assert FailureClass.CRASHED in {it.verdict for it in lenient.test(body).iterations}


def _children() -> set[int]:
    """Live child pids of this process (Linux ``/proc``), or ``set()`` where unknown."""
    pids: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{os.getpid()}/task"):
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                pids.update(int(p) for p in f.read().split())
    except OSError:
        return set()
    return pids


def test_hung_child_is_killed_at_its_deadline() -> None:
    parent = os.getpid()
    r, w = os.pipe()  # nobody ever writes: a read blocks forever

    def body() -> None:
        try_alloc(8, AllocKind.STORE)
        try:
            try_alloc(16, AllocKind.LIST)
        except OutOfMemory:
            if os.getpid() != parent:
                os.read(r, 1)
            raise

    before = _children()  # other tests may leave helpers (multiprocessing's resource tracker)
    try:
        res = OomTest(raise_on_failure=False, engine="fork", fork_timeout=1.0).test(body)
    finally:
        os.close(r)
        os.close(w)
    assert [it.verdict for it in res.iterations] == [
        FailureClass.HANDLED,
        FailureClass.TIMEOUT,
    ]
    hung = res.iterations[1]
    assert hung.exc_type == "oomfuzz.forkengine.ChildTimeout"
    assert hung.detail.startswith("timeout: the forked child did not report within 1s")
    assert _children() <= before  # every child was killed and reaped


# -- engine selection ------------------------------------------------------------------------


def counted_body() -> int:
    for _ in range(5):
        try_alloc(8, AllocKind.LIST)
    return 1


def test_scenario_opt_out_falls_back(tmp_path: Path) -> None:
    path = seeded.write_script(tmp_path, ";; oomfuzz: fork=false", "optout.wast")
    runner = ScenarioRunner(load_scenario(path), "ondemand")
    assert runner.oomfuzz_fork is False
    res = OomTest(probe=runner, engine="fork").test(runner.run)
    assert res.engine == "replay" and res.passed
    assert any("opts out" in n for n in res.notes)
    auto = OomTest(probe=runner, engine="auto").test(runner.run)
    assert auto.engine == "replay" and auto.notes == []


def test_running_thread_falls_back() -> None:
    release = threading.Event()
    t = threading.Thread(target=release.wait, name="busy-worker")
    t.start()
    try:
        res = OomTest(engine="fork").test(counted_body)
    finally:
        release.set()
        t.join()
    assert res.engine == "replay" and res.passed and len(res.iterations) == 5
    assert any("busy-worker" in n for n in res.notes)


def test_no_fork_on_this_platform_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    res = OomTest(engine="fork").test(counted_body)
    assert res.engine == "replay" and any("not available" in n for n in res.notes)


def test_async_functions_use_replay() -> None:
    async def body() -> int:
        return counted_body()

    res = asyncio.run(OomTest(engine="fork").test_async(body))
    assert res.engine == "replay" and len(res.iterations) == 5
    assert any("async" in n for n in res.notes)


def test_auto_weighs_fork_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forkengine, "_fork_cost", 1e6)
    assert OomTest(engine="auto").test(counted_body).engine == "replay"
    monkeypatch.setattr(forkengine, "_fork_cost", 0.0)
    res = OomTest(engine="auto").test(counted_body)
    assert res.engine == "fork" and len(res.iterations) == 5 and res.notes == []


def test_nondeterministic_forking_run_falls_back_to_replay() -> None:
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        for _ in range(5 if len(calls) <= 2 else 6):  # the third run (the forking one) differs
            try_alloc(8, AllocKind.LIST)

    res = OomTest(raise_on_failure=False, engine="fork").test(body)
    assert res.engine == "replay"
    assert any("forking run made 6 allocations, the dry runs 5" in n for n in res.notes)
    assert len(res.iterations) == 5


def test_bad_engine_is_rejected() -> None:
    with pytest.raises(ValueError, match="engine"):
        OomTest(engine="threads")


def test_cli_engine_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out: dict[str, Any] = {}
    for engine in ("replay", "fork"):
        path = tmp_path / f"{engine}.json"
        argv = ["sweep", str(CORPUS / "func_call.wast"), "-q", "--engine", engine]
        assert main([*argv, "--mode", "both", "--json", str(path)]) == 0
        runs = json.loads(path.read_text())["runs"]
        out[engine] = [(r["mode"], r["allocator"], r["total"], r["counts"]) for r in runs]
    assert out["fork"] == out["replay"]
    assert main(["sweep", str(CORPUS / "func_call.wast"), "--engine", "bogus"]) == 2
    assert "--engine" in capsys.readouterr().err
