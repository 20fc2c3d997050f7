"""What a run must leave as it found it: state snapshots, failed operations, tracked objects.

The public API (re-exported by ``oomfuzz``)::

    oomfuzz.state(fn, name=None)    # fn() -> comparable data that must not change
                                    # when an operation fails
    oomfuzz.track(obj, label=None)  # obj must be gone after the run (deep leak
                                    # check, with the referrer chain); a runtime
                                    # object's state is also snapshotted
    with oomfuzz.operation(name):   # one operation: if it fails by OOM (or a
        ...                         # limiter refusal), the snapshot after it
                                    # must equal the one before it

Where registrations live: made inside a run (the function under test, a
``.py`` scenario) they belong to that run and end with it; made outside any
run (a fixture, a test body around ``OomTest(...).test``) they apply to every
run until the handle is removed (``handle.remove()`` or ``with
oomfuzz.state(fn): ...``), and a tracked object is then long-lived: its state
is snapshotted, it is not expected to die, and what it keeps alive is not a
leak.

The harness records each run with :func:`recording`: a :class:`RunState`
that is also wasmrt's observer (:mod:`wasmrt.observe`), so it holds weak
references to every internal object the run created (store cores, module
instances, memories, tables, compiled modules) and wraps the runtime's own
fallible operations (``memory.grow``, ``table.grow``: failing = -1 or an
exception) with a snapshot of their subject.

Invariants:
- A snapshot is plain comparable data (tuples, ints, digests); it never
  holds an object of the run, so keeping it cannot keep a store alive.
  Memory contents are compared by a ``blake2b`` digest; table entries and
  reference values by identity; floats by their bits (NaN equals itself).
- An operation is judged only when it failed because of memory: it raised
  ``OutOfMemory``/``GrowRefused``/``ResourceLimitExceeded`` (in its
  exception chain), or it raised anything while an allocation inside it was
  refused, or (runtime operations) it returned -1. A failure for another
  reason (a trap, a host error) is not an atomicity question.
- Violations are recorded as text (operation, where it was called, what
  differs); the ``not_atomic`` check (``oomfuzz.checks``) reports them.
- Nothing here calls ``try_alloc``: recording never changes a run's
  allocation count.
"""

from __future__ import annotations

import gc
import hashlib
import struct
import sys
import types
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wasmrt.alloc import current_hook
from wasmrt.errors import GrowRefused, OutOfMemory, ResourceLimitExceeded
from wasmrt.observe import install_observer

__all__ = [
    "Registration",
    "RunState",
    "Violation",
    "current_run",
    "describe",
    "operation",
    "recording",
    "reachable_from",
    "referrer_chain",
    "refusals",
    "state",
    "track",
]

R = TypeVar("R")

#: Exceptions that mean "failed for lack of memory or by a limiter's refusal".
MEMORY_FAILURES = (OutOfMemory, GrowRefused, ResourceLimitExceeded)
_SELF = __file__


@dataclass(frozen=True, slots=True)
class Violation:
    """An operation that failed and left state changed."""

    operation: str
    where: str
    diff: str
    cause: str

    def describe(self) -> str:
        return (
            f"{self.operation} failed ({self.cause}) at {self.where} but changed state: {self.diff}"
        )


@dataclass(eq=False, slots=True)
class _Provider:
    name: str
    fn: Callable[[], object]


@dataclass(eq=False, slots=True)
class _Tracked:
    label: str
    ref: Callable[[], Any]
    #: Whether ``ref`` is weak (only then can the object be watched for a leak).
    weak: bool = True


def _tracked(obj: object, label: str) -> _Tracked:
    """Watch ``obj`` weakly; a wrapper that cannot be weakly referenced is watched through
    its vm object; anything else is held (for snapshots) until the run ends."""
    for target in (obj, _core_of(obj)):
        try:
            return _Tracked(label, weakref.ref(target))
        except TypeError:
            continue
    return _Tracked(label, lambda: obj, weak=False)


