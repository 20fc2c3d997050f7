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
  not async, and not needed by a fixture pytest keeps; their other
  dependencies come from pytest. Every other fixture keeps the value pytest
  set up once. pytest itself does not build a rebuilt function-scoped
  fixture (the plugin's ``pytest_fixture_setup`` gives it a
  :class:`Deferred` placeholder), so nothing is built outside the runs.
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

__all__ = ["FORMS", "Deferred", "FreshFixtures", "RunProbe", "rebuildable_fixtures"]

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


_REBUILT = pytest.StashKey[list[str]]()


def rebuildable_fixtures(item: pytest.Function, extra: tuple[str, ...] = ()) -> list[str]:
    """The fixtures of ``item`` (and ``extra`` ones) rebuildable per run, in dependency order.

    Decided from the fixture definitions alone (so pytest's setup and the sweep
    agree), once per item: user fixture functions, minus every fixture that a
    fixture kept by pytest depends on (that one must see pytest's value).
    """
    if _REBUILT in item.stash:
        return item.stash[_REBUILT]
    closure: list[str] = []

    def collect(name: str) -> None:
        if name in closure:
            return
        fd = _fixturedef(item, name)
        if fd is None:
            return
        closure.append(name)
        for arg in fd.argnames:
            collect(arg)

    for name in (*item.fixturenames, *extra):
        collect(name)
    rebuilt = {n for n in closure if _user_function(_fixturedef(item, n))}
    changed = True
    while changed:
        changed = False
        for name in closure:
            if name in rebuilt:
                continue
            for arg in _fixturedef(item, name).argnames:
                if arg in rebuilt:
                    rebuilt.discard(arg)
                    changed = True
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in rebuilt:
            return
        for arg in _fixturedef(item, name).argnames:
            visit(arg)
        order.append(name)

    for name in closure:
        visit(name)
    item.stash[_REBUILT] = order
    return order


class Deferred:
    """What pytest gets for a fixture the long-lived form builds inside every run."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<fixture {self.name!r}: built by oomfuzz inside each run>"


class FreshFixtures:
    """Builds ``names`` (rebuildable fixtures of ``item``) fresh for one run."""

    def __init__(self, item: pytest.Function, names: list[str]) -> None:
        self.item = item
        self.names = names
        #: Called with the run's fixture values once they are built.
        self.on_setup: Callable[[dict[str, Any]], None] | None = None

    def setup(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            k: v for k, v in self.item.funcargs.items() if not isinstance(v, Deferred)
        }
        finishers: list[GeneratorType[Any, Any, Any]] = []
        try:
            for name in self.names:
                fd = _fixturedef(self.item, name)
                made = fd.func(**{a: self._value(values, a) for a in fd.argnames})
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

    def _value(self, values: dict[str, Any], name: str) -> Any:
        if name not in values:  # a dependency only a fixture the marker names needs
            values[name] = self.item._request.getfixturevalue(name)
        return values[name]

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
