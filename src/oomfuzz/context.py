"""What a scenario is and what one run of it works with: the model every format loads into.

A format (:mod:`oomfuzz.scenario` keeps the registry) loads a file into a
:class:`Scenario`: its path, its header directives and how to run it. A run
gets a fresh :class:`ScenarioContext`: engine and store factories that
apply the directives (fuel, stack, limits, the pooling configuration) and
install cleanup accounting (:class:`CountingAllocator`), weak references
for the leak check, and the run's outcomes (its result). Header directives,
one or more comment lines anywhere in the file::

    ;; oomfuzz: allocator=pooling total_memories=1 fuel=1000 limits.memory_size=65536
    # oomfuzz: engine=shared            (Python scenarios use '#')

are documented in ``corpus/README.md`` (``DIRECTIVES`` lists every key).

A ``.py`` scenario may define ``setup_unit(ctx)``: it runs once per work
unit (scenario × mode × allocator), outside any injection, and what it
returns is ``ctx.unit`` in every run of that unit (a long-lived object: an
engine, a compiled module, a host), so no module-level dict keyed by engine
is needed. It is never failed; state that must be failed too belongs in a
lifecycle's ``setup`` (built inside every run).

Invariants:
- Input problems (missing file, unknown directive, unparsable script)
  raise :class:`ScenarioError` with a one-line message.
- Every store a run creates through the context is closed by
  :meth:`ScenarioContext.close`, also after an OOM.
- Cleanup accounting wraps the engine's instance allocator in a
  :class:`CountingAllocator`, so live instances/memories/tables are checked
  for both allocators, plus the pooling metrics when pooling.
- Steps (:meth:`ScenarioContext.step`) are where a run may retry: when the
  installed injector asks for retry-and-continue and an ``OutOfMemory``
  leaves a step, the step is run again, fault-free, on the same objects,
  and the scenario continues (the runner re-raises that ``OutOfMemory`` at
  the end); otherwise the ``OutOfMemory`` propagates unchanged. The WAST
  runner makes each command a step.
- A run may start from what an earlier run kept (:class:`Kept`: its first
  engine and the modules compiled on it), when the injector asks for
  ``reuse``: :meth:`ScenarioContext.engine` hands out that engine first and
  :meth:`ScenarioContext.module` returns its modules instead of compiling
  (what an embedder does after an OOM: a new store, the same engine and
  module). Stores are never kept.
- Otherwise :meth:`ScenarioContext.module` builds through the unit's
  :class:`~oomfuzz.reuse.ModuleReuse` (``builds``): a run whose plan refuses
  nothing inside the build gets a module renewed from one decoded and
  validated earlier, with the build's allocations counted as made; the two
  mechanisms key a source the same way (``oomfuzz.reuse.source_key``).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmrt
from oomfuzz import runstate
from oomfuzz.guest import parse_accept
from oomfuzz.inject import Injector
from oomfuzz.reuse import ModuleReuse, source_key
from wasmrt.alloc import current_hook
from wasmrt.errors import OutOfMemory

__all__ = [
    "ALLOCATORS",
    "DIRECTIVES",
    "CountingAllocator",
    "Kept",
    "Scenario",
    "ScenarioContext",
    "ScenarioError",
    "parse_directives",
    "pool_changes",
    "pool_metrics",
    "pool_state",
    "pool_size",
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
    "reuse": "false: build every module for real in every run (default: a run whose injection is not inside a module's build reuses the unit's decoded and validated module, see oomfuzz.reuse)",
    "accept": "guest_abort,guest_corrupt,exit:N: what a program may do after a refusal of its own memory.grow (comma-separated)",
    "index": "N: the injection index a regression reproducer fails at (replayed by `oomfuzz baseline --check`)",
    "steps": "NAME,NAME...: a lifecycle .py scenario runs only these of its steps, in its order (what `oomfuzz minimize` writes)",
    **{f"limits.{k}": "Store.set_limits(...) value" for k in LIMIT_KEYS},
    "limits.trap_on_grow_failure": "true: StoreLimitsBuilder.trap_on_grow_failure",
    **{k: "PoolingAllocationConfig setter (pooling runs only)" for k in POOLING_KEYS},
}

_DIRECTIVE_RE = re.compile(r"^\s*(?:;;|#)\s*oomfuzz:\s*(.*)$")


class ScenarioError(Exception):
    """A scenario cannot be loaded or run (bad input); the message is one line."""


def api(name: str) -> Any:
    """A name of wasmrt's public API (``ScenarioError`` if there is none)."""
    try:
        return getattr(wasmrt, name)
    except AttributeError:
        raise ScenarioError(f"wasmrt has no public {name!r}") from None


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
        "reuse": ("true", "false"),
        "limits.trap_on_grow_failure": ("true", "false"),
    }
    for key, allowed in choices.items():
        if key in out and out[key] not in allowed:
            raise ScenarioError(f"{source}: directive {key} must be one of {', '.join(allowed)}")
    if "accept" in out:
        try:
            parse_accept(out["accept"])
        except ValueError as e:
            raise ScenarioError(f"{source}: directive {e}") from None
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