@dataclass(eq=False)
class Registration:
    """A provider or tracked object made outside any run; ``remove()`` or use ``with``."""

    item: _Provider | _Tracked
    registry: list[Any]

    def remove(self) -> None:
        if self.item in self.registry:
            self.registry.remove(self.item)

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


#: Registrations made outside any run (apply to every run until removed).
_AMBIENT_PROVIDERS: list[_Provider] = []
_AMBIENT_TRACKED: list[_Tracked] = []


# -- describing runtime objects ------------------------------------------------------------


def _ident(v: Any) -> object:
    """A comparable stand-in for one value: scalars as themselves, floats by bits, refs by id."""
    if v is None or isinstance(v, bool | int | str | bytes):
        return v
    if isinstance(v, float):
        return ("f", struct.pack("<d", v))
    return ("ref", id(v))


def _memory(m: Any) -> tuple[object, ...]:
    size = int(m.size)
    digest = hashlib.blake2b(memoryview(m.data)[:size], digest_size=16).digest() if size else b""
    return ("memory", int(m.pages), size, digest)


def _element(table: Any, v: Any) -> object:
    if type(v).__name__ == "LazyFuncRef" and table.lazy_owner is not None:
        v = table.lazy_owner.funcs[v.index]  # a placeholder stands for its function
    return _ident(v)


def _table(t: Any) -> tuple[object, ...]:
    return ("table", len(t.elements), tuple(_element(t, v) for v in t.elements))


def _instance(i: Any) -> tuple[object, ...]:
    return (
        "instance",
        tuple(_memory(m) for m in i.mems),
        tuple(_table(t) for t in i.tables),
        tuple(_ident(g.value) for g in i.globals),
    )


def _store(s: Any) -> tuple[object, ...]:
    host = tuple(describe(o) for o in s.host_objects if _describer(o) is not None)
    return (
        "store",
        ("instances", s.instance_count, len(s.instances)),
        ("memories", s.memory_count),
        ("tables", s.table_count),
        ("fuel", s.fuel_counter),
        tuple(_instance(i) for i in s.instances),
        host,
    )


def _linker(linker: Any) -> tuple[object, ...]:
    defs = linker._defs
    return ("linker", tuple(sorted((k, _ident(d.extern)) for k, d in defs.items())))


def _core_of(obj: Any) -> Any:
    """The vm object behind a public wasmrt wrapper (or ``obj`` itself)."""
    for attr in ("_memory", "_table", "_global", "_instance"):
        inner = getattr(obj, attr, None)
        if inner is not None and type(inner).__module__.startswith("wasmrt.vm"):
            return inner
    if type(obj).__name__ == "Store" and type(obj).__module__.startswith("wasmrt."):
        try:
            return obj.ptr()
        except ValueError:  # closed: nothing left to compare
            return None
    return obj


_DESCRIBERS: dict[str, Callable[[Any], tuple[object, ...]]] = {
    "LinearMemory": _memory,
    "TableInstance": _table,
    "GlobalInstance": lambda g: ("global", _ident(g.value)),
    "ModuleInstance": _instance,
    "StoreCore": _store,
    "Linker": _linker,
}


def _describer(obj: Any) -> Callable[[Any], tuple[object, ...]] | None:
    if not type(obj).__module__.startswith("wasmrt."):
        return None
    return _DESCRIBERS.get(type(obj).__name__)


def _describe_sized(obj: Any) -> object:
    """``describe`` without a memory's contents (its sizes only)."""
    if type(obj).__name__ == "LinearMemory":
        return ("memory", int(obj.pages), int(obj.size), None)
    return describe(obj)


def describe(obj: Any) -> object:
    """Comparable state of a wasmrt object (public wrapper or vm object), else ``None``."""
    core = _core_of(obj)
    if core is None:
        return None
    fn = _describer(core)
    return None if fn is None else fn(core)


def _diff(before: dict[str, object], after: dict[str, object]) -> str:
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if b != a:
            out.append(f"{key}: {_first_difference(b, a)}")
    return "; ".join(out)


