"""Scenarios: WAST scripts (and small Python files) run through wasmrt's public API.

A ``.wast`` scenario is read once by ``wasmrt.text.wast.parse_wast`` (outside
any injection) and then executed per run: a fresh Engine (unless
``engine=shared``), a fresh Store and Linker, then every command in order
(module, register, invoke, get, assert_*), each checked against its own
expectation. A ``.py`` scenario defines ``scenario(ctx)`` and uses the
:class:`ScenarioContext` helpers. Header directives, one or more comment
lines anywhere in the file::

    ;; oomfuzz: allocator=pooling total_memories=1 fuel=1000 limits.memory_size=65536
    # oomfuzz: engine=shared            (Python scenarios use '#')

are documented in ``corpus/README.md`` (``DIRECTIVES`` lists every key).

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
- Cleanup accounting wraps the engine's instance allocator in a
  :class:`CountingAllocator`, so live instances/memories/tables are checked
  for both allocators, plus the pooling metrics when pooling.
- Input problems (missing file, unknown directive, unparsable script)
  raise :class:`ScenarioError` with a one-line message.
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
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oomfuzz.checks import ExpectationFailed
from wasmrt.errors import OutOfMemory, WasmtimeError
from wasmrt.trap import Trap

__all__ = [
    "ALLOCATORS",
    "CountingAllocator",
    "Scenario",
    "ScenarioContext",
    "ScenarioError",
    "ScenarioRunner",
    "find_scenarios",
    "load_scenario",
]

ALLOCATORS = ("ondemand", "pooling")

#: Pooling knobs a directive may set (``PoolingAllocationConfig`` setter names).
POOLING_KEYS = (
    "total_core_instances",
    "total_memories",
    "total_tables",
    "max_memory_size",
    "table_elements",
    "max_memories_per_module",
    "max_tables_per_module",
    "max_core_instance_size",
    "max_unused_warm_slots",
    "linear_memory_keep_resident",
    "table_keep_resident",
)
LIMIT_KEYS = ("memory_size", "table_elements", "instances", "tables", "memories")
#: The small pooling configuration scenarios get unless a directive overrides it.
SMALL_POOL: dict[str, int] = {
    "total_core_instances": 12,
    "total_memories": 12,
    "total_tables": 12,
    "max_memory_size": 4 << 20,
    "table_elements": 10_000,
    "max_memories_per_module": 1,
    "max_tables_per_module": 4,
}
DIRECTIVES: dict[str, str] = {
    "allocator": "ondemand | pooling | both: the allocators this scenario runs with",
    "engine": "fresh (default: a new Engine per run, inside the injected region) | shared",
    "instantiate": "linker (default) | pre (Linker.instantiate_pre + InstancePre.instantiate) | instance (Instance(store, module, imports))",
    "fuel": "N: Config.consume_fuel and Store.set_fuel(N)",
    "max_wasm_stack": "N bytes",
    "mode": "transient | persistent | both: restricts the sweep modes",
    "allow_alloc_after_oom": "true: allocations after the OOM are not failures",
    "fork": "false: never sweep with the fork engine (each injection replays from scratch)",
    "index": "N: the injection index a regression reproducer fails at (replayed by `oomfuzz baseline --check`)",
    **{f"limits.{k}": "Store.set_limits(...) value" for k in LIMIT_KEYS},
    "limits.trap_on_grow_failure": "true: StoreLimitsBuilder.trap_on_grow_failure",
    **{k: "PoolingAllocationConfig setter (pooling runs only)" for k in POOLING_KEYS},
}

_DIRECTIVE_RE = re.compile(r"^\s*(?:;;|#)\s*oomfuzz:\s*(.*)$")


class ScenarioError(Exception):
    """A scenario cannot be loaded or run (bad input); the message is one line."""


def _wasmrt() -> Any:
    import wasmrt

    return wasmrt


def _api(name: str) -> Any:
    """A public API name, from ``wasmrt`` or, while it lands, ``wasmrt.runtime``."""
    w = _wasmrt()
    if hasattr(w, name):
        return getattr(w, name)
    try:
        import wasmrt.runtime as rt
    except ImportError as e:
        raise ScenarioError(f"wasmrt public API not available yet ({name}): {e}") from None
    if hasattr(rt, name):
        return getattr(rt, name)
    raise ScenarioError(f"wasmrt has no public {name!r} yet")


# -- directives ---------------------------------------------------------------


def parse_directives(text: str, source: str = "<scenario>") -> dict[str, str]:
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _DIRECTIVE_RE.match(line)
        if not m:
            continue
        for item in m.group(1).split():
            key, sep, value = item.partition("=")
            if not sep or not value:
                raise ScenarioError(f"{source}:{lineno}: directive {item!r} is not key=value")
            if key not in DIRECTIVES:
                raise ScenarioError(f"{source}:{lineno}: unknown oomfuzz directive {key!r}")
            out[key] = value
    for key in (
        "fuel",
        "max_wasm_stack",
        "index",
        *POOLING_KEYS,
        *(f"limits.{k}" for k in LIMIT_KEYS),
    ):
        if key in out and not re.fullmatch(r"\d+", out[key]):
            raise ScenarioError(f"{source}: directive {key} needs a non-negative integer")
    choices = {
        "allocator": ("ondemand", "pooling", "both"),
        "engine": ("fresh", "shared"),
        "instantiate": ("linker", "pre", "instance"),
        "mode": ("transient", "persistent", "both"),
        "allow_alloc_after_oom": ("true", "false"),
        "fork": ("true", "false"),
        "limits.trap_on_grow_failure": ("true", "false"),
    }
    for key, allowed in choices.items():
        if key in out and out[key] not in allowed:
            raise ScenarioError(f"{source}: directive {key} must be one of {', '.join(allowed)}")
    return out


# -- allocator accounting -------------------------------------------------------


class CountingAllocator:
    """Wraps an ``InstanceAllocator`` and counts live instances, memories and tables.

    Every successful increment/allocate must be undone by exactly one
    decrement/deallocate; after a store closes all three counters are 0.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.instances = 0
        self.memories = 0
        self.tables = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def increment_core_instance_count(self) -> None:
        self._inner.increment_core_instance_count()
        self.instances += 1

    def decrement_core_instance_count(self) -> None:
        self._inner.decrement_core_instance_count()
        self.instances -= 1

    def allocate_memory(self, *args: Any, **kwargs: Any) -> Any:
        out = self._inner.allocate_memory(*args, **kwargs)
        self.memories += 1
        return out

    def deallocate_memory(self, *args: Any, **kwargs: Any) -> Any:
        self.memories -= 1
        return self._inner.deallocate_memory(*args, **kwargs)

    def allocate_table(self, *args: Any, **kwargs: Any) -> Any:
        out = self._inner.allocate_table(*args, **kwargs)
        self.tables += 1
        return out

    def deallocate_table(self, *args: Any, **kwargs: Any) -> Any:
        self.tables -= 1
        return self._inner.deallocate_table(*args, **kwargs)

    def purge_module(self, module_key: Hashable) -> None:
        self._inner.purge_module(module_key)

    def as_pooling(self) -> Any:
        return self._inner.as_pooling()

    def live(self) -> dict[str, int]:
        return {
            "live.instances": self.instances,
            "live.memories": self.memories,
            "live.tables": self.tables,
        }


