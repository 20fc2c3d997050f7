"""Scenarios: the formats oomfuzz sweeps, behind a registry keyed by file suffix.

``FORMATS`` maps a suffix to a :class:`ScenarioFormat`: how to recognise a
scenario file in a directory walk (``discover``), load it into a
:class:`~oomfuzz.context.Scenario` (``load``) and execute one run of it in a
:class:`~oomfuzz.context.ScenarioContext` (``run``). Registered:

- ``.wast`` (:class:`WastFormat`): a WAST script, read once by
  ``wasmrt.text.wast.parse_wast`` (outside any injection) and executed per
  run by :mod:`oomfuzz.wast_adapter`: a fresh Engine (unless
  ``engine=shared``), a fresh Store and Linker, then every command in order
  (module, register, invoke, get, assert_*), each checked against its own
  expectation.
- ``.py`` (:class:`PythonFormat`): a file defining ``scenario(ctx)`` that
  uses the :class:`~oomfuzz.context.ScenarioContext` helpers, or a
  *lifecycle* scenario defining ``setup(ctx) -> state``, a module-level
  ``steps = [step(state), ...]`` and optionally ``teardown(state)``: each
  run is then an :class:`oomfuzz.Lifecycle` (the long-lived form: the state
  is built inside the run, a failed step is retried on the same state
  fault-free, then the rest of the steps and teardown run, and must behave
  as in the fault-free run). The ``steps=a,b`` directive keeps only some
  steps. Either kind may define ``setup_unit(ctx)`` (per-unit setup, see
  :mod:`oomfuzz.context`). The file's directory is on ``sys.path`` while it
  is imported, so it imports the modules beside it as a script would.

A new format (``.wasm``/``.wat`` programs, say) is one class with
``suffix``, ``pattern``, ``discover``, ``load`` and ``run``, added to
``FORMATS``; :func:`find_scenarios`, :func:`load_scenario`, the CLI and the
pytest plugin then take it. :class:`ScenarioRunner` runs one scenario with
one allocator as the function under test and is the ``Probe`` of the cleanup
and leak checks.

Invariants:
- An ``OutOfMemory`` from any command ends the script and propagates
  unchanged; it is never taken as a command's expected error (even for
  ``assert_unlinkable``/``assert_invalid``, which expect a ``WasmtimeError``).
- Every store a run creates is closed before the run returns or raises, and
  the Python references the runner keeps are dropped, so the leak check sees
  only what wasmrt itself keeps alive.
- A failed expectation raises ``ExpectationFailed`` (a wasm-level outcome for
  the checks). The run's *result* is the list of command outcomes (strings),
  compared by the post-OOM check.
- Input problems (missing file, unknown directive or format, unparsable
  script) raise :class:`ScenarioError` with a one-line message.
- A run depends only on the scenario and the state it starts from, so a run
  forked at allocation k (``oomfuzz.forkengine``) continues exactly like a
  fresh run at k; a scenario that cannot promise this says ``fork=false``
  (``ScenarioRunner.oomfuzz_fork``).
"""

from __future__ import annotations

import importlib.util
import math
import re
import struct
import sys
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from oomfuzz.checks import WASM_LEVEL, ExpectationFailed, describe_exc
from oomfuzz.context import (
    ALLOCATORS,
    DIRECTIVES,
    LIMIT_KEYS,
    POOLING_KEYS,
    SMALL_POOL,
    CountingAllocator,
    Kept,
    Scenario,
    ScenarioContext,
    ScenarioError,
    active_injector,
    parse_directives,
    pool_changes,
    pool_metrics,
    pool_state,
)
from oomfuzz.inject import Injector
from oomfuzz.lifecycle import Lifecycle, Step, as_step
from oomfuzz.program import ProgramFormat
from oomfuzz.reuse import ModuleReuse
from oomfuzz.runstate import long_lived
from oomfuzz.wast_adapter import execute_commands, parse, pool_needs
from wasmrt.errors import OutOfMemory, WasmtimeError
from wasmrt.trap import Trap

__all__ = [
    "ALLOCATORS",
    "DIRECTIVES",
    "FORMATS",
    "LIMIT_KEYS",
    "POOLING_KEYS",
    "SMALL_POOL",
    "CountingAllocator",
    "PythonFormat",
    "Scenario",
    "ScenarioContext",
    "ScenarioError",
    "ScenarioFormat",
    "ScenarioRunner",
    "WastFormat",
    "find_scenarios",
    "is_scenario_file",
    "load_scenario",
    "parse_directives",
    "parse_script",
    "pool_metrics",
]


