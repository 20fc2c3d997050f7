"""The seams the next features land on: checks, engines, scenario formats, executors, units.

Each test plugs something new in through its one registry (monkeypatched, so
the registry is restored) and checks that the sweep uses it end to end.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

import pytest

from oomfuzz import checks, engines, scenario
from oomfuzz.checks import CHECKS, FailureClass, Finding, JudgedRun, RunCheck
from oomfuzz.cli import main
from oomfuzz.context import Scenario, ScenarioContext
from oomfuzz.engines import ENGINES, ReplayEngine
from oomfuzz.oomtest import OomTest, OomTestResult
from oomfuzz.plan import SweepPlan
from oomfuzz.scenario import FORMATS, find_scenarios, load_scenario, read_text
from oomfuzz.sweep import InProcess, ProcessPool, SiteFirsts, Unit, run_unit, run_units
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory

T = TypeVar("T")
R = TypeVar("R")
ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "corpus"


def five_allocations() -> int:
    for _ in range(5):
        try_alloc(16, AllocKind.OTHER)
    return 5


# -- checks ----------------------------------------------------------------------------


def test_every_failure_class_is_judged_by_a_registered_check() -> None:
    judged = {c.failure for c in CHECKS}
    assert judged == set(FailureClass) - {FailureClass.ALLOWED}
    assert checks.FAILURE_ORDER == (
        FailureClass.CRASHED,
        FailureClass.TIMEOUT,
        FailureClass.MISSED_OOM,
        FailureClass.WRONG_ERROR,
        FailureClass.SPURIOUS_ERROR,
        FailureClass.GUEST_ABORT,
        FailureClass.GUEST_CORRUPT,
        FailureClass.ALLOC_AFTER_OOM,
        FailureClass.NOT_ATOMIC,
        FailureClass.CLEANUP_NOT_RESTORED,
        FailureClass.LEAK,
        FailureClass.POST_OOM_FAILURE,
        FailureClass.RETRY_FAILURE,
        FailureClass.HOST_MEMORY_ERROR,
        FailureClass.HOST_ERROR,
    )
    assert checks.MISSABLE == {
        FailureClass.MISSED_OOM,
        FailureClass.WRONG_ERROR,
        FailureClass.SPURIOUS_ERROR,
    }


class _ThirdAllocationLeaks(RunCheck):
    """A stand-in for a new check: it judges the run alone and fails index 2."""

    failure: ClassVar[FailureClass] = FailureClass.LEAK
    knob = "leak_every"

    def inspect(self, run: JudgedRun) -> list[Finding]:
        return [Finding(self.failure, "seeded by the test")] if run.index == 2 else []


@pytest.mark.parametrize("engine", ["replay", "fork"])
def test_a_registered_check_judges_every_run_in_every_engine(
    monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    if engine == "fork" and not hasattr(os, "fork"):
        pytest.skip("os.fork is not available on this platform")
    monkeypatch.setattr(checks, "CHECKS", [*CHECKS])
    checks.register(_ThirdAllocationLeaks)
    monkeypatch.setattr("oomfuzz.plan.CHECKS", checks.CHECKS)
    res = OomTest(raise_on_failure=False, engine=engine, fork_jobs=1).test(five_allocations)
    assert res.engine == engine
    assert [it.index for it in res.failures] == [2]
    assert res.failures[0].verdict is FailureClass.LEAK
    assert res.failures[0].findings[-1].detail == "seeded by the test"


def test_the_policy_knob_samples_a_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("oomfuzz.plan.CHECKS", [*CHECKS, _ThirdAllocationLeaks()])
    policy = checks.CheckPolicy(leak_every=2)  # ordinals 0, 2, 4: index 2 is ordinal 2
    assert OomTest(raise_on_failure=False, policy=policy).test(five_allocations).failures
    policy = checks.CheckPolicy(leak_every=0)
    assert not OomTest(raise_on_failure=False, policy=policy).test(five_allocations).failures


# -- engines -----------------------------------------------------------------------------


class _RecordingEngine(ReplayEngine):
    """A new engine: replays, and remembers the plans it ran."""

    name = "recording"

    def __init__(self) -> None:
        self.plans: list[SweepPlan] = []

    def run(self, plan: SweepPlan, *, when_cheaper: bool = False) -> OomTestResult:
        self.plans.append(plan)
        return super().run(plan)


class _NeverAvailable(ReplayEngine):
    name = "never"

    def unavailable(self, plan: SweepPlan) -> str | None:
        return "the test says so"


def test_a_registered_engine_runs_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _RecordingEngine()
    monkeypatch.setitem(ENGINES, "recording", rec)
    res = OomTest(engine="recording").test(five_allocations)
    assert len(rec.plans) == 1 and res.total == 5 and res.passed
    assert [it.verdict for it in res.iterations] == [FailureClass.HANDLED] * 5


def test_an_unavailable_engine_falls_back_to_replay_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(ENGINES, "never", _NeverAvailable())
    res = OomTest(engine="never").test(five_allocations)
    assert res.engine == "replay" and res.passed
    assert res.notes == ["never engine unavailable (the test says so); used replay"]


def test_unknown_engines_are_refused() -> None:
    with pytest.raises(ValueError, match="engine must be one of replay, fork, auto"):
        OomTest(engine="warp")
    assert engines.engine_choices() == ("replay", "fork", "auto")


# -- scenario formats -----------------------------------------------------------------------


class _LinesFormat:
    """A new format: ``alloc N`` lines, each a ``try_alloc(N)``; ``swallow`` eats the OOMs."""

    suffix = ".lines"
    pattern = "*.lines"

    def discover(self, path: Path) -> bool:
        return True

    def load(self, path: Path) -> Scenario:
        text = read_text(path)
        return Scenario(path, {"allocator": "ondemand"}, text, format=self.suffix)

    def run(self, scn: Scenario, ctx: ScenarioContext) -> None:
        swallow = "swallow" in scn.text
        for line in scn.text.split("\n"):
            if line.startswith("alloc "):
                try:
                    try_alloc(int(line.split()[1]), AllocKind.OTHER)
                except OutOfMemory:
                    if not swallow:
                        raise
                ctx.record(line)


def test_a_registered_format_is_found_loaded_and_swept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(FORMATS, ".lines", _LinesFormat())
    (tmp_path / "ok.lines").write_text("alloc 8\nalloc 16\nalloc 32\n")
    (tmp_path / "bug.lines").write_text("swallow\nalloc 8\nalloc 16\n")
    assert [p.name for p in find_scenarios([str(tmp_path)])] == ["bug.lines", "ok.lines"]
    assert load_scenario(tmp_path / "ok.lines").format == ".lines"
    assert run_unit(Unit(str(tmp_path / "ok.lines"), "transient", "ondemand")).iterations == 3
    bug = run_unit(Unit(str(tmp_path / "bug.lines"), "transient", "ondemand"))
    assert {f.cls for f in bug.failures} == {FailureClass.MISSED_OOM}
    assert main(["sweep", str(tmp_path / "ok.lines"), "-q"]) == 0
    assert main(["sweep", str(tmp_path), "-q"]) == 1
    capsys.readouterr()


def test_unregistered_suffixes_are_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "prog.c"
    f.write_text("int main(void) { return 0; }\n")
    with pytest.raises(
        scenario.ScenarioError, match=r"a scenario is a \.wast or \.py or \.wasm or \.wat file"
    ):
        load_scenario(f)


# -- units and executors ---------------------------------------------------------------------


class _ThreadPool:
    """A stand-in for a remote executor: tasks elsewhere, results in completion order."""

    in_process = False

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        with cf.ThreadPoolExecutor(self.jobs) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for fut in cf.as_completed(futures):
                yield futures[fut], fut.result()


def _comparable(rep: object) -> dict[str, object]:
    d = dict(rep.to_dict())  # type: ignore[attr-defined]
    d.pop("elapsed")
    return d


def test_every_executor_gives_the_same_reports() -> None:
    units = [
        Unit(str(CORPUS / "func_call.wast"), "transient", "ondemand", k, 2) for k in range(2)
    ] + [Unit(str(CORPUS / "api_store.py"), "persistent", "pooling")]
    here = sorted(run_units(units, InProcess()), key=lambda r: r[0])
    want = [_comparable(rep) for _, rep in here]
    assert sum(r.iterations for _, r in here) > 10
    for where in (_ThreadPool(2), ProcessPool(2)):
        got = sorted(run_units(units, where), key=lambda r: r[0])
        assert [_comparable(rep) for _, rep in got] == want


def test_site_firsts_injects_each_site_once_plus_extra() -> None:
    path = str(CORPUS / "func_call.wast")
    full = run_unit(Unit(path, "transient", "ondemand"))
    firsts = run_unit(Unit(path, "transient", "ondemand", select=SiteFirsts(extra=3, seed=1)))
    # A site is (file, line, function), as oomfuzz.sites declares it.
    kinds = {(s.site, k) for s in full.sites.values() for k in s.kinds}
    assert firsts.iterations == len(kinds) + 3 < full.iterations
    injected = {s.site for s in firsts.sites.values() if s.injected}
    assert injected == {site for site, _kind in kinds}


# -- layering inside oomfuzz -------------------------------------------------------------------


def _imports(tree: ast.Module) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement and whether it sits inside a function (TYPE_CHECKING: skipped)."""

    def walk(node: ast.AST, in_func: bool) -> Iterator[tuple[ast.stmt, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_func
            inner = in_func or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from walk(child, inner)

    return walk(tree, False)


def _oomfuzz_graph() -> tuple[dict[str, set[str]], list[str]]:
    src = ROOT / "src" / "oomfuzz"
    modules = {f"oomfuzz.{p.stem}": p for p in src.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    in_function: list[str] = []
    for name, path in modules.items():
        graph[name] = set()
        for node, in_func in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
            )
            if in_func and any(t.split(".")[0] in ("oomfuzz", "wasmrt") for t in targets):
                in_function.append(f"{path.name}:{node.lineno}")
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph, in_function


def test_oomfuzz_modules_import_one_way() -> None:
    graph, in_function = _oomfuzz_graph()
    assert in_function == [], "imports of project modules inside functions"
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 2:
            return
        assert state.get(m) != 1, "import cycle: " + " -> ".join([*path, m])
        state[m] = 1
        for dep in sorted(graph[m]):
            visit(dep, [*path, m])
        state[m] = 2
        order.append(m)

    for m in sorted(graph):
        visit(m, [])
    faces = {"oomfuzz.cli", "oomfuzz.__main__", "oomfuzz.plugin"}
    assert not [m for m in graph if graph[m] & faces and m not in faces], "a face used as a library"
    assert "oomfuzz.sweep" in graph["oomfuzz.cli"] and "oomfuzz.sweep" in graph["oomfuzz.plugin"]
