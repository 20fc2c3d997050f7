"""The oomfuzz pytest plugin (entry point ``pytest11``: ``oomfuzz = "oomfuzz.plugin"``).

Scenario collection: ``--oom-corpus PATH`` (repeatable) collects every
scenario under PATH; a ``.wast`` file, or a ``.py`` file defining
``scenario(ctx)``, named on the command line is collected too. Each becomes
one item per mode × allocator × shard (``--oom-mode``, ``--oom-allocator``,
``--oom-shards N`` with ``--oom-shard-kind interleaved|contiguous``), run by
the same work units as ``oomfuzz sweep`` (:func:`oomfuzz.sweep.sweep_units`,
:func:`oomfuzz.sweep.run_unit`), so ``pytest -n auto`` spreads one long sweep
over every worker, and ``--oom-cluster tcp://HOST:PORT`` runs them on a Dask
cluster (all submitted at collection's end, each item waiting for its own
report). ``--oom-max-iters``/``--oom-max-duration`` bound each
scenario/mode/allocator (iterations are split over its shards, as in
``sweep --jobs``); ``--oom-sample K``/``--oom-seed S`` as ``sweep --sample``,
``--oom-schedule sites`` as ``sweep --schedule sites`` (both also for ``oom``-marked
tests and the ``oom_test`` fixture; the marker's own keywords win).

User tests: the ``oom_test`` fixture returns an :class:`~oomfuzz.OomTest`
configured from the options (and the ``oom`` marker's keyword arguments);
``@pytest.mark.oom(mode=..., max_iters=...)`` sweeps the marked test function
itself like Wasmtime's ``OomTest::test`` (its fixtures are set up once; the
function body runs once per dry run and injection). An ``async def`` test is
swept with ``OomTest.test_async`` on a fresh event loop (``asyncio.run``;
the plugin drives it, so no asyncio pytest plugin is needed, and the
injection hook lives in the test's own task context); every call of the
test function creates a new coroutine.

Invariants:
- Inert unless used: without ``--oom-corpus``, a scenario file named on the
  command line, or the ``oom`` marker, the plugin collects nothing, changes no
  item and prints nothing (the project's own ``pytest -n auto`` over
  ``tests/`` is unaffected). Directories on the command line never make
  ``.wast``/corpus ``.py`` files collectable; only ``--oom-corpus`` does.
- When ``--oom-corpus`` is given and no path was given on the command line,
  only the corpus is collected (not ``testpaths``).
- A failing item reports the harness's report (class, site, traceback,
  ``oomfuzz replay`` line), never a bare assertion.
- Every sweep item and every ``oom``-marked test records its injection count
  in ``user_properties`` (``oomfuzz_injections``); the controller sums the
  reports (xdist ships them from the workers), and the terminal summary's
  total equals ``oomfuzz sweep``'s "injection points" for the same corpus and
  options.
- ``--oom-json PATH``: the controller merges every scenario item's report
  (shards included, shipped by xdist in ``user_properties``) into one
  ``SweepReport`` with the same units, points, failures and site coverage
  ``oomfuzz sweep --json`` writes for the same corpus and options; scenario
  paths are relative to the invocation directory when below it, as on the
  command line. ``oom``-marked tests are not in it (they are no scenario).
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oomfuzz.fixtures import FORMS, Deferred, FreshFixtures, RunProbe, rebuildable_fixtures
from oomfuzz.lifecycle import FORM_FRESH, FORM_LONG_LIVED, Lifecycle, Step
from oomfuzz.oomtest import OomTest, OomTestFailure, format_iteration
from oomfuzz.report import RunReport, SweepReport
from oomfuzz.scenario import FORMATS, ScenarioError, is_scenario_file, load_scenario
from oomfuzz.schedule import PARTS, SCHEDULES
from oomfuzz.sweep import (
    Unit,
    declared_sites,
    executor_for,
    measure_coverage,
    run_unit,
    run_units,
    sweep_units,
)

__all__ = ["JsonReport", "OomScenarioFile", "OomScenarioItem", "ScenarioFailed"]

PROPERTY = "oomfuzz_injections"
#: A scenario item's ``RunReport.to_dict()`` as JSON text, for ``--oom-json``.
REPORT_PROPERTY = "oomfuzz_report"
_CORPUS = pytest.StashKey[list[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("oomfuzz", "out-of-memory fault injection (oomfuzz)")
    g.addoption(
        "--oom-corpus",
        action="append",
        default=[],
        metavar="PATH",
        help="collect oomfuzz scenarios (*.wast, *.py with scenario()) under PATH; repeatable",
    )
    g.addoption("--oom-mode", choices=("transient", "persistent", "both"), default="transient")
    g.addoption("--oom-allocator", choices=("ondemand", "pooling", "both"), default="both")
    g.addoption("--oom-shards", type=int, default=1, metavar="N", help="items per sweep")
    g.addoption(
        "--oom-shard-kind",
        choices=("interleaved", "contiguous"),
        default="interleaved",
        help="shard k takes indices i %% N == k, or the k-th contiguous run",
    )
    g.addoption("--oom-max-iters", type=int, default=None, metavar="N")
    g.addoption("--oom-max-duration", type=float, default=None, metavar="SECONDS")
    g.addoption("--oom-sample", type=int, default=None, metavar="K")
    g.addoption(
        "--oom-schedule",
        choices=SCHEDULES,
        default="exhaustive",
        help="injection order (oomfuzz.schedule): sites = the first allocation of each "
        "distinct site and calling context first (with --oom-sample 0: only those)",
    )
    g.addoption("--oom-seed", type=int, default=0, metavar="S")
    g.addoption(
        "--oom-json",
        default=None,
        metavar="PATH",
        help="write the scenario items' results as one oomfuzz JSON report (the schema of "
        "oomfuzz sweep --json: oomfuzz report/diff read both)",
    )
    g.addoption(
        "--oom-cluster",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run the sweep items' units on this Dask scheduler's workers (all submitted "
        "at once; each item reports its own unit); not with -n",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "oom(**options): sweep this test with oomfuzz.OomTest (options: OomTest keywords)",
    )
    config.pluginmanager.register(_Totals(), "oomfuzz-totals")
    out = config.getoption("oom_json")
    if out is not None and not hasattr(config, "workerinput"):  # the controller writes it
        config.pluginmanager.register(JsonReport(Path(out), config), "oomfuzz-json")
    corpus = [Path(p).resolve() for p in config.getoption("oom_corpus")]
    config.stash[_CORPUS] = corpus
    if corpus and config.args_source != pytest.Config.ArgsSource.ARGS:
        # Only the corpus: do not also collect testpaths.
        config.args = [str(p) for p in corpus]
    shards = config.getoption("oom_shards")
    if shards < 1:
        raise pytest.UsageError("--oom-shards must be >= 1")
    if config.getoption("oom_cluster") and config.getoption("numprocesses", None):
        raise pytest.UsageError("--oom-cluster: the cluster runs the sweep; drop -n")


_CLUSTER = pytest.StashKey["ClusterRuns"]()


class ClusterRuns:
    """``--oom-cluster``: every sweep item's unit runs on the cluster, submitted at once.

    Reports stream back in completion order (:func:`oomfuzz.sweep.run_units`);
    each item takes its own, waiting only until it has arrived.
    """

    def __init__(self, address: str, units: list[Unit]) -> None:
        self._where = executor_for(1, address)
        where = self._where.__enter__()
        self._stream = run_units(units, where)
        self._arrived: dict[int, RunReport] = {}

    def report(self, position: int) -> RunReport:
        while position not in self._arrived:
            i, rep = next(self._stream)
            self._arrived[i] = rep
        return self._arrived.pop(position)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._where.__exit__(None, None, None)


def pytest_collection_finish(session: pytest.Session) -> None:
    address = session.config.getoption("oom_cluster")
    items = [it for it in session.items if isinstance(it, OomScenarioItem)]
    if not address or not items or session.config.option.collectonly:
        return
    for position, item in enumerate(items):
        item.position = position
    try:
        runs = ClusterRuns(address, [it.unit for it in items])
    except ScenarioError as e:
        raise pytest.UsageError(f"--oom-cluster: {e}") from None
    session.config.stash[_CLUSTER] = runs


def pytest_sessionfinish(session: pytest.Session) -> None:
    runs = session.config.stash.get(_CLUSTER, None)
    if runs is not None:
        del session.config.stash[_CLUSTER]
        runs.close()


def _in_corpus(config: pytest.Config, path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved == c or c in resolved.parents for c in config.stash.get(_CORPUS, []))


def _is_scenario(parent: pytest.Collector, path: Path) -> bool:
    if path.suffix not in FORMATS:
        return False
    chosen = parent.session.isinitpath(path) or _in_corpus(parent.config, path)
    if not chosen:
        return False
    # A test module (python_files) is never a scenario, even if it mentions one.
    if path.suffix == ".py" and _is_test_module(parent, path):
        return False
    return is_scenario_file(path)


def _is_test_module(parent: pytest.Collector, path: Path) -> bool:
    return any(fnmatch.fnmatch(path.name, pat) for pat in parent.config.getini("python_files"))


def _python_collects(parent: pytest.Collector, path: Path) -> bool:
    """Will pytest's python plugin ask ``pytest_pycollect_makemodule`` for this file?"""
    return parent.session.isinitpath(path) or _is_test_module(parent, path)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not _is_scenario(parent, file_path):
        return None
    if file_path.suffix == ".py" and _python_collects(parent, file_path):
        return None  # collected through pytest_pycollect_makemodule below, not twice
    return OomScenarioFile.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    """A scenario ``.py`` is collected as scenario items, never imported as a test module."""
    if _is_scenario(parent, module_path):
        return OomScenarioFile.from_parent(parent, path=module_path)
    return None