def _first_difference(b: object, a: object, path: str = "") -> str:
    """Where two snapshots first differ, readably (``memory: pages 1 -> 2``)."""
    if isinstance(b, tuple) and isinstance(a, tuple):
        if b and a and isinstance(b[0], str) and b[0] == a[0] and len(b) == len(a):
            names = {
                "memory": ("pages", "size", "contents"),
                "table": ("size", "entries"),
            }.get(b[0])
            for i, (x, y) in enumerate(zip(b[1:], a[1:], strict=True)):
                if x != y:
                    label = names[i] if names and i < len(names) else str(i)
                    return _first_difference(x, y, f"{path}{b[0]}.{label} ")
        elif len(b) == len(a):
            for i, (x, y) in enumerate(zip(b, a, strict=True)):
                if x != y:
                    return _first_difference(x, y, f"{path}[{i}] ")
    text_b, text_a = _short(b), _short(a)
    return f"{path}before {text_b}, after {text_a}"


def _short(v: object, limit: int = 80) -> str:
    if isinstance(v, bytes) and len(v) == 16:
        return "digest " + v.hex()[:8]
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- one run ----------------------------------------------------------------------------


class RunState:
    """The recording of one run; installed as wasmrt's observer while the run executes."""

    def __init__(self) -> None:
        self.providers: list[_Provider] = []
        self.tracked: list[_Tracked] = []
        #: Weak references to the vm objects the run created, with their kind.
        self.created: list[_Tracked] = []
        self.violations: list[Violation] = []
        #: Objects that legitimately outlive the run (what they keep alive is no leak).
        self.long_lived: list[weakref.ref[Any]] = []

    # wasmrt.observe.Observer ---------------------------------------------------

    def created_obj(self, obj: object) -> None:
        try:
            self.created.append(_Tracked(type(obj).__name__, weakref.ref(obj)))
        except TypeError:
            pass  # not weak-referenceable: cannot be watched (the vm's classes all are)

    def operation(self, name: str, subject: object, run: Callable[[], R]) -> R:
        # A memory's bytes are digested only while the injector may still refuse: a
        # grow's cost is then the digest, otherwise two size comparisons.
        view = _describe_sized if not may_refuse() else describe
        return self.judged(name, None, lambda: {name: view(subject)}, run)

    def judged(
        self,
        name: str,
        where: str | None,
        snapshot: Callable[[], dict[str, object]],
        run: Callable[[], R],
    ) -> R:
        """Run one operation (failing: an exception or -1), judged against ``snapshot()``.

        ``where`` names the operation's site (``None``: its caller's frame, found only
        when a violation is recorded)."""
        before = snapshot()
        refused = refusals()
        try:
            result = run()
        except BaseException as e:
            self.check(name, before, snapshot, e, refused, where)
            raise
        if result == -1:
            self.check(name, before, snapshot, None, refused, where)
        return result

    # snapshots --------------------------------------------------------------------

    def snapshot(self, extra: dict[str, object] | None = None) -> dict[str, object]:
        """Every provider's data and every tracked object's runtime state, plus ``extra``."""
        out: dict[str, object] = dict(extra or {})
        for p in (*_AMBIENT_PROVIDERS, *self.providers):
            out[f"state {p.name}"] = p.fn()
        for t in (*_AMBIENT_TRACKED, *self.tracked):
            obj = t.ref()
            if obj is not None:
                d = describe(obj)
                if d is not None:
                    out[f"tracked {t.label}"] = d
        return out

    def check(
        self,
        name: str,
        before: dict[str, object],
        after: Callable[[], dict[str, object]],
        exc: BaseException | None,
        refused_before: int,
        where: str | None = None,
    ) -> None:
        """Judge one finished operation (``exc``: how it failed; ``None``: it returned -1)."""
        cause = _failure_cause(exc, refused_before)
        if cause is None:
            return
        now = after()
        if now == before:
            return
        self.violations.append(Violation(name, where or _caller_site(), _diff(before, now), cause))

    # the leak check's view ------------------------------------------------------------

    def finish(self) -> list[tuple[str, weakref.ref[Any]]]:
        """End the run: drop the providers (their closures may hold the run's objects) and
        return weak references to what must be gone now (tracked objects first)."""
        self.providers = []
        for t in _AMBIENT_TRACKED:  # tracked outside any run: long-lived
            if isinstance(t.ref, weakref.ref):
                self.long_lived.append(t.ref)
        refs = [
            (t.label, t.ref)
            for t in (*self.tracked, *self.created)
            if isinstance(t.ref, weakref.ref)
        ]
        self.tracked = []
        self.created = []
        return refs


