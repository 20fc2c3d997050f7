"""Harness self-tests on plain Python functions (Wasmtime's smoke.rs and more)."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

import pytest

from oomfuzz.checks import CheckPolicy, FailureClass
from oomfuzz.inject import AllocationAfterOom, Injector
from oomfuzz.oomtest import DryRunError, OomTest, OomTestFailure
from oomfuzz.scenario import ScenarioRunner, load_scenario
from wasmrt.alloc import AllocKind, TryList, try_alloc
from wasmrt.errors import OutOfMemory, WasmtimeError


def ok_body() -> int:
    items: TryList[int] = TryList()
    for i in range(20):
        items.append(i)
    try_alloc(64, AllocKind.STORE)
    return sum(items)


def test_ok_body_passes() -> None:
    res = OomTest().test(ok_body)
    assert res.passed
    assert res.total == len(res.iterations) > 3
    assert all(it.verdict is FailureClass.HANDLED for it in res.iterations)
    assert res.dry_run_counts[-1] == res.dry_run_counts[-2]


def test_ignored_allocation_failure_is_missed_oom() -> None:
    def body() -> None:
        try_alloc(8, AllocKind.STORE)
        try:
            try_alloc(16, AllocKind.LIST)  # line of the swallowed failure
        except OutOfMemory:
            pass

    with pytest.raises(OomTestFailure) as info:
        OomTest().test(body)
    it = info.value.iteration
    assert it is not None and it.verdict is FailureClass.MISSED_OOM
    assert it.index == 1
    assert it.injected is not None and it.injected.kind == "list" and it.injected.size == 16
    assert it.injected.site.function.endswith("body")
    assert "missed_oom" in str(info.value)
    assert "try_alloc(16" in it.injected.traceback


def test_collect_all_and_site_table() -> None:
    def body() -> None:
        try_alloc(1, AllocKind.STORE)
        try:
            try_alloc(2, AllocKind.LIST)
        except OutOfMemory:
            pass
        try_alloc(3, AllocKind.FUNC)

    res = OomTest(raise_on_failure=False).test(body)
    assert [it.verdict for it in res.iterations] == [
        FailureClass.HANDLED,
        FailureClass.MISSED_OOM,
        FailureClass.HANDLED,
    ]
    failing = [s for s in res.sites.values() if s.status == "failing"]
    assert len(failing) == 1 and failing[0].kinds == {"list"}
    assert all(s.hits == 1 for s in res.sites.values())


def test_allocation_after_oom_is_flagged_in_strict_mode() -> None:
    def body() -> None:
        try:
            try_alloc(8, AllocKind.STORE)
        except OutOfMemory:
            try_alloc(100, AllocKind.OTHER)  # an error path that allocates
            raise

    with pytest.raises(OomTestFailure) as info:
        OomTest().test(body)
    it = info.value.iteration
    assert it is not None and it.verdict is FailureClass.ALLOC_AFTER_OOM
    assert it.after_oom[0].size == 100
    # Wasmtime's allow_alloc_after_oom accepts it (persistent: the second one fails too).
    assert OomTest(allow_alloc_after_oom=True).test(body).passed
    assert OomTest(allow_alloc_after_oom=True, alloc_succeeds_after_oom=True).test(body).passed


def test_panic_on_alloc_after_oom_cannot_be_swallowed() -> None:
    def body() -> None:
        try:
            try_alloc(8, AllocKind.STORE)
        except OutOfMemory:
            try:
                try_alloc(1, AllocKind.OTHER)
            except Exception:  # noqa: BLE001 - the point: AllocationAfterOom gets through
                pass
            raise

    res = OomTest(panic_on_alloc_after_oom=True, raise_on_failure=False).test(body)
    assert res.iterations[0].verdict is FailureClass.ALLOC_AFTER_OOM
    assert "attempted to allocate after OOM" in res.iterations[0].findings[0].detail
    assert issubclass(AllocationAfterOom, BaseException)
    assert not issubclass(AllocationAfterOom, Exception)


def test_wrong_and_spurious_errors() -> None:
    def wrong() -> None:
        try:
            try_alloc(8, AllocKind.STORE)
        except OutOfMemory as e:
            raise WasmtimeError("something else") from e

    res = OomTest(raise_on_failure=False).test(wrong)
    assert res.iterations[0].verdict is FailureClass.WRONG_ERROR
    assert "wrapped" in res.iterations[0].detail

    calls = {"n": 0}

    def flaky() -> None:
        calls["n"] += 1
        try_alloc(8, AllocKind.STORE)
        try_alloc(8, AllocKind.STORE)
        if calls["n"] > 2 and calls["n"] % 2 == 0:
            raise ValueError("boom")

    res = OomTest(raise_on_failure=False, policy=CheckPolicy(post_oom_every=0)).test(flaky)
    assert FailureClass.SPURIOUS_ERROR in {it.verdict for it in res.iterations} | {
        f.cls for it in res.iterations for f in it.findings
    } or any(it.verdict is FailureClass.HANDLED for it in res.iterations)


def test_spurious_error_when_fewer_allocations() -> None:
    state = {"n": 0}

    def body() -> None:
        state["n"] += 1
        if state["n"] > 2:  # after the dry runs, no allocation happens and it fails
            raise RuntimeError("no allocation, still an error")
        try_alloc(1, AllocKind.STORE)

    res = OomTest(raise_on_failure=False, policy=CheckPolicy(post_oom_every=0)).test(body)
    assert res.iterations[0].verdict is FailureClass.SPURIOUS_ERROR


def test_allow_missed_oom_errors_turns_failures_into_passes() -> None:
    def body() -> None:
        try:
            try_alloc(16, AllocKind.LIST)
        except OutOfMemory:
            pass

    res = OomTest(allow_missed_oom_errors=True).test(body)
    assert res.passed and res.iterations[0].verdict is FailureClass.ALLOWED


def test_absorbing_refusal_is_handled() -> None:
    def grow() -> int:
        try:
            try_alloc(65536, AllocKind.MEMORY, absorbing=True)
        except OutOfMemory:
            return -1
        try_alloc(8, AllocKind.LIST)
        return 1

    res = OomTest(policy=CheckPolicy(post_oom_every=1)).test(grow)
    assert res.passed
    assert res.iterations[0].verdict is FailureClass.HANDLED
    assert next(iter(res.sites.values())).absorbing


def test_absorbing_site_leaking_oom_is_wrong_error() -> None:
    def grow() -> None:
        try_alloc(65536, AllocKind.MEMORY, absorbing=True)

    res = OomTest(raise_on_failure=False).test(grow)
    assert res.iterations[0].verdict is FailureClass.WRONG_ERROR
    assert "absorbing" in res.iterations[0].detail


def test_counts_stabilise_or_fail_after_ten_dry_runs() -> None:
    state = {"n": 0}

    def warming() -> None:  # first run warms a cache
        state["n"] += 1
        for _ in range(3 if state["n"] == 1 else 2):
            try_alloc(1, AllocKind.OTHER)

    res = OomTest().test(warming)
    assert res.dry_run_counts == [3, 2, 2] and res.total == 2

    def growing() -> None:
        state["n"] += 1
        for _ in range(state["n"]):
            try_alloc(1, AllocKind.OTHER)

    with pytest.raises(
        DryRunError, match=r"did not stabilize after 10 dry-run iterations \(last count: \d+\)"
    ):
        OomTest().test(growing)


def test_dry_run_error_fails() -> None:
    def bad() -> None:
        raise KeyError("nope")

    with pytest.raises(DryRunError, match="dry run"):
        OomTest(raise_on_failure=False).test(bad)


def test_persistent_mode_fails_every_later_allocation() -> None:
    seen: list[list[int]] = []

    def body() -> None:
        got = []
        for i in range(4):
            try:
                try_alloc(1, AllocKind.MEMORY, absorbing=True)
                got.append(i)
            except OutOfMemory:
                pass
        seen.append(got)

    OomTest(mode="persistent").test(body)
    assert seen[-4:] == [[], [0], [0, 1], [0, 1, 2]] or [0, 1, 2] in seen
    persistent_runs = [s for s in seen if len(s) < 4]
    assert [0, 1] in persistent_runs and [0, 1, 3] not in seen


def test_both_modes_and_max_iters() -> None:
    res = OomTest(mode="both", max_iters=5).test(ok_body)
    assert len(res.iterations) == 5
    assert [it.mode for it in res.iterations[:2]] == ["transient", "persistent"]
    assert res.stopped == "max_iters=5"


def test_max_duration_zero_stops_immediately() -> None:
    res = OomTest(max_duration=0.0).test(ok_body)
    assert res.iterations == [] and res.stopped.startswith("max_duration")


def test_seeded_fuzz_is_reproducible() -> None:
    with pytest.raises(ValueError, match="requires max_iters"):
        OomTest().fuzz(ok_body)
    a = OomTest(max_iters=12, seed=7).fuzz(ok_body)
    b = OomTest(max_iters=12, seed=7).fuzz(ok_body)
    c = OomTest(max_iters=12, seed=8).fuzz(ok_body)
    assert [it.index for it in a.iterations] == [it.index for it in b.iterations]
    assert [it.index for it in a.iterations] != [it.index for it in c.iterations]
    assert len(a.iterations) == 12


def test_random_injector_is_seeded() -> None:
    def run(seed: int) -> list[int]:
        inj = Injector(mode="random", probability=0.5, seed=seed)
        out = []
        with inj.installed():
            for i in range(40):
                try:
                    try_alloc(1, AllocKind.OTHER)
                except OutOfMemory:
                    out.append(i)
        return out

    assert run(3) == run(3) != run(4)


def test_post_oom_failure_detected() -> None:
    state = {"poisoned": False}

    def body() -> int:
        if state["poisoned"]:
            return 2
        try_alloc(1, AllocKind.MODULE)
        try:
            try_alloc(1, AllocKind.CODE)
        except OutOfMemory:
            state["poisoned"] = True  # a global cache left half-built
            raise
        return 1

    res = OomTest(raise_on_failure=False).test(body)
    classes = {f.cls for it in res.iterations for f in it.findings}
    assert FailureClass.POST_OOM_FAILURE in classes


class _Store:
    pass


_KEEP: list[object] = []


class _Probe:
    def __init__(self, leak_at: int) -> None:
        self.leak_at = leak_at
        self.runs = 0
        self.last: weakref.ref[_Store] | None = None
        self.live = 0

    def before_run(self) -> None:
        self.runs += 1

    def resources(self) -> dict[str, object]:
        return {"live_instances": self.live}

    def refs(self) -> list[tuple[str, weakref.ref[object]]]:
        return [("store", self.last)] if self.last is not None else []  # type: ignore[list-item]

    def body(self) -> None:
        store = _Store()
        self.last = weakref.ref(store)
        self.live += 1
        try:
            try_alloc(8, AllocKind.STORE)
            try_alloc(8, AllocKind.INSTANCE)
        except OutOfMemory:
            if _current_index(self) == self.leak_at:
                _KEEP.append(store)  # a store kept alive by an error path
                raise  # ... and an instance count never decremented
            self.live -= 1
            raise
        self.live -= 1


def _current_index(p: _Probe) -> int:
    return p.runs


def test_leak_and_cleanup_checks_with_probe() -> None:
    probe = _Probe(leak_at=-1)
    assert OomTest(probe=probe).test(probe.body).passed
    probe = _Probe(leak_at=probe.runs)  # never matches: sanity
    probe2 = _Probe(leak_at=4)  # 3 dry runs... the 4th run is injection index 0
    res = OomTest(probe=probe2, raise_on_failure=False, policy=CheckPolicy(post_oom_every=0)).test(
        probe2.body
    )
    classes = {f.cls for it in res.iterations for f in it.findings}
    assert FailureClass.LEAK in classes
    assert FailureClass.CLEANUP_NOT_RESTORED in classes
    _KEEP.clear()


def test_tracemalloc_growth_is_a_leak() -> None:
    hoard: list[bytes] = []

    def body() -> None:
        try:
            try_alloc(8, AllocKind.STORE)
        except OutOfMemory:
            hoard.append(bytes(20000))  # retained on every failing run
            raise

    pol = CheckPolicy(post_oom_every=0, tracemalloc_every=1)
    res = OomTest(raise_on_failure=False, policy=pol, allow_alloc_after_oom=True).test(body)
    leak = [f for it in res.iterations for f in it.findings if f.cls is FailureClass.LEAK]
    assert leak and "tracemalloc" in leak[0].detail and "harness.py" in leak[0].detail
    assert "every one of 3 repeated runs" in leak[0].detail


#: The seeded leak: a module-level list that grows on every run of the code under test.
_GROWING: list[bytearray] = []


def test_tracemalloc_flags_a_seeded_leak_but_not_a_clean_scenario() -> None:
    corpus = Path(__file__).resolve().parents[2] / "corpus"
    runner = ScenarioRunner(load_scenario(corpus / "func_call.wast"), "ondemand")
    pol = CheckPolicy(post_oom_every=0, tracemalloc_every=1)

    def seeded() -> object:
        _GROWING.append(bytearray(16384))  # the bug: kept forever, on every run
        return runner.run()

    def sweep(fn: object) -> list[str]:
        res = OomTest(probe=runner, policy=pol, indices=[0, 15, 30], raise_on_failure=False).test(
            fn
        )  # type: ignore[arg-type]
        assert res.total > 30 and len(res.iterations) == 3
        assert all(it.verdict is not FailureClass.NOT_REACHED for it in res.iterations)
        return [
            f.detail for it in res.iterations for f in it.findings if f.cls is FailureClass.LEAK
        ]

    try:
        leaks = sweep(seeded)
    finally:
        _GROWING.clear()
    assert len(leaks) == 3 and all("test_oomfuzz_harness.py" in d for d in leaks), leaks
    assert sweep(runner.run) == []  # the same scenario without the seeded leak is clean


def test_tracemalloc_tolerates_one_off_growth() -> None:
    cache: list[bytes] = []
    calls = {"n": 0}

    def body() -> None:
        calls["n"] += 1
        if calls["n"] == 6:  # a cache filled once, in the middle of the measured runs
            cache.append(bytes(50000))
        try_alloc(8, AllocKind.STORE)
        try_alloc(8, AllocKind.LIST)

    pol = CheckPolicy(post_oom_every=0, tracemalloc_every=1)
    res = OomTest(policy=pol, indices=[0]).test(body)
    assert res.passed and calls["n"] == 2 + 1 + 1 + 3  # dry runs, injection, warm-up, measured
    with pytest.raises(ValueError, match="tracemalloc_repeats"):
        CheckPolicy(tracemalloc_repeats=0)


def test_async_entry_points() -> None:
    async def body() -> int:
        await asyncio.sleep(0)
        try_alloc(4, AllocKind.CALL)
        await asyncio.sleep(0)
        try_alloc(4, AllocKind.CALL)
        return 3

    res = asyncio.run(OomTest().test_async(body))
    assert res.passed and res.total == 2
    res = asyncio.run(OomTest(max_iters=4, seed=1).fuzz_async(body))
    assert len(res.iterations) == 4

    async def swallow() -> None:
        try:
            try_alloc(4, AllocKind.CALL)
        except OutOfMemory:
            pass

    with pytest.raises(OomTestFailure):
        asyncio.run(OomTest().test_async(swallow))


def test_keyboard_interrupt_stops_the_sweep() -> None:
    def body() -> None:
        try:
            try_alloc(1, AllocKind.OTHER)
        except OutOfMemory:
            raise KeyboardInterrupt from None

    with pytest.raises(KeyboardInterrupt):
        OomTest().test(body)


def test_knob_validation() -> None:
    with pytest.raises(ValueError):
        OomTest(mode="sometimes")
    with pytest.raises(ValueError):
        OomTest(mode="persistent", alloc_succeeds_after_oom=True)
    assert OomTest(allow_alloc_after_oom=True).modes == ("persistent",)
    assert OomTest().modes == ("transient",)
