"""pytest fixtures rebuilt inside every run: the ``oom`` marker's long-lived form.

For the long-lived form (:class:`oomfuzz.Lifecycle`) the state a test uses
must be built inside each run, so a sweep also fails its one-time setup.
The state of an ``oom``-marked test is its fixtures: :class:`FreshFixtures`
calls the fixture functions itself (plain and ``yield`` fixtures, with
their dependencies), once per run, and finishes the ``yield`` fixtures in
reverse order at teardown. :class:`RunProbe` is the sweep's ``Probe`` when
the marker names a fixture (``probe="pool_probe"``): it forwards to that
run's fixture value.

Invariants:
- Rebuilt: fixtures defined by the user's test code (not pytest's, a
  plugin's or oomfuzz's own), without params, not asking for ``request``,
  not async, whose dependencies are rebuilt or provided by pytest. Every
  other fixture keeps the value pytest set up once.
- Setup failing half-way finishes the ``yield`` fixtures it already started
  (inside ``oomfuzz.cleanup()``: they may allocate after an OOM) and
  re-raises the original exception unchanged.
- A ``yield`` fixture that yields twice is a usage error (``RuntimeError``).
- ``RunProbe`` drops the run's fixture value once the sweep has read it
  (``refs``), so it never keeps a run's objects alive. A run whose setup
  failed before the probe fixture was built has no counters of its own: it
  reports the first run's (nothing to compare).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from types import GeneratorType
from typing import Any

import pytest

from oomfuzz.inject import cleanup
from oomfuzz.lifecycle import FORM_FRESH, FORM_LONG_LIVED

__all__ = ["FORMS", "FreshFixtures", "RunProbe", "rebuildable_fixtures"]

FORMS = (FORM_LONG_LIVED, FORM_FRESH)
_NOT_USER = ("_pytest", "pytest", "xdist", "oomfuzz", "pluggy")


def _fixturedef(item: pytest.Function, name: str) -> Any:
    defs = item._fixtureinfo.name2fixturedefs.get(name)
    if not defs:  # a fixture only the marker names (probe=...), not the test
        defs = item.session._fixturemanager.getfixturedefs(name, item)
    return defs[-1] if defs else None


def _user_function(fd: Any) -> bool:
    func = fd.func
    if not inspect.isfunction(func) or fd.params is not None:
        return False
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return False
    module = getattr(func, "__module__", "") or ""
    if module.split(".")[0] in _NOT_USER:
        return False
    params = list(inspect.signature(func).parameters)
    return "request" not in params and "self" not in params


def rebuildable_fixtures(item: pytest.Function, extra: tuple[str, ...] = ()) -> list[str]:
    """The fixtures of ``item`` (and ``extra`` ones) rebuildable per run, in dependency order."""
    ok: dict[str, bool] = {}

    def check(name: str, seen: frozenset[str]) -> bool:
        if name in ok:
            return ok[name]
        fd = _fixturedef(item, name)
        good = fd is not None and name not in seen and _user_function(fd)
        if good:
            for arg in fd.argnames:
                if not check(arg, seen | {name}) and arg not in item.funcargs:
                    good = False
        ok[name] = good
        return good

    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or not check(name, frozenset()):
            return
        for arg in _fixturedef(item, name).argnames:
            visit(arg)
        order.append(name)

    for name in (*item.fixturenames, *extra):
        visit(name)
    return order


class FreshFixtures:
    """Builds ``names`` (rebuildable fixtures of ``item``) fresh for one run."""

    def __init__(self, item: pytest.Function, names: list[str]) -> None:
        self.item = item
        self.names = names
        #: Called with the run's fixture values once they are built.
        self.on_setup: Callable[[dict[str, Any]], None] | None = None

    def setup(self) -> dict[str, Any]:
        values: dict[str, Any] = dict(self.item.funcargs)
        finishers: list[GeneratorType[Any, Any, Any]] = []
        try:
            for name in self.names:
                fd = _fixturedef(self.item, name)
                made = fd.func(**{a: values[a] for a in fd.argnames})
                if inspect.isgenerator(made):
                    values[name] = next(made)
                    finishers.append(made)
                else:
                    values[name] = made
        except BaseException:
            with cleanup():
                _finish(finishers)
            raise
        values["__oomfuzz_finishers__"] = finishers
        if self.on_setup is not None:
            self.on_setup(values)
        return values

    def teardown(self, values: dict[str, Any]) -> None:
        finishers = values.pop("__oomfuzz_finishers__", [])
        values.clear()
        _finish(finishers)


def _finish(finishers: list[GeneratorType[Any, Any, Any]]) -> None:
    """Run each ``yield`` fixture's teardown, last set up first."""
    while finishers:
        gen = finishers.pop()
        try:
            next(gen)
        except StopIteration:
            continue
        raise RuntimeError(f"fixture {gen.__name__} yielded more than once")


class RunProbe:
    """The sweep's ``Probe``, forwarding to the fixture ``name`` of the current run."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.current: Any = None
        self.first: dict[str, object] | None = None

    def attach(self, values: dict[str, Any]) -> None:
        self.current = values.get(self.name)
        if self.current is None:
            raise pytest.UsageError(f"oom(probe={self.name!r}): no such fixture in this test")
        self.current.before_run()

    def before_run(self) -> None:
        self.current = None

    def resources(self) -> dict[str, object]:
        if self.current is None:
            # Setup failed before the probe fixture existed: nothing of this run to
            # compare, so report the first run's counters (no difference).
            return dict(self.first or {})
        now = dict(self.current.resources())
        if self.first is None:
            self.first = now
        return now

    def refs(self) -> list[tuple[str, weakref.ref[Any]]]:
        current, self.current = self.current, None
        return [] if current is None else list(current.refs())