def pool_metrics(engine: Any) -> dict[str, object]:
    try:
        metrics = engine.pooling_allocator_metrics()
    except AttributeError:
        return {}
    if metrics is None:
        return {}
    return {
        "pool.core_instances": metrics.core_instances(),
        "pool.memories": metrics.memories(),
        "pool.tables": metrics.tables(),
    }


# -- scenarios --------------------------------------------------------------------


@dataclass(slots=True)
class Scenario:
    """A loaded scenario: its path, directives and either WAST commands or a function."""

    path: Path
    directives: dict[str, str]
    text: str
    commands: list[Any] | None = None
    func: Callable[[ScenarioContext], object] | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    def allocators(self) -> tuple[str, ...]:
        a = self.directives.get("allocator", "both")
        return ALLOCATORS if a == "both" else (a,)

    def modes(self) -> tuple[str, ...] | None:
        m = self.directives.get("mode")
        if m is None or m == "both":
            return None
        return (m,)


def find_scenarios(paths: list[str]) -> list[Path]:
    """Expand files and directories (``*.wast`` and ``*.py`` with ``scenario``, recursively)."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.suffix == ".wast" or (f.suffix == ".py" and _defines_scenario(f)):
                    out.append(f)
        elif path.is_file():
            out.append(path)
        else:
            raise ScenarioError(f"no such file or directory: {p}")
    return out


def _defines_scenario(path: Path) -> bool:
    try:
        return "def scenario(" in path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"no such scenario: {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"cannot read {p}: {e}") from None
    directives = parse_directives(text, str(p))
    if p.suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"oomfuzz_scenario_{p.stem}", p)
        if spec is None or spec.loader is None:
            raise ScenarioError(f"cannot import {p}")
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception as e:  # noqa: BLE001 - any import failure of user code is an input error
            raise ScenarioError(f"{p}: import failed: {type(e).__name__}: {e}") from None
        fn = getattr(mod, "scenario", None)
        if not callable(fn):
            raise ScenarioError(f"{p}: defines no scenario(ctx) function")
        return Scenario(p, directives, text, func=fn)
    if p.suffix != ".wast":
        raise ScenarioError(f"{p}: a scenario is a .wast or .py file")
    return Scenario(p, directives, text, commands=parse_script(text, str(p)))


def parse_script(text: str, source: str) -> list[Any]:
    """Parse WAST text into normalised commands (``wast_adapter.Cmd``)."""
    from oomfuzz import wast_adapter

    return wast_adapter.parse(text, source)


# -- the run context ----------------------------------------------------------------


@dataclass(eq=False)
class ScenarioContext:
    """What a scenario run uses: engine/store factories, tracking, outcomes."""

    scenario: Scenario
    allocator: str
    shared_engine: Any = None
    outcomes: list[str] = field(default_factory=list)
    stores: list[Any] = field(default_factory=list)
    engines: list[Any] = field(default_factory=list)
    counters: list[CountingAllocator] = field(default_factory=list)
    tracked: list[tuple[str, weakref.ref[Any]]] = field(default_factory=list)

    @property
    def directives(self) -> dict[str, str]:
        return self.scenario.directives

    @property
    def wasmrt(self) -> Any:
        return _wasmrt()

    def api(self, name: str) -> Any:
        return _api(name)

    def record(self, outcome: object) -> None:
        self.outcomes.append(str(outcome))

    def track(self, obj: object, label: str) -> None:
        try:
            self.tracked.append((label, weakref.ref(obj)))
        except TypeError:
            pass  # not weak-referenceable: nothing to track

    def config(self) -> Any:
        d = self.directives
        cfg = _api("Config")()
        if "fuel" in d:
            cfg.consume_fuel = True
        if "max_wasm_stack" in d:
            cfg.max_wasm_stack = int(d["max_wasm_stack"])
        if self.allocator == "pooling":
            from wasmrt.vm.allocator import PoolingAllocationConfig

            pool = PoolingAllocationConfig()
            for key, value in {
                **SMALL_POOL,
                **{k: int(d[k]) for k in POOLING_KEYS if k in d},
            }.items():
                getattr(pool, key)(value)
            cfg.allocation_strategy = pool
        return cfg

    def new_engine(self) -> Any:
        """A new Engine for this scenario's allocator, with cleanup accounting installed."""
        engine = _api("Engine")(self.config())
        return self.instrument(engine)

    def instrument(self, engine: Any) -> Any:
        core = engine.ptr()
        if not isinstance(core.allocator, CountingAllocator):
            core.allocator = CountingAllocator(core.allocator)
        self.counters.append(core.allocator)
        self.engines.append(engine)
        return engine

    def engine(self) -> Any:
        if self.shared_engine is not None:
            if self.shared_engine not in self.engines:
                self.engines.append(self.shared_engine)
                self.counters.append(self.shared_engine.ptr().allocator)
            return self.shared_engine
        return self.new_engine()

    def store(self, engine: Any = None) -> Any:
        """A new Store (closed automatically at the end of the run) with fuel and limits."""
        engine = engine if engine is not None else self.engine()
        store = _api("Store")(engine)
        self.stores.append(store)
        self.track(store, "Store")
        d = self.directives
        if "fuel" in d:
            store.set_fuel(int(d["fuel"]))
        limits = {k: int(d[f"limits.{k}"]) for k in LIMIT_KEYS if f"limits.{k}" in d}
        if d.get("limits.trap_on_grow_failure") == "true":
            from wasmrt.runtime.limits import StoreLimitsBuilder

            b = StoreLimitsBuilder()
            for k, v in limits.items():
                getattr(b, k)(v)
            store.limiter(b.trap_on_grow_failure(True).build())
        elif limits:
            store.set_limits(**limits)
        return store

    def close(self) -> None:
        """Close every store of the run (always called, also after an OOM)."""
        stores, self.stores = self.stores, []
        for s in reversed(stores):
            s.close()


