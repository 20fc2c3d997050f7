"""Retry and continue (``retry_failure``) and the post-OOM rerun on the same engine and
module: seeded bugs only these reruns can see, the corpus's kinds of steps, and the
Python scenarios' opt-in (``ctx.step``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import seeded

from oomfuzz.checks import CheckPolicy, FailureClass
from oomfuzz.inject import Injector
from oomfuzz.oomtest import OomTest, OomTestResult
from oomfuzz.plan import execute
from oomfuzz.scenario import ScenarioRunner, load_scenario
from wasmrt.errors import OutOfMemory

TWO_MODULES = """\
;; oomfuzz: limits.instances=2
(module $a
  (memory (export "memory") 1)
  (data (i32.const 0) "\\05")
  (func (export "get") (result i32) (i32.load8_u (i32.const 0))))
(module $b (func (export "seven") (result i32) (i32.const 7)))
(assert_return (invoke $a "get") (i32.const 5))
(assert_return (invoke $b "seven") (i32.const 7))
"""


def sweep(
    path: Path,
    allocator: str = "ondemand",
    mode: str = "transient",
    engine: str = "replay",
    **policy: int,
) -> OomTestResult:
    runner = ScenarioRunner(load_scenario(path), allocator)
    return OomTest(
        raise_on_failure=False,
        probe=runner,
        mode=mode,
        engine=engine,
        policy=CheckPolicy(**policy),
    ).test(runner.run)


def script(tmp_path: Path, text: str, name: str = "s.wast") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_unbroken_runtime_survives_retry_and_continue(tmp_path: Path) -> None:
    path = script(tmp_path, TWO_MODULES)
    for mode in ("transient", "persistent"):
        for allocator in ("ondemand", "pooling"):
            res = sweep(path, allocator, mode)
            assert res.passed, [it.detail for it in res.failures]


@pytest.mark.parametrize("engine", ["replay", "fork"])
def test_a_store_count_left_after_a_failed_instantiate_is_a_retry_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    seeded.failed_instantiate_keeps_store_count(monkeypatch)
    path = script(tmp_path, TWO_MODULES)
    # The failed instantiate changed the store's counts, which the atomicity check
    # sees first; switched off, only retry-and-continue can see the damage.
    res = sweep(path, engine=engine, atomicity=False)
    assert res.engine == engine
    assert res.failures, "the seeded bug went unnoticed"
    assert {it.verdict for it in res.failures} == {FailureClass.RETRY_FAILURE}
    it = res.failures[0]
    assert "after retrying line 2 (ModuleCommand) on the same store" in it.detail
    assert "instance count too high" in it.detail
    # The culprit: an allocation inside instantiate, after the store's counts were bumped.
    assert it.injected is not None
    assert it.injected.site.file == "wasmrt/vm/instance.py"
    # With both on, both findings are there and the verdict is the atomicity one.
    both = sweep(path, engine=engine)
    assert {it.verdict for it in both.failures} == {FailureClass.NOT_ATOMIC}
    assert any(f.cls is FailureClass.RETRY_FAILURE for it in both.failures for f in it.findings)
    # Neither the fresh-store rerun nor the other checks see it.
    assert sweep(path, retry_every=0, atomicity=False).passed


def test_retry_stops_refusing_in_persistent_mode(tmp_path: Path) -> None:
    path = script(tmp_path, TWO_MODULES)
    runner = ScenarioRunner(load_scenario(path), "ondemand")
    base = execute(runner.run, Injector("count"), runner)
    for index in range(0, base.injector.count, 7):
        inj = Injector("persistent", fail_at=index)
        inj.retry = True
        out = execute(runner.run, inj, runner)
        assert inj.retried, index  # every injection here reaches a command boundary
        # The run went on after the OOM with the fault-free results, and still ends with it.
        assert inj.continued == base.value and not inj.continued_error, index
        assert isinstance(out.exc, OutOfMemory), (index, out.exc_text)
        assert not inj.after_oom  # the retry's allocations are not "after OOM"


def test_a_module_damaged_by_a_failed_instantiate_is_a_post_oom_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The post-OOM rerun makes a new store on the injected run's engine and Module
    # (what an embedder does); a recompiled module would hide this bug.
    seeded.failed_instantiate_empties_module_data(monkeypatch)
    path = seeded.write_script(tmp_path)
    res = sweep(path, retry_every=0)
    assert res.failures, "the seeded bug went unnoticed"
    it = res.failures[0]
    assert it.verdict is FailureClass.POST_OOM_FAILURE
    assert "returned 0, expected" in it.detail
    assert it.injected is not None and it.injected.site.file.startswith("wasmrt/")


def test_the_post_oom_rerun_reuses_the_engine_and_module(tmp_path: Path) -> None:
    path = seeded.write_script(tmp_path)
    runner = ScenarioRunner(load_scenario(path), "ondemand")
    execute(runner.run, Injector("count"), runner)
    kept = runner._kept
    assert kept is not None and len(kept.modules) == 1
    fresh = Injector("count")
    execute(runner.run, fresh, runner)
    again = Injector("count")
    again.reuse = True
    out = execute(runner.run, again, runner)
    assert out.exc is None
    # No engine and no compilation: fewer allocations than a fresh run.
    assert again.count < fresh.count


PY_SCENARIO = """
# oomfuzz: allocator=ondemand
WAT = '(module (func (export "f") (result i32) (i32.const 41)))'


def scenario(ctx):
    engine = ctx.step(ctx.engine)
    store = ctx.step(ctx.store, engine)
    linker = ctx.step(ctx.api("Linker"), engine)
    module = ctx.step(ctx.module, engine, WAT)
    inst = ctx.step(linker.instantiate, store, module)
    ctx.track(inst, "Instance")
    ctx.record(ctx.step(lambda: inst.exports(store)["f"](store) + 1, label="call f"))
"""


def test_python_scenarios_opt_in_with_steps(tmp_path: Path) -> None:
    path = script(tmp_path, PY_SCENARIO, "steps.py")
    runner = ScenarioRunner(load_scenario(path), "ondemand")
    base = execute(runner.run, Injector("count"), runner)
    assert base.value == ["42"]
    retried = 0
    for index in range(base.injector.count):
        inj = Injector("transient", fail_at=index)
        inj.retry = True
        out = execute(runner.run, inj, runner)
        retried += bool(inj.retried)
        assert inj.continued == ["42"] and not inj.continued_error, index
        assert isinstance(out.exc, OutOfMemory), (index, out.exc_text)
    assert retried == base.injector.count
    assert sweep(path).passed