def reachable_from(
    roots: list[weakref.ref[Any]], targets: set[int], limit: int = 200_000
) -> set[int]:
    """The ids in ``targets`` of objects reachable from the live ``roots``.

    Breadth first, and it stops once every target is found: survivors a run keeps
    on purpose (a kept module's compiled code) sit a few references below a root,
    while the whole graph under a kept engine or module (its IR) is large. Bounded
    by ``limit`` objects visited.
    """
    todo = deque(r() for r in roots)
    # A module's globals belong to no object: a long-lived object holding any function
    # would otherwise "own" every module-level container (and what leaks into one).
    seen: set[int] = set(_module_dicts())
    found: set[int] = set()
    visited = 0
    while todo and visited < limit and len(found) < len(targets):
        obj = todo.popleft()
        if obj is None or id(obj) in seen or isinstance(obj, type | types.ModuleType):
            continue
        seen.add(id(obj))
        visited += 1
        if id(obj) in targets:
            found.add(id(obj))
        todo.extend(gc.get_referents(obj))
    return found


class _ObserverAdapter:
    """``wasmrt.observe.Observer`` over a :class:`RunState` (its ``created`` name is taken)."""

    __slots__ = ("run",)

    def __init__(self, run: RunState) -> None:
        self.run = run

    def created(self, obj: object) -> None:
        self.run.created_obj(obj)

    def operation(self, name: str, subject: object, run: Callable[[], R]) -> R:
        return self.run.operation(name, subject, run)


_CURRENT: ContextVar[RunState | None] = ContextVar("oomfuzz_run_state", default=None)


def current_run() -> RunState | None:
    """The run being recorded in this context, or ``None`` outside any run."""
    return _CURRENT.get()


@contextmanager
def recording(run: RunState | None = None) -> Iterator[RunState]:
    """Record one run: registrations go to it and wasmrt reports to it while the block runs."""
    run = run if run is not None else RunState()
    token = _CURRENT.set(run)
    try:
        with install_observer(_ObserverAdapter(run)):
            yield run
    finally:
        _CURRENT.reset(token)


def may_refuse() -> bool:
    """Whether the installed injector may still refuse an allocation in this run.

    A fault-free (``count``) plan may be a forking run whose children refuse, and an
    unknown hook may refuse anything: both answer yes.
    """
    inj = current_hook()
    mode = getattr(inj, "mode", None)
    if mode == "transient":
        return int(getattr(inj, "count", 0)) <= int(getattr(inj, "fail_at", -1))
    return True


def refusals() -> int:
    """How many allocations the installed injector has refused so far."""
    inj = current_hook()
    injected = getattr(inj, "injected", None)
    return len(injected) if isinstance(injected, list) else 0


def _failure_cause(exc: BaseException | None, refused_before: int) -> str | None:
    """Why an operation counts as failed for lack of memory, or ``None``."""
    if exc is None:
        return "returned -1"
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not c for c in chain):
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        if isinstance(e, MEMORY_FAILURES):
            return f"{type(e).__name__}"
    if refusals() > refused_before:
        return f"{type(exc).__name__} after a refused allocation"
    return None