class ScenarioFailed(Exception):
    """A sweep item found failures (or could not run); carries the unit's report."""

    def __init__(self, report: RunReport) -> None:
        super().__init__(f"{report.scenario}: {len(report.failures)} failing injection(s)")
        self.report = report


class OomScenarioFile(pytest.File):
    """One scenario file: an item per mode × allocator × shard."""

    def collect(self) -> Iterator[OomScenarioItem]:
        cfg = self.config
        try:
            scn = load_scenario(self.path)
        except ScenarioError as e:
            raise self.CollectError(str(e)) from None
        units = sweep_units(
            [scn],
            cfg.getoption("oom_mode"),
            cfg.getoption("oom_allocator"),
            cfg.getoption("oom_shards"),
            cfg.getoption("oom_max_iters"),
            max_duration=cfg.getoption("oom_max_duration"),
            sample=cfg.getoption("oom_sample"),
            schedule=cfg.getoption("oom_schedule"),
            seed=cfg.getoption("oom_seed"),
            contiguous=cfg.getoption("oom_shard_kind") == "contiguous",
        )
        for unit in units:
            name = f"{unit.mode}-{unit.allocator}"
            if unit.schedule in PARTS:  # the sites schedule's two passes: two items
                name += "-" + unit.schedule.partition(":")[2]
            if unit.shards > 1:
                name += f"-shard{unit.shard}of{unit.shards}"
            yield OomScenarioItem.from_parent(self, name=name, unit=unit)


