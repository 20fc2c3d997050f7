"""oomfuzz's API for embedders: benign regions, the long-lived form, fixtures and probes
through the marker, per-unit setup and lifecycle scenarios (issue 20).

The code under test here is plain Python asking ``try_alloc`` (an embedder's
own allocations through wasmrt's hook), so each sweep is a few dozen runs.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

import oomfuzz
from oomfuzz import FailureClass, Injector, Lifecycle, OomTest, Step
from oomfuzz.minimize import minimize
from oomfuzz.scenario import ScenarioRunner, find_scenarios, load_scenario
from oomfuzz.sweep import Unit, run_unit
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory

#: Options of the in-process pytest runs below. No faulthandler: its teardown restores
#: the signal handlers it found when the outer session started, which removes the ones
#: wasmtime (the test oracle) installed since, and a later wasm trap in the oracle
#: then kills the worker with SIGILL.
INNER_PYTEST = ["-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:faulthandler"]


def _alloc(n: int = 1) -> None:
    for _ in range(n):
        try_alloc(8, AllocKind.OTHER)


def _classes(result: oomfuzz.OomTestResult) -> set[FailureClass]:
    return {f.cls for it in result.failures for f in it.findings if f.cls.is_failure}


# -- benign regions ---------------------------------------------------------------------


def _fails_then(cleanup_allocs: int, *, benign: bool, retry: bool = False) -> None:
    try:
        _alloc(3)
    except OutOfMemory:
        if retry:
            _alloc(1)  # a retry: allocating after the OOM outside any region
        raise
    finally:
        if benign:
            with oomfuzz.cleanup():
                _alloc(cleanup_allocs)
        else:
            _alloc(cleanup_allocs)


@pytest.mark.parametrize("mode", ["transient", "persistent"])
def test_cleanup_region_allows_allocations_after_oom(mode: str) -> None:
    result = OomTest(mode=mode, raise_on_failure=False).test(lambda: _fails_then(2, benign=True))
    assert result.passed, [it.detail for it in result.failures]
    assert len(result.iterations) == 5


def test_allocations_after_oom_outside_a_region_stay_findings() -> None:
    result = OomTest(raise_on_failure=False).test(lambda: _fails_then(2, benign=False))
    assert _classes(result) == {FailureClass.ALLOC_AFTER_OOM}
    both = OomTest(raise_on_failure=False).test(lambda: _fails_then(2, benign=True, retry=True))
    assert FailureClass.ALLOC_AFTER_OOM in _classes(both)  # the region does not hide the retry


def test_cleanup_region_counts_and_injects_before_the_oom() -> None:
    inj = Injector(mode="transient", fail_at=1)
    with inj.installed(), pytest.raises(OutOfMemory), oomfuzz.cleanup():
        _alloc(3)  # index 1 inside the region is still refused: no OOM happened yet
    assert inj.count == 2 and not inj.after_oom
    assert not oomfuzz.inject.in_cleanup()


# -- the long-lived form -----------------------------------------------------------------


class Host:
    """A tiny embedder object; ``bug`` picks one seeded mistake."""

    def __init__(self, bug: str = "") -> None:
        self.bug = bug
        self.setup_done: bool | None = None
        self.registry: dict[str, int] = {}

    def _ensure_setup(self) -> None:
        if self.setup_done is not None:
            return
        if self.bug == "early_setup":
            self.setup_done = False  # saved before it is complete
        _alloc(2)
        self.setup_done = True

    def load(self, name: str) -> int:
        self._ensure_setup()
        if not self.setup_done:
            raise RuntimeError("host setup incomplete")
        if name in self.registry:
            raise KeyError(f"{name} already loaded")
        if self.bug == "early_register":
            self.registry[name] = -1
        _alloc(2)
        self.registry[name] = len(self.registry)
        return self.registry[name]

    def close(self) -> None:
        _alloc(1)
        self.registry.clear()


def _lifecycle(bug: str = "", **kw: Any) -> Lifecycle[Host]:
    return Lifecycle(
        lambda: Host(bug), [Step("load a", lambda h: h.load("a")), Step("load b", lambda h: h.load("b"))],
        Host.close, **kw,
    )  # fmt: skip


def test_clean_lifecycle_has_no_finding() -> None:
    result = OomTest(mode="both", raise_on_failure=False).test(_lifecycle())
    assert result.passed, [it.detail for it in result.failures]
    assert result.total == 7 and "[long-lived form]" in result.label


@pytest.mark.parametrize("bug", ["early_setup", "early_register"])
def test_long_lived_form_finds_setup_and_left_over_state(bug: str) -> None:
    result = OomTest(raise_on_failure=False).test(_lifecycle(bug))
    assert _classes(result) == {FailureClass.POST_OOM_FAILURE}
    assert all("long-lived form: after the OOM in step" in it.detail for it in result.failures)


def test_fresh_object_per_run_misses_the_setup_bug() -> None:
    def fresh() -> None:
        h = Host("early_setup")
        h.load("a")
        h.load("b")
        h.close()

    assert OomTest(raise_on_failure=False).test(fresh).passed  # why the long-lived form exists


def test_a_failed_step_is_an_operation_for_the_state_check() -> None:
    def setup() -> Host:
        h = Host("early_register")
        oomfuzz.state(lambda: sorted(h.registry), "registry")
        return h

    lc = Lifecycle(setup, [Step("load a", lambda h: h.load("a"))], Host.close)
    result = OomTest(raise_on_failure=False).test(lc)
    assert FailureClass.NOT_ATOMIC in _classes(result)


def test_lifecycle_outside_a_sweep_just_runs() -> None:
    assert _lifecycle()() == [0, 1]


def test_teardown_failing_on_the_oom_is_retried() -> None:
    closed: list[int] = []

    class Once(Host):
        def close(self) -> None:
            if closed:
                raise RuntimeError("closed twice")
            _alloc(1)
            closed.append(1)

    lc = Lifecycle(Once, [Step("load a", lambda h: h.load("a"))], Once.close)
    closed.clear()
    inj = Injector(mode="transient", fail_at=4)  # the teardown's allocation
    with inj.installed(), pytest.raises(OutOfMemory):
        lc()
    assert inj.reported == []  # the retry succeeded: nothing to report

    class MarksFirst(Host):
        def close(self) -> None:
            if closed:
                raise RuntimeError("closed twice")
            closed.append(1)  # marked closed before the step that can fail
            _alloc(1)

    closed.clear()
    lc2 = Lifecycle(MarksFirst, [Step("load a", lambda h: h.load("a"))], MarksFirst.close)
    inj = Injector(mode="transient", fail_at=4)
    with inj.installed(), pytest.raises(OutOfMemory):
        lc2()
    assert [c for c, _ in inj.reported] == ["post_oom_failure"]
    assert "retrying it raised builtins.RuntimeError: closed twice" in inj.reported[0][1]


# -- the marker: fixtures rebuilt per run, probe from a fixture ---------------------------------

USER_TESTS = """
import weakref
import pytest
import oomfuzz
from wasmrt.alloc import AllocKind, try_alloc