def pool_size(needs: dict[str, int]) -> dict[str, int]:
    """``SMALL_POOL`` grown to ``needs`` (a scenario's counted needs; never shrunk)."""
    out = dict(SMALL_POOL)
    for key, value in needs.items():
        out[key] = max(out.get(key, 0), value)
    return out


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


def pool_state(engine: Any) -> dict[str, Any] | None:
    """The pooling allocator's slot state (occupancy, warm lists, decommit queue, broken
    invariants) of ``engine``, or ``None`` when it does not pool."""
    allocator = getattr(engine.ptr(), "allocator", None)
    pool = allocator.as_pooling() if allocator is not None else None
    if pool is None:
        return None
    state: dict[str, Any] = pool.slot_state()
    return state


def pool_changes(start: dict[str, Any], now: dict[str, Any]) -> dict[str, object]:
    """What a run changed in one engine's pool: slots it kept, broken invariants."""
    kept = {
        kind: sorted(set(now[f"{kind}_slots_used"]) - set(start[f"{kind}_slots_used"]))
        for kind in ("memory", "table")
    }
    return {
        "pool.memory_slots_kept": len(kept["memory"]),
        "pool.table_slots_kept": len(kept["table"]),
        "pool.problems": [p for p in now["problems"] if p not in start["problems"]],
    }


# -- scenarios --------------------------------------------------------------------


@dataclass(slots=True)
class Scenario:
    """A loaded scenario: its path, directives, text and how a run executes it.

    ``format`` is the registry key (file suffix) of the format that runs it;
    ``commands`` holds a WAST script's parsed commands, ``func`` a Python
    scenario's ``scenario(ctx)`` (or any other format's run function).
    """

    path: Path
    directives: dict[str, str]
    text: str
    commands: list[Any] | None = None
    func: Callable[[ScenarioContext], object] | None = None
    format: str = ""
    #: The pooling configuration the scenario needs (``PoolingAllocationConfig`` setter
    #: names), as its format counted it; a pooling run gets at least this, at least
    #: ``SMALL_POOL``, and exactly what a directive sets.
    pool: dict[str, int] = field(default_factory=dict)
    #: A ``.py`` scenario's ``setup_unit(ctx)``: builds, once per work unit and outside
    #: any injection, what every run of the unit gets as ``ctx.unit``.
    unit_setup: Callable[[ScenarioContext], object] | None = None
    #: A lifecycle ``.py`` scenario's step names, in order (empty for other scenarios).
    step_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.format:
            self.format = ".wast" if self.func is None else ".py"

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


# -- the run context ----------------------------------------------------------------


@dataclass(eq=False)
class Kept:
    """What a run leaves for a later run on the same objects: an engine and its modules."""

    engine: Any
    #: By source key (``oomfuzz.reuse.source_key``): the source's owner and its module.
    modules: dict[object, tuple[object, Any]] = field(default_factory=dict)


def active_injector() -> Injector | None:
    """The oomfuzz injector installed for this run, if any."""
    hook = current_hook()
    return hook if isinstance(hook, Injector) else None