class OomScenarioItem(pytest.Item):
    """One work unit of a sweep (a shard of one scenario/mode/allocator)."""

    def __init__(self, *, unit: Unit, **kw: Any) -> None:
        super().__init__(**kw)
        self.unit = unit
        #: This item's place among the session's sweep items (``--oom-cluster``).
        self.position = -1

    def runtest(self) -> None:
        runs = self.config.stash.get(_CLUSTER, None)
        report = run_unit(self.unit) if runs is None else runs.report(self.position)
        self.user_properties.append((PROPERTY, report.iterations))
        if self.config.getoption("oom_json") is not None:
            self.user_properties.append((REPORT_PROPERTY, json.dumps(report.to_dict())))
        if report.failures or report.error:
            raise ScenarioFailed(report)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        exc = excinfo.value
        if not isinstance(exc, ScenarioFailed):
            return str(super().repr_failure(excinfo, style=style))
        rep = exc.report
        lines: list[str] = []
        if rep.error:
            lines.append(f"{rep.scenario} [{rep.mode}/{rep.allocator}]: {rep.error}")
        for f in rep.failures[:5]:
            lines.append(format_iteration(f.scenario, f.iteration))
            lines.append(f"  reproduce: {f.reproducer}")
        if len(rep.failures) > 5:
            lines.append(f"... and {len(rep.failures) - 5} more failing injection(s)")
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        u = self.unit
        shard = f" shard {u.shard}/{u.shards}" if u.shards > 1 else ""
        return self.path, None, f"oom sweep {self.path.name} [{u.mode}/{u.allocator}{shard}]"


# -- the oom marker and the oom_test fixture ------------------------------------------------