# -- formats -------------------------------------------------------------------------


class ScenarioFormat(Protocol):
    """One kind of scenario file."""

    #: The file suffix this format is registered under (``.wast``).
    suffix: str
    #: How a user finds such files, for messages (``*.py with scenario()``).
    pattern: str

    def discover(self, path: Path) -> bool:
        """Is ``path`` (of this suffix, met in a directory walk) a scenario?"""
        ...

    def load(self, path: Path) -> Scenario:
        """Read and check the file; ``ScenarioError`` (one line) if it cannot be a scenario."""
        ...

    def run(self, scenario: Scenario, ctx: ScenarioContext) -> None:
        """Execute one run of ``scenario``, recording its outcomes in ``ctx``."""
        ...


def read_text(path: Path) -> str:
    """A scenario file's text (``ScenarioError`` when it cannot be read)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"no such scenario: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"cannot read {path}: {e}") from None


def parse_script(text: str, source: str) -> list[Any]:
    """Parse WAST text into normalised commands (``wast_adapter.Cmd``)."""
    return parse(text, source)


class WastFormat:
    """WAST scripts: every spec-testsuite file is a scenario."""

    suffix = ".wast"
    pattern = "*.wast"

    def discover(self, path: Path) -> bool:
        return True

    def load(self, path: Path) -> Scenario:
        text = read_text(path)
        directives = parse_directives(text, str(path))
        commands = parse_script(text, str(path))
        if not commands:
            raise ScenarioError(f"{path}: empty script: no module or command to sweep")
        return Scenario(path, directives, text, commands=commands, pool=pool_needs(commands))

    def run(self, scenario: Scenario, ctx: ScenarioContext) -> None:
        execute_commands(ctx, scenario.commands or [])


_LIFECYCLE_RE = re.compile(r"^def setup\(.*^steps\s*[:=]", re.M | re.S)


class PythonFormat:
    """Python files defining ``scenario(ctx)``, or ``setup(ctx)`` + ``steps`` (a lifecycle)."""

    suffix = ".py"
    pattern = "*.py with scenario() or setup() and steps"

    def discover(self, path: Path) -> bool:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        return "def scenario(" in text or _LIFECYCLE_RE.search(text) is not None

    def load(self, path: Path) -> Scenario:
        text = read_text(path)
        directives = parse_directives(text, str(path))
        mod = _import(path)
        unit_setup = getattr(mod, "setup_unit", None)
        if unit_setup is not None and not callable(unit_setup):
            raise ScenarioError(f"{path}: setup_unit must be a function of ctx")
        fn = getattr(mod, "scenario", None)
        names: tuple[str, ...] = ()
        if not callable(fn):
            if not callable(getattr(mod, "setup", None)) or not getattr(mod, "steps", None):
                raise ScenarioError(
                    f"{path}: defines no scenario(ctx) function (nor setup(ctx) and steps)"
                )
            lifecycle = LifecycleScenario(mod, str(path))
            fn, names = lifecycle, lifecycle.names
            lifecycle.selection(directives.get("steps"))
        return Scenario(
            path,
            directives,
            text,
            func=fn,
            format=self.suffix,
            unit_setup=unit_setup,
            step_names=names,
        )

    def run(self, scenario: Scenario, ctx: ScenarioContext) -> None:
        assert scenario.func is not None
        value = scenario.func(ctx)
        if value is not None:
            ctx.record(value)


def _import(path: Path) -> ModuleType:
    """Import a ``.py`` scenario with its directory on ``sys.path`` (as a script runs)."""
    spec = importlib.util.spec_from_file_location(f"oomfuzz_scenario_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    here = str(path.resolve().parent)
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        spec.loader.exec_module(mod)
    except SyntaxError as e:  # named once, with the place: path:line: message
        raise ScenarioError(f"{path}:{e.lineno}: SyntaxError: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - any import failure of user code is an input error
        raise ScenarioError(f"{path}: import failed: {type(e).__name__}: {e}") from None
    finally:
        if added:
            sys.path.remove(here)
    return mod


class LifecycleScenario:
    """A lifecycle ``.py`` scenario as a scenario function: one :class:`Lifecycle` per
    step selection (each keeps its own fault-free results), run with the run's ctx."""

    def __init__(self, mod: ModuleType, label: str) -> None:
        self.mod = mod
        self.label = label
        self.steps: list[Step[Any]] = [as_step(s) for s in mod.steps]
        self.names = tuple(s.name for s in self.steps)
        self.ctx: ScenarioContext | None = None
        self._lifecycles: dict[tuple[str, ...], Lifecycle[Any]] = {}

    def selection(self, names: str | None) -> tuple[str, ...]:
        """The steps a ``steps=a,b`` directive keeps, in file order (``None``: all)."""
        if names is None:
            return self.names
        wanted = tuple(n for n in names.split(",") if n)
        unknown = [n for n in wanted if n not in self.names]
        if unknown or not wanted:
            raise ScenarioError(
                f"{self.label}: directive steps names no step of {', '.join(self.names)}"
                + (f" ({', '.join(unknown)})" if unknown else "")
            )
        return tuple(n for n in self.names if n in wanted)

    def lifecycle(self, names: tuple[str, ...]) -> Lifecycle[Any]:
        lc = self._lifecycles.get(names)
        if lc is None:
            steps = [s for s in self.steps if s.name in names]
            lc = Lifecycle(
                self._setup, steps, getattr(self.mod, "teardown", None), label=self.label
            )
            self._lifecycles[names] = lc
        return lc

    def _setup(self) -> object:
        assert self.ctx is not None
        return self.mod.setup(self.ctx)

    def __call__(self, ctx: ScenarioContext) -> list[object]:
        self.ctx = ctx
        names = self.selection(ctx.directives.get("steps"))
        try:
            return self.lifecycle(names)()
        finally:
            self.ctx = None