class Host:
    def __init__(self):
        self.linker = None
        self.open = 0
    def ensure(self):
        if self.linker is None:
            self.linker = []          # BUG: saved before it is complete
            try_alloc(8, AllocKind.OTHER)
            self.linker.append("log")
    def use(self):
        self.ensure()
        assert self.linker == ["log"], "linker incomplete"
        self.open += 1
        try_alloc(8, AllocKind.OTHER)
        self.open -= 1

class Probe:
    def __init__(self, host):
        self.host = host
    def before_run(self):
        pass
    def resources(self):
        return {"open": self.host.open}
    def refs(self):
        return [("Host", weakref.ref(self.host))]

@pytest.fixture
def host():
    h = Host()
    yield h
    h.linker = None

@pytest.fixture
def probe(host):
    return Probe(host)

@pytest.mark.oom
def test_long_lived(host):
    host.use()

@pytest.mark.oom(form="fresh")
def test_fresh(host):
    host.use()

@pytest.mark.oom(probe="probe", form="fresh")
def test_probe_fresh(host):
    host.use()
"""


def test_marker_rebuilds_fixtures_and_takes_a_probe_from_a_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "test_user_host.py").write_text(USER_TESTS)
    rc = pytest.main(
        [str(tmp_path / "test_user_host.py"), *INNER_PYTEST,
         "--rootdir", str(tmp_path), "-c", os.devnull, "-rA"],
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1, out
    # Long-lived (the default with fixtures): the half-built linker is found.
    assert "test_long_lived [long-lived form]' failed: post_oom_failure" in out, out
    assert "linker incomplete" in out
    # Fresh form: fixtures once, the setup ran in a dry run only: nothing found.
    assert "PASSED" in out and "test_user_host.py::test_fresh" in out
    # A probe named by the marker: the open counter left at 1 after the OOM.
    assert "cleanup_not_restored" in out and "open: baseline 0, now 1" in out


def test_marker_probe_with_rebuilt_fixtures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = USER_TESTS.replace("self.linker = []          # BUG", "linker = []  # clean")
    text = text.replace(
        'self.linker.append("log")', 'linker.append("log")\n            self.linker = linker'
    )
    text = text.replace(
        '@pytest.mark.oom(probe="probe", form="fresh")', '@pytest.mark.oom(probe="probe")'
    )
    (tmp_path / "test_user_probe.py").write_text(text)
    rc = pytest.main(
        [f"{tmp_path / 'test_user_probe.py'}::test_probe_fresh", *INNER_PYTEST,
         "--rootdir", str(tmp_path), "-c", os.devnull],
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "[long-lived form]' failed: cleanup_not_restored" in out, out


# -- .py scenarios: lifecycle form, per-unit setup, steps, minimize ----------------------------

SCENARIO = """
from wasmrt.alloc import AllocKind, try_alloc
import helper_host