def _oomtest_for(
    config: pytest.Config,
    node: pytest.Item,
    resolve: Any = None,
    **extra: Any,
) -> OomTest:
    options: dict[str, Any] = {
        "max_iters": config.getoption("oom_max_iters"),
        "max_duration": config.getoption("oom_max_duration"),
        "seed": config.getoption("oom_seed"),
    }
    if config.getoption("oom_mode") != "transient":
        options["mode"] = config.getoption("oom_mode")
    if config.getoption("oom_schedule") != "exhaustive":
        options["schedule"] = config.getoption("oom_schedule")
    if config.getoption("oom_sample") is not None:
        options["sample"] = config.getoption("oom_sample")
    marker = node.get_closest_marker("oom")
    if marker is not None:
        options.update(marker.kwargs)
    options.pop("form", None)  # the marker's choice of form, not an OomTest knob
    if isinstance(options.get("probe"), str) and "probe" not in extra:
        # probe="fixture_name": the Probe comes from a fixture.
        options["probe"] = resolve(options["probe"]) if resolve is not None else None
    options.update(extra)
    options.setdefault("label", node.nodeid)
    return OomTest(**options)


@pytest.fixture
def oom_test(request: pytest.FixtureRequest) -> OomTest:
    """An ``OomTest`` configured from ``--oom-*`` options and the ``oom`` marker."""
    item = request.node
    assert isinstance(item, pytest.Item)
    counted = _Counted(item)
    return _oomtest_for(
        request.config, item, request.getfixturevalue, on_iteration=counted.on_iteration
    )


class _Counted:
    """Adds each injection a fixture-made OomTest runs to the item's user_properties."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item
        self.n = 0
        item.user_properties.append((PROPERTY, 0))
        self.slot = len(item.user_properties) - 1

    def on_iteration(self, it: Any, ordinal: int) -> None:
        self.n += 1
        self.item.user_properties[self.slot] = (PROPERTY, self.n)


def _form(item: pytest.Function, rebuild: list[str], is_async: bool) -> str:
    marker = item.get_closest_marker("oom")
    form = marker.kwargs.get("form") if marker is not None else None
    if form is not None and form not in FORMS:
        raise pytest.UsageError(f"{item.nodeid}: oom(form=...) must be one of {', '.join(FORMS)}")
    if form == FORM_LONG_LIVED and is_async:
        raise pytest.UsageError(f"{item.nodeid}: the long-lived form needs a sync test")
    if form is None:
        return FORM_LONG_LIVED if rebuild and not is_async else FORM_FRESH
    return str(form)


def _long_lived_fixtures(item: pytest.Function) -> list[str]:
    """The fixtures the long-lived form rebuilds for ``item`` ([] in the fresh form)."""
    marker = item.get_closest_marker("oom")
    if marker is None:
        return []
    probe_name = marker.kwargs.get("probe")
    named = (probe_name,) if isinstance(probe_name, str) else ()
    rebuild = rebuildable_fixtures(item, named)
    is_async = inspect.iscoroutinefunction(item.obj)
    return rebuild if _form(item, rebuild, is_async) == FORM_LONG_LIVED else []


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> object | None:
    """A function-scoped fixture the long-lived form rebuilds inside every run is not
    also built once by pytest: it gets a placeholder."""
    item = request.node
    if not isinstance(item, pytest.Function) or fixturedef.scope != "function":
        return None
    if fixturedef.argname not in _long_lived_fixtures(item):
        return None
    value = Deferred(fixturedef.argname)
    fixturedef.cached_result = (value, fixturedef.cache_key(request), None)
    return value


def _sweep_marked(item: pytest.Function) -> Any:
    """Sweep an ``oom``-marked test in its form; the ``OomTestResult``."""
    fn = item.obj
    names = item._fixtureinfo.argnames
    is_async = inspect.iscoroutinefunction(fn)
    marker = item.get_closest_marker("oom")
    probe_name = marker.kwargs.get("probe") if marker is not None else None
    named = (probe_name,) if isinstance(probe_name, str) else ()
    rebuild = rebuildable_fixtures(item, named)
    form = _form(item, rebuild, is_async)
    opts: dict[str, Any] = {"raise_on_failure": False, "fail_fast": True}
    if form == FORM_FRESH:
        kwargs = {name: item.funcargs[name] for name in names}
        test = _oomtest_for(item.config, item, item._request.getfixturevalue, **opts)
        if is_async:
            return asyncio.run(test.test_async(lambda: fn(**kwargs)))
        return test.test(lambda: fn(**kwargs))
    fixtures = FreshFixtures(item, rebuild)
    if isinstance(probe_name, str) and probe_name in rebuild:
        opts["probe"] = run_probe = RunProbe(probe_name)
        fixtures.on_setup = run_probe.attach
    elif isinstance(probe_name, str):
        opts["probe"] = item._request.getfixturevalue(probe_name)
    body: Step[dict[str, Any]] = Step(
        "test body", lambda values: fn(**{n: values[n] for n in names})
    )
    lifecycle = Lifecycle(
        fixtures.setup,
        [body],
        fixtures.teardown,
        label=item.nodeid,
        atomic_steps=False,
        check_rerun=True,
    )
    opts["label"] = lifecycle.__qualname__
    result = _oomtest_for(item.config, item, **opts).test(lifecycle)
    if lifecycle.no_retry:
        note = (
            f"long-lived form: the test body cannot run twice on the same fixtures "
            f"({lifecycle.no_retry}); a failed run is not retried on its fixtures, so "
            "left-over state is not checked (make the body re-runnable to check it)"
        )
        result.notes.append(note)
        item.warn(pytest.PytestWarning(f"oomfuzz: {note}"))
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``oom``-marked test function under ``OomTest.test``.

    Form: ``long-lived`` (default when the test uses fixtures oomfuzz can
    rebuild: its fixtures are built fresh inside every run, the body is the
    step, see :class:`oomfuzz.Lifecycle`) or ``fresh`` (``oom(form="fresh")``,
    and async tests: fixtures set up once by pytest, the body swept alone).
    """
    if pyfuncitem.get_closest_marker("oom") is None:
        return None
    try:
        result = _sweep_marked(pyfuncitem)
    except OomTestFailure as e:  # a DryRunError: the test fails without any injection
        pytest.fail(str(e), pytrace=False)
    pyfuncitem.user_properties.append((PROPERTY, len(result.iterations)))
    if result.failures:
        it = result.failures[0]
        text = format_iteration(result.label, it)
        text += (
            f"\n  reproduce: pytest '{pyfuncitem.nodeid}' with "
            f"@pytest.mark.oom(indices=[{it.index}], mode={it.mode!r})"
        )
        pytest.fail(text, pytrace=False)
    return True


