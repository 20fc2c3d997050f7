"""Module reuse across a unit's runs (``oomfuzz.reuse``): faster, and the same sweep.

Reuse must be invisible in a sweep's results: the same allocation points, the
same injected sites and verdicts at every index, as when every run builds its
modules for real (``reuse=false``); points inside text reading, decoding and
validation are still injected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oomfuzz.checks import CheckPolicy, FailureClass
from oomfuzz.inject import Injector
from oomfuzz.oomtest import OomTest, OomTestResult
from oomfuzz.reuse import ModuleReuse
from oomfuzz.scenario import ScenarioRunner, load_scenario
from oomfuzz.sweep import Unit, oom_test
from oomfuzz.target import parse_target
from wasmrt import Engine
from wasmrt.alloc import install_hook
from wasmrt.errors import OutOfMemory

WAST = """{header}
(module $m
  (memory 1)
  (table 2 funcref)
  (global $g (mut i32) (i32.const 7))
  (func $f (export "f") (param i32) (result i32)
    (i32.add (local.get 0) (global.get $g)))
  (func (export "grow") (result i32) (memory.grow (i32.const 1)))
  (elem (i32.const 0) $f))
(assert_return (invoke "f" (i32.const 1)) (i32.const 8))
(assert_return (invoke "grow") (i32.const 1))
(module (func (export "g") (result i32) (i32.const 3)))
(assert_return (invoke "g") (i32.const 3))
"""

PROGRAM = """{header}
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def sweep(path: Path, mode: str, target: str = "all") -> tuple[OomTestResult, ModuleReuse]:
    scn = load_scenario(path)
    runner = ScenarioRunner(scn, "ondemand")
    unit = Unit(str(path), mode, "ondemand", engine="replay", target=parse_target(target))
    return oom_test(scn, runner, unit).test(runner.run), runner.builds


def digest(result: OomTestResult) -> list[tuple[object, ...]]:
    return [
        (
            it.index,
            it.verdict.value,
            it.allocations,
            str(it.injected.site) if it.injected else None,
            it.injected.kind if it.injected else None,
            len(it.after_oom),
        )
        for it in result.iterations
    ]


def write(tmp_path: Path, name: str, text: str, reuse: bool) -> Path:
    path = tmp_path / ("on" if reuse else "off") / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.format(header="" if reuse else ";; oomfuzz: reuse=false"))
    return path


@pytest.mark.parametrize("mode", ["transient", "persistent"])
@pytest.mark.parametrize(("name", "text"), [("s.wast", WAST), ("p.wat", PROGRAM)])
def test_reuse_gives_the_sweep_real_builds_give(
    tmp_path: Path, name: str, text: str, mode: str
) -> None:
    with_reuse, kept = sweep(write(tmp_path, name, text, reuse=True), mode)
    without, real = sweep(write(tmp_path, name, text, reuse=False), mode)
    assert with_reuse.total == without.total > 0
    assert digest(with_reuse) == digest(without)
    assert set(with_reuse.sites) == set(without.sites)
    assert kept.reused > 0 and real.reused == 0
    # The points inside the module's build are swept (and handled) as before.
    injected = {it.injected.site.file for it in with_reuse.iterations if it.injected}
    assert any(f.startswith(("wasmrt/binary/", "wasmrt/text/")) for f in injected)
    assert any(f == "wasmrt/validate.py" for f in injected) or name == "s.wast"
    assert with_reuse.passed


def test_reuse_keeps_a_targets_point_numbering(tmp_path: Path) -> None:
    with_reuse, kept = sweep(write(tmp_path, "s.wast", WAST, True), "transient", "host")
    without, _ = sweep(write(tmp_path, "s.wast", WAST, False), "transient", "host")
    assert digest(with_reuse) == digest(without)
    assert kept.reused > 0


def recorded_build(reuse: ModuleReuse, owner: object, engine: Engine) -> Injector:
    # Stacks deep enough to reach this test's lines: builds from two of them differ.
    inj = Injector(mode="count", record_all=True, stack_depth=40)
    with install_hook(inj):
        reuse.module(engine, owner, lambda: b"\0asm\1\0\0\0")
    return inj