@dataclass(eq=False)
class ScenarioContext:
    """What a scenario run uses: engine/store factories, tracking, outcomes."""

    scenario: Scenario
    allocator: str
    shared_engine: Any = None
    reuse: Kept | None = None
    #: Modules this run compiled through :meth:`module`, by source key: (owner, module)
    #: (kept for a later run).
    modules: dict[object, tuple[object, Any]] = field(default_factory=dict)
    outcomes: list[str] = field(default_factory=list)
    stores: list[Any] = field(default_factory=list)
    engines: list[Any] = field(default_factory=list)
    counters: list[CountingAllocator] = field(default_factory=list)
    tracked: list[tuple[str, weakref.ref[Any]]] = field(default_factory=list)
    #: Each pooling engine of the run with its slot state when the run began using it.
    pool_starts: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    #: What the scenario's ``setup_unit(ctx)`` built for this work unit (``None``: none).
    unit: Any = None
    #: The unit's module reuse (``oomfuzz.reuse``); ``None``: every module is built for real.
    builds: ModuleReuse | None = None

    @property
    def directives(self) -> dict[str, str]:
        return self.scenario.directives

    @property
    def wasmrt(self) -> Any:
        return wasmrt

    def api(self, name: str) -> Any:
        return api(name)

    def record(self, outcome: object) -> None:
        self.outcomes.append(str(outcome))

    def track(self, obj: object, label: str) -> None:
        try:
            self.tracked.append((label, weakref.ref(obj)))
        except TypeError:
            pass  # not weak-referenceable: nothing to track

    def config(self) -> Any:
        d = self.directives
        cfg = api("Config")()
        if "fuel" in d:
            cfg.consume_fuel = True
        if "max_wasm_stack" in d:
            cfg.max_wasm_stack = int(d["max_wasm_stack"])
        if self.allocator == "pooling":
            pool = wasmrt.PoolingAllocationConfig()
            for key, value in {
                **pool_size(self.scenario.pool),
                **{k: int(d[k]) for k in POOLING_KEYS if k in d},
            }.items():
                getattr(pool, key)(value)
            cfg.allocation_strategy = pool
        return cfg

    def new_engine(self) -> Any:
        """A new Engine for this scenario's allocator, with cleanup accounting installed."""
        engine = api("Engine")(self.config())
        return self.instrument(engine)

    def instrument(self, engine: Any) -> Any:
        core = engine.ptr()
        if not isinstance(core.allocator, CountingAllocator):
            core.allocator = CountingAllocator(core.allocator)
        self.counters.append(core.allocator)
        self.engines.append(engine)
        self.note_pool(engine)
        return engine

    def note_pool(self, engine: Any) -> None:
        start = pool_state(engine)
        if start is not None:
            self.pool_starts.append((engine, start))

    def step(self, fn: Callable[..., Any], *args: Any, label: str = "") -> Any:
        """``fn(*args)``; retried fault-free on the same objects after an ``OutOfMemory``
        when the injector asks for retry-and-continue (see the module docstring)."""
        try:
            return fn(*args)
        except OutOfMemory as oom:
            inj = active_injector()
            if inj is None or not inj.retry or inj.retried:
                raise
            inj.begin_retry(label or getattr(fn, "__qualname__", "step"), oom)
        return fn(*args)

    def module(
        self,
        engine: Any,
        wasm: bytes | str | Callable[[], bytes | str],
        owner: object = None,
    ) -> Any:
        """``Module(engine, wasm)`` for this run. ``wasm`` may be a function giving the
        text or bytes; ``owner`` then names it (the same object in every run).

        A run on a kept engine (post-OOM rerun) gets the very module object the kept
        run compiled; otherwise the module comes through the unit's module reuse
        (``oomfuzz.reuse``: renewed from a decoded, validated copy when the run's
        plan refuses nothing inside the build)."""
        owner = wasm if owner is None else owner
        key = source_key(owner)  # an identity key: the owner is the same object in every run
        reuse = self.reuse
        if reuse is not None and engine is reuse.engine and key in reuse.modules:
            module = reuse.modules[key][1]
        elif self.builds is None:
            module = api("Module")(engine, wasm() if callable(wasm) else wasm)
        else:
            module = self.builds.module(engine, owner, wasm if callable(wasm) else lambda: wasm)
        if engine is self.first_engine():
            self.modules[key] = (owner, module)  # the owner kept alive: its id stays its own
        return module

    def first_engine(self) -> Any:
        return self.engines[0] if self.engines else None

    def kept(self) -> Kept | None:
        """What a later run may reuse: this run's first engine and its modules."""
        engine = self.first_engine()
        return None if engine is None else Kept(engine, dict(self.modules))

    def engine(self) -> Any:
        reuse = self.reuse
        if reuse is not None and self.shared_engine is None and not self.engines:
            self.engines.append(reuse.engine)
            self.counters.append(reuse.engine.ptr().allocator)
            return reuse.engine
        if self.shared_engine is not None:
            if self.shared_engine not in self.engines:
                self.engines.append(self.shared_engine)
                self.counters.append(self.shared_engine.ptr().allocator)
                self.note_pool(self.shared_engine)
            return self.shared_engine
        return self.new_engine()

    def store(self, engine: Any = None) -> Any:
        """A new Store (closed automatically at the end of the run) with fuel and limits."""
        engine = engine if engine is not None else self.engine()
        store = api("Store")(engine)
        self.stores.append(store)
        self.track(store, "Store")
        # The run's stores are state every operation must restore (oomfuzz.operation, the
        # WAST state commands): their counts, fuel, instances' memories/tables/globals.
        runstate.track(store, "Store")
        d = self.directives
        if "fuel" in d:
            store.set_fuel(int(d["fuel"]))
        limits = {k: int(d[f"limits.{k}"]) for k in LIMIT_KEYS if f"limits.{k}" in d}
        if d.get("limits.trap_on_grow_failure") == "true":
            b = wasmrt.StoreLimitsBuilder()
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