def _caller_site() -> str:
    """``file:line (function)`` of the first frame outside this module and wasmrt."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        fname = frame.f_code.co_filename
        if (
            fname != _SELF
            and "/wasmrt/" not in fname.replace("\\", "/")
            and "contextlib" not in fname
        ):
            return f"{fname}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "<unknown>"


# -- the public API ---------------------------------------------------------------------


def state(fn: Callable[[], object], name: str | None = None) -> Registration:
    """Register ``fn`` (no arguments, returns comparable data) as state that a failed
    operation must leave unchanged.

    Inside a run it lasts for the run; outside any run it applies to every run
    until the returned handle is removed (``.remove()``, or ``with
    oomfuzz.state(fn): ...``).
    """
    prov = _Provider(name or getattr(fn, "__qualname__", None) or repr(fn), fn)
    run = _CURRENT.get()
    registry: list[Any] = _AMBIENT_PROVIDERS if run is None else run.providers
    registry.append(prov)
    return Registration(prov, registry)


def track(obj: R, label: str | None = None) -> R:
    """Put ``obj`` under the leak check (it must be gone after the run) and, for a wasmrt
    object, its state under the atomicity check; returns ``obj``.

    Outside any run the object is long-lived: snapshotted, never a leak.
    """
    item = _tracked(obj, label or type(obj).__qualname__)
    run = _CURRENT.get()
    if run is not None:
        run.tracked.append(item)
    else:
        _AMBIENT_TRACKED.append(item)
    return obj


def untrack_all() -> None:
    """Forget every registration made outside a run (tests and plugin teardown)."""
    _AMBIENT_PROVIDERS.clear()
    _AMBIENT_TRACKED.clear()


@contextmanager
def operation(name: str) -> Iterator[None]:
    """One operation: if it fails by OOM or a limiter refusal, state must be as before.

    Outside a recorded run it only runs the block (there is no one to report to).
    """
    run = _CURRENT.get()
    if run is None:
        yield
        return
    before = run.snapshot()
    refused = refusals()
    where = _caller_site()
    try:
        yield
    except BaseException as e:
        run.check(name, before, run.snapshot, e, refused, where)
        raise


def long_lived(obj: object) -> None:
    """Declare ``obj`` as outliving the current run (what it keeps alive is no leak)."""
    run = _CURRENT.get()
    if run is not None:
        try:
            run.long_lived.append(weakref.ref(obj))
        except TypeError:
            pass


# -- who keeps an object alive ---------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    obj_id: int
    parent: _Node | None
    edge: str
    depth: int = 0
    extra: list[str] = field(default_factory=list)


#: ``sys.modules``' size when the map was built, the modules (held, so that no id in
#: the map is reused while it is cached), and the map.
_MODULE_DICTS: tuple[int, list[Any], dict[int, str]] = (-1, [], {})


def _module_dicts() -> dict[int, str]:
    """Each imported module's globals dict, by id: rebuilt only when the number of
    imported modules changed (the leak check asks once per injection)."""
    global _MODULE_DICTS
    n, _, dicts = _MODULE_DICTS
    if n != len(sys.modules):
        modules = list(sys.modules.items())
        dicts = {id(vars(m)): name for name, m in modules if m is not None}
        _MODULE_DICTS = (len(modules), [m for _, m in modules], dicts)
    return dicts


def _edge(ref: Any, child: Any) -> str:
    """How ``ref`` refers to ``child``, readably."""
    if isinstance(ref, dict):
        for k, v in ref.items():
            if v is child:
                return f"[{k!r}]"
        return "(dict key)"
    if isinstance(ref, tuple):
        for i, v in enumerate(ref):
            if v is child:
                return f"[{i}]"
    if isinstance(ref, list | tuple | set | frozenset):
        # No list index: it depends on how many runs filled the list before, and the
        # chain must read the same whichever engine ran the injection.
        return "(item)"
    if isinstance(ref, types.CellType):
        return "(closure cell)"
    if isinstance(ref, types.FunctionType):
        for attr, what in (
            ("__defaults__", "default arguments"),
            ("__kwdefaults__", "keyword defaults"),
            ("__closure__", "closure"),
            ("__globals__", "globals"),
            ("__dict__", "attributes"),
        ):
            if getattr(ref, attr, None) is child:
                return f"({what})"
        return ""
    if isinstance(ref, types.FrameType):
        for k, v in ref.f_locals.items():
            if v is child:
                return f"local {k!r}"
        return "(frame)"
    for klass in type(ref).__mro__:
        for name in getattr(klass, "__slots__", ()):
            if getattr(ref, name, None) is child:
                return f".{name}"
    return ""


def _describe_ref(ref: Any, mods: dict[int, str]) -> str:
    if id(ref) in mods:
        return f"module {mods[id(ref)]}"
    if isinstance(ref, types.FrameType):
        code = ref.f_code
        return f"frame {code.co_name} ({code.co_filename}:{ref.f_lineno})"
    if isinstance(ref, types.FunctionType):
        return f"function {ref.__qualname__}"
    if isinstance(ref, types.CellType):
        return "closure cell"
    return type(ref).__qualname__


def referrer_chain(obj: object, *, budget: int = 400, ignore: tuple[int, ...] = ()) -> str:
    """The shortest chain of referrers from a root (a module global, a frame, a function's
    defaults or closure, a class) down to ``obj``, as one readable line.

    Breadth-first over ``gc.get_referrers``; the search's own containers and
    this module's frames are skipped; ``budget`` bounds the objects visited.
    """
    # Frozen objects (the fork engine freezes the heap before forking) are invisible to
    # gc.get_referrers: thaw them for the search (this runs only when a leak was found).
    frozen = gc.get_freeze_count() > 0
    if frozen:
        gc.unfreeze()
    try:
        return _search_referrers(obj, budget, ignore)
    finally:
        if frozen:
            gc.freeze()


def _search_referrers(obj: object, budget: int, ignore: tuple[int, ...]) -> str:
    mods = _module_dicts()
    frame = sys._getframe()
    queue: list[tuple[Any, _Node]] = [(obj, _Node(id(obj), None, type(obj).__qualname__))]
    seen: set[int] = {id(obj), *ignore}
    own = {id(queue), id(seen), id(frame)}
    visited = 0
    best: tuple[Any, _Node] | None = None
    head = 0
    try:
        while head < len(queue) and visited < budget:
            cur, node = queue[head]
            head += 1
            visited += 1
            refs = gc.get_referrers(cur)
            own.add(id(refs))
            for ref in refs:
                rid = id(ref)
                if rid in seen or rid in own or rid == id(queue[head - 1]):
                    continue
                if isinstance(ref, types.FrameType) and ref.f_code.co_filename == _SELF:
                    continue
                if (
                    isinstance(ref, tuple)
                    and len(ref) == 2
                    and ref[0] is cur
                    and isinstance(ref[1], _Node)
                ):
                    continue  # a queue entry of this search
                seen.add(rid)
                child = _Node(rid, node, _edge(ref, cur), node.depth + 1)
                child.extra.append(_describe_ref(ref, mods))
                if rid in mods or isinstance(ref, types.FrameType | type):
                    return _format_chain(child)
                if isinstance(ref, types.FunctionType) and best is None:
                    best = (ref, child)
                queue.append((ref, child))
        if best is not None:
            return _format_chain(best[1])
        return f"{type(obj).__qualname__} (no root found within {budget} referrers)"
    finally:
        del frame, queue


def _format_chain(node: _Node) -> str:
    parts: list[str] = []
    cur: _Node | None = node
    while cur is not None:
        if cur.parent is None:
            parts.append(cur.edge)
        else:
            label = cur.extra[0] if cur.extra else ""
            parts.append(
                f"{label}{cur.edge}"
                if cur.edge.startswith(("[", "."))
                else f"{label} {cur.edge}".strip()
            )
        cur = cur.parent
    return " -> ".join(parts)