#: The scenario formats, by file suffix (the order is the order messages list them in).
FORMATS: dict[str, ScenarioFormat] = {
    f.suffix: f
    for f in (WastFormat(), PythonFormat(), ProgramFormat(".wasm"), ProgramFormat(".wat"))
}


def is_scenario_file(path: Path) -> bool:
    """Is ``path`` a scenario a directory walk should pick up?"""
    fmt = FORMATS.get(path.suffix)
    return fmt is not None and fmt.discover(path)


def find_scenarios(paths: list[str]) -> list[Path]:
    """Expand files and directories (every registered format, recursively)."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(f for f in sorted(path.rglob("*")) if is_scenario_file(f))
        elif path.is_file():
            out.append(path)
        else:
            raise ScenarioError(f"no such file or directory: {p}")
    return out


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    fmt = FORMATS.get(p.suffix)
    if fmt is None:
        if not p.exists():
            raise ScenarioError(f"no such scenario: {p}")
        raise ScenarioError(
            f"{p}: a scenario is a {' or '.join(FORMATS)} file ({scenarios_hint()}), "
            f"not {p.suffix or 'a file without a suffix'}"
        )
    return fmt.load(p)


def scenarios_hint() -> str:
    """What ``find_scenarios`` looks for, for a "nothing found" message."""
    return ", ".join(f.pattern for f in FORMATS.values())


# -- running ------------------------------------------------------------------------------


class ScenarioRunner:
    """Runs one scenario with one allocator; a ``Probe`` for the cleanup and leak checks."""

    def __init__(self, scenario: Scenario, allocator: str) -> None:
        if allocator not in ALLOCATORS:
            raise ScenarioError(f"unknown allocator {allocator!r}")
        self.scenario = scenario
        self.allocator = allocator
        self.shared_engine: Any = None
        self._last: ScenarioContext | None = None
        #: The engine and modules of the last run, for a run that asks to reuse them.
        self._kept: Kept | None = None
        #: Decoded and validated modules kept across this unit's runs (``oomfuzz.reuse``).
        self.builds = ModuleReuse(enabled=scenario.directives.get("reuse") != "false")
        if scenario.directives.get("engine") == "shared":
            self.shared_engine = ScenarioContext(scenario, allocator).new_engine()
        #: What ``setup_unit(ctx)`` built (outside any injection), ``ctx.unit`` in each run.
        self.unit: Any = None
        if scenario.unit_setup is not None:
            unit_ctx = ScenarioContext(scenario, allocator, shared_engine=self.shared_engine)
            self.unit = scenario.unit_setup(unit_ctx)

    @property
    def oomfuzz_fork(self) -> bool:
        """Whether the fork engine may sweep this scenario (directive ``fork=false`` opts out)."""
        return self.scenario.directives.get("fork") != "false"

    # Probe protocol -------------------------------------------------------

    def before_run(self) -> None:
        self._last = None

    def resources(self) -> dict[str, object]:
        """Live allocator state summed over the run's engines (0 everywhere after close)."""
        ctx = self._last
        totals: dict[str, int] = {"live.instances": 0, "live.memories": 0, "live.tables": 0}
        if ctx is None:
            return dict(totals)
        for c in ctx.counters:
            for k, v in c.live().items():
                totals[k] += v
        for e in ctx.engines:
            for k, m in pool_metrics(e).items():
                totals[k] = totals.get(k, 0) + int(m)  # type: ignore[call-overload]
        if self.allocator == "pooling":
            for k in ("pool.core_instances", "pool.memories", "pool.tables"):
                totals.setdefault(k, 0)
        out: dict[str, object] = dict(totals)
        if self.allocator == "pooling":
            out.update(self._pool_changes(ctx))
        return out

    @staticmethod
    def _pool_changes(ctx: ScenarioContext) -> dict[str, object]:
        """Slots kept and invariants broken in each pooling engine, during this run."""
        kept = {"pool.memory_slots_kept": 0, "pool.table_slots_kept": 0}
        problems: list[str] = []
        for engine, start in ctx.pool_starts:
            now = pool_state(engine)
            if now is None:
                continue
            changes = pool_changes(start, now)
            for k in kept:
                kept[k] += int(changes[k])  # type: ignore[call-overload]
            problems += changes["pool.problems"]  # type: ignore[arg-type]
        ctx.pool_starts = []
        return {**kept, "pool.problems": problems}

    def refs(self) -> list[tuple[str, weakref.ref[Any]]]:
        ctx = self._last
        if ctx is None:
            return []
        refs = ctx.tracked
        # The run is over: drop the strong references the context still holds
        # (its engines and their allocators keep compiled modules alive).
        ctx.engines = [e for e in ctx.engines if e is self.shared_engine]
        ctx.tracked = []
        self._last = None
        return refs

    # The function under test ----------------------------------------------

    @staticmethod
    def _keep_alive(*kept: Kept | None) -> None:
        """The engine and modules a later run reuses outlive this run: not leaks."""
        for k in kept:
            if k is not None:
                long_lived(k.engine)
                for _, module in k.modules.values():
                    long_lived(module)

    @staticmethod
    def _ended_continuation(inj: Injector | None, e: Exception) -> bool:
        """Record ``e`` as the end of a retried run's continuation (``False``: it is not one)."""
        if inj is None or inj.retry_oom is None or e is inj.retry_oom:
            return False
        if not inj.continued_error:  # the first error ended it; closing may fail again
            inj.continued_error = describe_exc(e)
            inj.continued_wasm_level = isinstance(e, WASM_LEVEL)
        return True

    def run(self) -> list[str]:
        inj = active_injector()
        reuse = self._kept if inj is not None and inj.reuse else None
        self._kept = None
        ctx = ScenarioContext(
            self.scenario,
            self.allocator,
            shared_engine=self.shared_engine,
            reuse=reuse,
            unit=self.unit,
            builds=self.builds,
        )
        self._last = ctx
        if self.shared_engine is not None:
            long_lived(self.shared_engine)  # what it keeps (pool affinity, caches) is no leak
        if self.unit is not None:
            long_lived(self.unit)  # outlives the run: what it keeps is not a leak
        try:
            try:
                FORMATS[self.scenario.format].run(self.scenario, ctx)
            except Exception as e:  # noqa: BLE001 - re-raised unless it ended a retried run's continuation
                if not self._ended_continuation(inj, e):
                    raise
        finally:
            try:
                ctx.close()
            except Exception as e:  # noqa: BLE001 - re-raised unless it ended a retried run's continuation
                # Closing is the continuation's last step: an error there is its
                # outcome, not the run's (which still ends with its OutOfMemory).
                if not self._ended_continuation(inj, e):
                    raise
            self._kept = ctx.kept()
            self._keep_alive(self._kept, reuse)
        if inj is not None and inj.retry_oom is not None:
            # Retry and continue: the run went on after its OOM; it still ends with it.
            inj.continued = list(ctx.outcomes)
            oom, inj.retry_oom = inj.retry_oom, None
            raise oom
        return ctx.outcomes


# -- value helpers shared with the WAST adapter ---------------------------------------


def f32_bits(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


def f64_bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def is_nan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise ExpectationFailed(message)


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, OutOfMemory)


EXPECTED_ERRORS = (WasmtimeError, Trap)