# -- the terminal summary -------------------------------------------------------------------


class _Totals:
    """Sums ``oomfuzz_injections`` over the call reports this process sees.

    Under xdist the controller receives every worker's reports, so its sum is
    the whole run's; a worker's own summary is never printed.
    """

    def __init__(self) -> None:
        self.items = 0
        self.injections = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        values = [v for k, v in report.user_properties if k == PROPERTY]
        if values:
            self.items += 1
            self.injections += sum(int(v) for v in values)  # type: ignore[call-overload]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.items:
            return
        terminalreporter.write_sep("-", "oomfuzz")
        terminalreporter.write_line(
            f"oomfuzz: {self.injections} injection points in {self.items} "
            "swept item(s) (sum over all workers)"
        )


# -- --oom-json -----------------------------------------------------------------------------


def _relative(path: str, base: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            return path
    return path


class JsonReport:
    """Collects the scenario items' reports (the controller's view) and writes them at exit."""

    def __init__(self, path: Path, config: pytest.Config) -> None:
        self.path = path
        self.base = Path(config.invocation_params.dir)
        self.report = SweepReport(command=" ".join(["pytest", *config.invocation_params.args]))
        self.start = time.monotonic()
        parent = path.parent
        if not parent.is_dir():
            raise pytest.UsageError(f"--oom-json {path}: no such directory: {parent}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":  # every phase's report carries the item's properties
            return
        for key, value in report.user_properties:
            if key != REPORT_PROPERTY:
                continue
            rep = RunReport.from_dict(json.loads(str(value)))
            rep.scenario = _relative(rep.scenario, self.base)
            for f in rep.failures:
                f.scenario = _relative(f.scenario, self.base)
            self.report.add(rep)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        rep = self.report
        rep.runs.sort(key=lambda r: r.key)  # items finish in any order under xdist
        rep.elapsed = time.monotonic() - self.start
        scenarios = sorted({str(self.base / r.scenario) for r in rep.runs})
        if scenarios:
            try:
                rep.coverage = measure_coverage(rep, *declared_sites(scenarios))
            except ScenarioError as e:
                print(f"oomfuzz: site coverage not measured: {e}", file=sys.stderr)
        self.path.write_text(rep.to_json(), encoding="utf-8")