class ScenarioRunner:
    """Runs one scenario with one allocator; a ``Probe`` for the cleanup and leak checks."""

    def __init__(self, scenario: Scenario, allocator: str) -> None:
        if allocator not in ALLOCATORS:
            raise ScenarioError(f"unknown allocator {allocator!r}")
        self.scenario = scenario
        self.allocator = allocator
        self.shared_engine: Any = None
        self._last: ScenarioContext | None = None
        if scenario.directives.get("engine") == "shared":
            self.shared_engine = ScenarioContext(scenario, allocator).new_engine()

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
        return dict(totals)

    def refs(self) -> list[tuple[str, weakref.ref[Any]]]:
        ctx = self._last
        if ctx is None:
            return []
        refs = ctx.tracked
        # The run is over: drop the strong references the context still holds.
        ctx.engines = [e for e in ctx.engines if e is self.shared_engine]
        ctx.tracked = []
        return refs

    # The function under test ----------------------------------------------

    def run(self) -> list[str]:
        ctx = ScenarioContext(self.scenario, self.allocator, shared_engine=self.shared_engine)
        self._last = ctx
        try:
            if self.scenario.func is not None:
                value = self.scenario.func(ctx)
                if value is not None:
                    ctx.record(value)
            else:
                from oomfuzz.wast_adapter import execute_commands

                execute_commands(ctx, self.scenario.commands or [])
        finally:
            ctx.close()
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