def test_a_build_is_reused_only_after_two_recorded_builds_agree() -> None:
    reuse, owner, engine = ModuleReuse(), object(), Engine()
    runs = []
    for _ in range(3):  # one call site: the recorded stacks agree
        runs.append(recorded_build(reuse, owner, engine))
        if len(runs) < 3:
            assert reuse.built == len(runs) and reuse.reused == 0
    assert reuse.reused == 1 and runs[0].count > 0
    assert [(r.index, r.kind, r.site, r.stack) for r in runs[2].records] == [
        (r.index, r.kind, r.site, r.stack) for r in runs[0].records
    ]


def test_builds_made_from_different_places_are_not_reused() -> None:
    reuse, owner, engine = ModuleReuse(), object(), Engine()
    recorded_build(reuse, owner, engine)
    recorded_build(reuse, owner, engine)
    recorded_build(reuse, owner, engine)
    assert reuse.reused == 0


def test_a_plan_refusing_inside_the_build_builds_for_real() -> None:
    reuse, owner, engine = ModuleReuse(), object(), Engine()
    n = 0
    for _ in range(2):
        n = recorded_build(reuse, owner, engine).count
    for index in range(n):
        inj = Injector(mode="transient", fail_at=index)
        with install_hook(inj), pytest.raises(OutOfMemory):
            reuse.module(engine, owner, lambda: b"\0asm\1\0\0\0")
        assert inj.oom_raised is not None and inj.oom_raised.index == index
    assert reuse.reused == 0
    past = Injector(mode="transient", fail_at=n)
    with install_hook(past):
        reuse.module(engine, owner, lambda: b"\0asm\1\0\0\0")
    assert reuse.reused == 1 and past.count == n and not past.injected


def test_persistent_and_random_plans_are_judged_conservatively() -> None:
    reuse, owner, engine = ModuleReuse(), object(), Engine()
    inj = recorded_build(reuse, owner, engine)
    records = inj.records
    assert Injector(mode="persistent", fail_at=0).refuses_within(records)
    assert Injector(mode="persistent", fail_at=len(records) - 1).refuses_within(records)
    assert not Injector(mode="persistent", fail_at=len(records)).refuses_within(records)
    assert Injector(mode="random", probability=0.0).refuses_within(records)
    assert not Injector(mode="count").refuses_within(records)


def test_a_plan_asking_for_real_builds_gets_them() -> None:
    # The tracemalloc check's re-runs: renewed modules share state that settles
    # over several runs, which that check would take for growth.
    reuse, owner, engine = ModuleReuse(), object(), Engine()
    n = 0
    for _ in range(2):
        n = recorded_build(reuse, owner, engine).count
    built = reuse.built
    inj = Injector(mode="transient", fail_at=n, real_builds=True)
    with install_hook(inj):
        reuse.module(engine, owner, lambda: b"\0asm\1\0\0\0")
    assert reuse.reused == 0 and inj.count == n and built == 2


def test_the_tracemalloc_check_measures_real_builds(tmp_path: Path) -> None:
    # A WAST script of 400 modules, the full tracemalloc check at an injection in its
    # last one: the module reuse of the injected runs must not read as growth (the
    # renewed modules' shared state settled over several re-runs: +14, +14, +7 KB, a
    # false leak, until the check's re-runs built their modules for real).
    path = tmp_path / "many.wast"
    path.write_text(
        "\n".join(
            f'(module (func (export "f") (result i32) (i32.const {i})))\n'
            f'(assert_return (invoke "f") (i32.const {i}))'
            for i in range(400)
        )
    )
    runner = ScenarioRunner(load_scenario(path), "ondemand")
    total = OomTest(raise_on_failure=False, probe=runner, indices=[]).test(runner.run).total
    result = OomTest(
        raise_on_failure=False,
        probe=runner,
        indices=[total - 5],
        policy=CheckPolicy(tracemalloc_every=1),
    ).test(runner.run)
    assert [it.verdict for it in result.iterations] == [FailureClass.HANDLED]