UNITS = []

def setup_unit(ctx):
    UNITS.append(1)
    return {"shared": len(UNITS)}

def setup(ctx):
    assert "shared" in ctx.unit  # built by setup_unit, once per runner
    return helper_host.Host()

def load_a(h):
    return h.load("a")

def load_b(h):
    return h.load("b")

def noop(h):
    try_alloc(8, AllocKind.OTHER)

steps = [load_a, noop, load_b]

def teardown(h):
    h.close()
"""

HELPER = """
from wasmrt.alloc import AllocKind, try_alloc

class Host:
    def __init__(self):
        self.registry = {}
    def load(self, name):
        if name in self.registry:
            raise KeyError(name + " already loaded")
        self.registry[name] = None   # BUG: registered before it can fail
        try_alloc(8, AllocKind.OTHER)
        self.registry[name] = len(self.registry)
        return self.registry[name]
    def close(self):
        self.registry.clear()
"""


def _scenario_dir(tmp_path: Path) -> Path:
    (tmp_path / "helper_host.py").write_text(HELPER)
    (tmp_path / "lifecycle_scn.py").write_text(textwrap.dedent(SCENARIO))
    return tmp_path / "lifecycle_scn.py"


def test_lifecycle_scenario_with_per_unit_setup_is_discovered_and_swept(tmp_path: Path) -> None:
    path = _scenario_dir(tmp_path)
    assert find_scenarios([str(tmp_path)]) == [path]
    scn = load_scenario(path)
    assert scn.step_names == ("load_a", "noop", "load_b")
    runner = ScenarioRunner(scn, "ondemand")
    assert runner.unit == {"shared": 1}
    report = run_unit(Unit(str(path), "transient", "ondemand"))
    assert report.error is None, report.error
    classes = {f.iteration.verdict for f in report.failures}
    assert classes == {FailureClass.POST_OOM_FAILURE}
    assert all("already loaded" in f.iteration.detail for f in report.failures)


def test_minimize_keeps_only_the_steps_the_failure_needs(tmp_path: Path) -> None:
    path = _scenario_dir(tmp_path)
    report = run_unit(Unit(str(path), "transient", "ondemand"))
    last = max(f.iteration.index for f in report.failures)  # inside load_b
    text = minimize(str(path), "transient", "ondemand", last)
    # Same site (Host.load) in load_a: one step is enough; noop and load_b go.
    assert text.startswith("# oomfuzz: steps=load_a\n")
    out = tmp_path / "lifecycle_min.py"
    out.write_text(text)
    assert load_scenario(out).directives["steps"] == "load_a"
    again = run_unit(Unit(str(out), "transient", "ondemand"))
    assert again.failures and again.error is None


NOT_RERUNNABLE = """
import pytest
from wasmrt.alloc import AllocKind, try_alloc

class Host:
    def __init__(self):
        self.loaded = set()
    def load(self, name):
        if name in self.loaded:
            raise KeyError(name + " already loaded")
        try_alloc(8, AllocKind.OTHER)
        self.loaded.add(name)
    def call(self, name):
        try_alloc(8, AllocKind.OTHER)
        return 1

@pytest.fixture
def host():
    return Host()

@pytest.mark.oom
def test_load_then_call(host):
    host.load("a")
    assert host.call("a") == 1
"""


def test_marker_body_that_cannot_run_twice_is_no_false_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "test_user_once.py").write_text(NOT_RERUNNABLE)
    rc = pytest.main(
        [str(tmp_path / "test_user_once.py"), *INNER_PYTEST,
         "--rootdir", str(tmp_path), "-c", os.devnull],
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "cannot run twice on the same fixtures" in out
    assert "re-running step 'test body' raised builtins.KeyError" in out
