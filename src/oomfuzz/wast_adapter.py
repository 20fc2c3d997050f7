"""Executes ``wasmrt.text.wast`` commands through wasmrt's public API for a scenario run.

Invariants:
- Parsing (``parse``) happens once, outside any injection; execution
  (``execute_commands``) happens inside the injected run, so module
  compilation (``Module(engine, bytes)``) and everything after is swept.
- ``OutOfMemory`` is re-raised before any other handler looks at an
  exception: it ends the script and is never an expected error. A ``Trap``
  raised while an ``OutOfMemory`` was being handled (one in its
  ``__cause__``/``__context__`` chain) is re-raised too, never recorded or
  accepted as expected: the checks classify it (an OOM turned into a trap).
- A plain ``invoke``/``get`` (an action outside any ``assert_*``) that traps
  does not end the script: the trap is the command's recorded outcome
  (``LINE: NAME trapped: TRAP_CODE (reason)``, ``host`` for a trap the host
  raised) and the script continues, so the post-OOM comparison sees the
  trap code. Generated scenarios (``strategies.scenarios()``) rely on this.
- Expectations: ``assert_return`` compares bit patterns (NaN patterns
  ``nan:canonical``/``nan:arithmetic`` by their bits; externrefs by the
  identity of the object passed in); a trap inside it is an error, as in
  the spec. ``assert_trap``/``assert_exhaustion`` and
  ``assert_uninstantiable`` need a ``Trap`` whose message matches loosely
  (:func:`trap_matches`: as the spec runner, either text contains the
  other, or the expected text starts with the spec's wording for the trap
  code (``TRAP_WORDING``: "uninitialized element 2"), or each of its words
  is a word of the reason, case insensitive; wasmrt says "wasm
  `unreachable` instruction executed" where the spec says "unreachable");
  ``assert_invalid``/``assert_malformed`` need a ``WasmtimeError`` from
  ``Module(...)``; ``assert_unlinkable`` needs a non-OOM ``WasmtimeError``
  from instantiation (so an exhausted pool, "maximum concurrent limit",
  or a store limit can be asserted with it). A failed expectation raises
  ``ExpectationFailed``.
- :func:`pool_needs` counts, before any run, the pooling configuration a
  script needs (instances, memories, tables, sizes), so a pooling run of a
  spec file behaves as an on-demand one.
- Host modules come from the linker on demand, only those a module
  imports: ``spectest`` (the spec's) and ``oomhost`` (host-side grows,
  memory/table/global access, host-created objects, and a callback into
  the calling instance's ``callback`` export), each defined per store.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oomfuzz.checks import ExpectationFailed, exception_chain
from oomfuzz.context import ScenarioContext, ScenarioError, api
from oomfuzz.runstate import RunState, current_run, describe, may_refuse, refusals
from wasmrt.errors import OutOfMemory, WasmtimeError
from wasmrt.text.wast import parse_wast
from wasmrt.trap import SPEC_TRAP_WORDING, Trap
from wasmrt.vm import values

__all__ = ["TRAP_WORDING", "execute_commands", "parse", "pool_needs", "trap_matches"]

_MASK = {"i32": (1 << 32) - 1, "i64": (1 << 64) - 1}


def parse(text: str, source: str) -> list[Any]:
    try:
        return list(parse_wast(text, source))
    except WasmtimeError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        # The parser's message usually names the place (source:line:col) already.
        raise ScenarioError(first if first.startswith(source) else f"{source}: {first}") from None


#: The spec's wording for each trap code, as the spec runner accepts it.
TRAP_WORDING = SPEC_TRAP_WORDING


#: Commands whose module a run instantiates (or tries to) and so takes pool slots for.
_INSTANTIATING = ("ModuleCommand", "AssertTrap", "AssertUninstantiable", "AssertUnlinkable")
#: What the ``spectest`` host module creates in a store: one memory, one table.
_SPECTEST = {"total_core_instances": 1, "total_memories": 1, "total_tables": 1}
_WASM_PAGE = 65536
_MAX_PAGES = 65536


def pool_needs(commands: list[Any]) -> dict[str, int]:
    """The pooling configuration a script needs so every module it instantiates fits.

    Counted before any run, from the modules themselves: instances (one per
    instantiating command), defined memories and tables (summed, and the most
    any one module defines), the largest table size a module declares, and the
    largest memory it may grow to (its declared maximum, or 4 GiB when it has
    none, as on-demand engines allow). A pooling run then behaves as an
    on-demand one: the spec's expectations hold under both allocators. A
    module that does not parse is skipped here (the run reports it).
    """
    need = {k: 0 for k in ("total_core_instances", "total_memories", "total_tables")}
    per_module = {"max_memories_per_module": 0, "max_tables_per_module": 0}
    max_pages = 0
    table_elements = 0
    spectest = False
    for cmd in commands:
        wm = getattr(cmd, "module", None)
        if type(cmd).__name__ not in _INSTANTIATING or wm is None:
            continue
        try:
            m = wm.parse()
        except (WasmtimeError, ValueError, IndexError, RecursionError):
            continue  # not a module a run can instantiate: nothing to reserve
        spectest = spectest or any(i.module == "spectest" for i in m.imports)
        need["total_core_instances"] += 1
        need["total_memories"] += len(m.mems)
        need["total_tables"] += len(m.tables)
        per_module["max_memories_per_module"] = max(
            per_module["max_memories_per_module"], len(m.mems)
        )
        per_module["max_tables_per_module"] = max(
            per_module["max_tables_per_module"], len(m.tables)
        )
        for mt in m.mems:
            max_pages = max(max_pages, _MAX_PAGES if mt.limits.max is None else mt.limits.max)
        for tt in m.tables:
            table_elements = max(table_elements, tt.limits.min, tt.limits.max or 0)
    if spectest:
        for k, v in _SPECTEST.items():
            need[k] += v
    return {
        **need,
        **per_module,
        "max_memory_size": min(max_pages, _MAX_PAGES) * _WASM_PAGE,
        "table_elements": table_elements,
    }


def trap_matches(expected: str, trap: Trap) -> bool:
    """Does ``trap`` loosely match a script's expected trap message?

    Accepted as the spec runner does: either text contains the other, the
    expected message starts with the spec's wording for the trap's code
    (:data:`TRAP_WORDING`), or every word of the expected text is a word of
    the reason (case insensitive).
    """
    want = expected.strip().lower()
    reason = trap.reason.lower()
    if not want or want in reason or (reason and reason in want):
        return True
    if trap.trap_code is not None and any(
        want.startswith(w) for w in TRAP_WORDING.get(trap.trap_code, ())
    ):
        return True
    words = set(re.findall(r"[a-z0-9]+", reason))
    return all(w in words for w in re.findall(r"[a-z0-9]+", want))


def _oom_inside(trap: Trap) -> bool:
    """Was ``trap`` raised while an ``OutOfMemory`` was handled (an OOM turned into a trap)?"""
    return any(isinstance(e, OutOfMemory) for e in exception_chain(trap)[1:])


def _trap_text(trap: Trap) -> str:
    code = trap.trap_code.name if trap.trap_code is not None else "host"
    return f"{code} ({trap.reason})"


@dataclass(frozen=True, slots=True)
class ExternRef:
    """The host object a script's ``ref.extern N`` stands for (compared by identity)."""

    n: int


def _bits(kind: str) -> tuple[Callable[[int], float], Callable[[float], int]]:
    if kind == "f32":
        return values.f32_from_bits, values.f32_to_bits
    return values.f64_from_bits, values.f64_to_bits


class _Script:
    def __init__(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self.engine = ctx.engine()
        self.store = ctx.store(self.engine)
        self.linker = api("Linker")(self.engine)
        self.linker.allow_shadowing = True
        self.instances: dict[str, Any] = {}
        self.current: Any = None
        self.externrefs: dict[int, ExternRef] = {}
        self.defined_hosts: set[str] = set()
        self.mode = ctx.directives.get("instantiate", "linker")
        #: Called once the harness's host modules are in the linker, just before the
        #: runtime instantiates (the atomicity check re-takes its "before" there).
        self.settled: Callable[[], None] | None = None

    # -- values -------------------------------------------------------------------

    def arg(self, v: Any) -> Any:
        Val = api("Val")
        t = v.type
        if t in ("i32", "i64"):
            return getattr(Val, t)(int(v.bits))
        if t in ("f32", "f64"):
            return getattr(Val, t)(_bits(t)[0](int(v.bits)))
        if t == "externref":
            if v.bits is None:
                return Val.externref(None)
            return Val.externref(self.externrefs.setdefault(v.bits, ExternRef(v.bits)))
        if t == "funcref":
            return Val.funcref(None)
        if t == "v128":
            return Val("v128", int(v.bits))
        raise ScenarioError(f"unsupported argument type {t}")

    def matches(self, got: Any, exp: Any) -> bool:
        t = exp.type
        if hasattr(got, "value") and type(got).__name__ == "Val":
            got = got.value
        if t in ("i32", "i64"):
            return isinstance(got, int) and (got & _MASK[t]) == exp.bits
        if t in ("f32", "f64"):
            if not isinstance(got, float):
                return False
            bits = _bits(t)[1](got)
            width = 32 if t == "f32" else 64
            quiet = 1 << (22 if t == "f32" else 51)
            exp_mask = ((1 << width) - 1) ^ (1 << (width - 1))
            if exp.pattern == "nan:canonical":
                return math.isnan(got) and (bits & exp_mask) == (exp_mask ^ (quiet - 1))
            if exp.pattern == "nan:arithmetic":
                return math.isnan(got) and bool(bits & quiet)
            return bits == exp.bits
        if t in ("externref", "funcref"):
            if exp.pattern is not None:
                return got is not None
            if exp.bits is None:
                return got is None
            return got is self.externrefs.get(exp.bits)
        if t == "v128":
            return exp.bits is None or got == exp.bits
        return False

    # -- modules ------------------------------------------------------------------

    def compile(self, wm: Any) -> Any:
        return self.ctx.module(self.engine, wm.to_bytes, wm)

    def ensure_hosts(self, module: Any) -> None:
        for imp in module.imports:
            host = imp.module
            if host in ("spectest", "oomhost") and host not in self.defined_hosts:
                (define_spectest if host == "spectest" else define_oomhost)(self)
                self.defined_hosts.add(host)  # only once complete: a failed one is redone

    def instantiate(self, module: Any) -> Any:
        self.ensure_hosts(module)
        if self.settled is not None:
            self.settled()
        if self.mode == "pre":
            inst = self.linker.instantiate_pre(module).instantiate(self.store)
        elif self.mode == "instance":
            imports = [self.linker.get(self.store, i.module, i.name or "") for i in module.imports]
            inst = api("Instance")(self.store, module, imports)
        else:
            inst = self.linker.instantiate(self.store, module)
        self.ctx.track(inst, "Instance")
        return inst

    def instance(self, name: str | None) -> Any:
        if name is None:
            if self.current is None:
                raise ScenarioError("action before any module")
            return self.current
        if name not in self.instances:
            raise ScenarioError(f"unknown module ${name}")
        return self.instances[name]

    def action(self, act: Any) -> Any:
        inst = self.instance(act.module)
        ext = inst.exports(self.store)[act.field]
        if act.kind == "get":
            return ext.value(self.store)
        return ext(self.store, *[self.arg(a) for a in act.args])

    # -- commands -----------------------------------------------------------------

    def run(self, cmd: Any) -> str:
        kind = type(cmd).__name__
        line = cmd.line
        if kind == "ModuleCommand":
            wm = cmd.module
            inst = self.instantiate(self.compile(wm))
            self.current = inst
            if wm.name:
                self.instances[wm.name] = inst
            return f"{line}: module{' $' + wm.name if wm.name else ''}"
        if kind == "Register":
            self.linker.define_instance(self.store, cmd.name, self.instance(cmd.module))
            return f"{line}: register {cmd.name}"
        if kind == "ActionCommand":
            try:
                got = self.action(cmd.action)
            except Trap as t:
                if _oom_inside(t):
                    raise
                # A trap in a plain action is its outcome; the script goes on.
                return f"{line}: {cmd.action.field} trapped: {_trap_text(t)}"
            return f"{line}: {cmd.action.field} -> {_show(got)}"
        if kind == "AssertReturn":
            got = self.action(cmd.action)
            exp = list(cmd.expected)
            if isinstance(got, list | tuple):
                values = list(got)
            else:  # one result (None may be a null reference) or none
                values = [got] if got is not None or len(exp) == 1 else []
            ok = len(values) == len(exp) and all(
                self.matches(g, e) for g, e in zip(values, exp, strict=True)
            )
            _expect(ok, f"line {line}: {cmd.action.field} returned {_show(got)}, expected {exp}")
            return f"{line}: {cmd.action.field} = {_show(got)}"
        if kind in ("AssertTrap", "AssertExhaustion", "AssertUninstantiable"):
            what = "instantiation" if getattr(cmd, "module", None) is not None else "call"
            try:
                if what == "call":
                    got = self.action(cmd.action)
                else:
                    self.instantiate(self.compile(cmd.module))
                    got = "<instance>"
            except OutOfMemory:
                raise
            except Trap as t:
                if _oom_inside(t):
                    raise
                _expect(
                    trap_matches(cmd.message, t),
                    f"line {line}: expected trap {cmd.message!r}, {what} trapped with {t.reason!r}",
                )
                return f"{line}: trap {t.reason}"
            _expect(False, f"line {line}: expected trap {cmd.message!r}, {what} gave {_show(got)}")
        if kind in ("AssertInvalid", "AssertMalformed"):
            try:
                self.compile(cmd.module)
            except OutOfMemory:
                raise
            except WasmtimeError as e:
                return f"{line}: rejected ({type(e).__name__})"
            _expect(False, f"line {line}: module accepted, expected {cmd.message!r}")
        if kind == "AssertUnlinkable":
            module = self.compile(cmd.module)
            try:
                self.instantiate(module)
            except OutOfMemory:
                raise
            except WasmtimeError as e:
                return f"{line}: unlinkable ({type(e).__name__})"
            _expect(False, f"line {line}: instantiated, expected {cmd.message!r}")
        raise ScenarioError(f"line {line}: unsupported WAST command {kind}")


def _kind(cmd: Any) -> str:
    name = type(cmd).__name__
    field = getattr(getattr(cmd, "action", None), "field", None)
    return f"{name} {field!r}" if field is not None else name


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise ExpectationFailed(message)


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v!r}" if not math.isnan(v) else "nan"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if v is None or isinstance(v, int | str):
        return repr(v)
    if isinstance(v, ExternRef):
        return f"ref.extern {v.n}"
    return type(v).__name__


#: Commands whose effects are the runtime's alone (no guest code runs before they can
#: fail), so a failure must leave the store and linker as they were (``not_atomic``).
#: Actions run guest code, whose own writes before a failure are legitimate; the
#: runtime operations inside them (grows) are observed one by one instead.
STATE_COMMANDS = frozenset({"ModuleCommand", "Register", "AssertUnlinkable"})


def execute_commands(ctx: ScenarioContext, commands: list[Any]) -> None:
    """Run the script; each command (and the setup) is a step (``ScenarioContext.step``)."""
    script = ctx.step(_Script, ctx, label="setup (engine, store, linker)")
    try:
        for cmd in commands:
            rec = current_run()
            label = f"line {cmd.line} ({_kind(cmd)})"
            if rec is None or type(cmd).__name__ not in STATE_COMMANDS or not may_refuse():
                ctx.record(ctx.step(script.run, cmd, label=label))
            else:
                ctx.record(ctx.step(_atomic, script, rec, cmd, label=label))
    finally:
        script.instances.clear()
        script.current = None


def _atomic(script: _Script, rec: RunState, cmd: Any) -> str:
    """Run ``cmd``; if it fails for lack of memory, the store and linker must be unchanged.

    A module's compilation touches neither, and the harness's own host definitions (made
    on demand inside the command) are set-up, not the runtime's operation: the state to
    restore is the one taken once they are in place (``_Script.settled``), and a failure
    before that point is not judged.
    """

    def snapshot() -> dict[str, object]:
        # The store is tracked (``ScenarioContext.store``), so it is in every snapshot.
        return rec.snapshot({"linker": describe(script.linker)})

    before = _Before(snapshot(), refusals(), type(cmd).__name__ == "Register")

    def settled() -> None:
        before.state, before.refused, before.settled = snapshot(), refusals(), True

    script.settled = settled
    try:
        return script.run(cmd)
    except BaseException as e:
        if before.settled:
            where = f"{script.ctx.scenario.path}:{cmd.line}"
            name = f"{type(cmd).__name__} (line {cmd.line})"
            rec.check(name, before.state, snapshot, e, before.refused, where)
        raise
    finally:
        script.settled = None


@dataclass(slots=True)
class _Before:
    """The snapshot a state command is judged against."""

    state: dict[str, object]
    refused: int
    settled: bool


# -- host modules -----------------------------------------------------------------------


def _functype(params: str, results: str) -> Any:
    ValType, FuncType = api("ValType"), api("FuncType")
    return FuncType(
        [getattr(ValType, p)() for p in params.split()],
        [getattr(ValType, r)() for r in results.split()],
    )


def define_spectest(s: _Script) -> None:
    w = s.ctx
    ValType, Limits = api("ValType"), api("Limits")
    Global, GlobalType = api("Global"), api("GlobalType")
    Memory, MemoryType = api("Memory"), api("MemoryType")
    Table, TableType = api("Table"), api("TableType")
    store, linker = s.store, s.linker

    def define_print(name: str, params: str) -> None:
        linker.define_func("spectest", name, _functype(params, ""), lambda *a: None)

    define_print("print", "")
    define_print("print_i32", "i32")
    define_print("print_i64", "i64")
    define_print("print_f32", "f32")
    define_print("print_f64", "f64")
    define_print("print_i32_f32", "i32 f32")
    define_print("print_f64_f64", "f64 f64")
    for name, t, v in (
        ("global_i32", "i32", 666),
        ("global_i64", "i64", 666),
        ("global_f32", "f32", 666.6),
        ("global_f64", "f64", 666.6),
    ):
        g = Global(store, GlobalType(getattr(ValType, t)(), False), v)
        linker.define(store, "spectest", name, g)
    linker.define(
        store, "spectest", "table", Table(store, TableType(ValType.funcref(), Limits(10, 20)), None)
    )
    linker.define(store, "spectest", "memory", Memory(store, MemoryType(Limits(1, 2))))
    _ = w


def define_oomhost(s: _Script) -> None:
    """``oomhost``: host-side API calls made from inside wasm (see corpus/README.md)."""
    Memory, MemoryType, Limits = api("Memory"), api("MemoryType"), api("Limits")
    Table, TableType, ValType = api("Table"), api("TableType"), api("ValType")
    Global, GlobalType, Func = api("Global"), api("GlobalType"), api("Func")
    store, linker = s.store, s.linker

    def export(caller: Any, name: str) -> Any:
        item = caller.get(name)
        if item is None:
            raise Trap(f"oomhost: the calling instance exports no {name!r}")
        return item

    def refusing(op: Callable[[], int]) -> int:
        try:
            return op()
        except OutOfMemory:
            raise
        except WasmtimeError:
            return -1  # a refused/failed host-side grow, as the instruction would report

    def guarded(op: Callable[[], int]) -> int:
        """One embedder API call on the store: failing (OOM or -1), it must change nothing."""
        rec = current_run()
        if rec is None or not may_refuse():
            return refusing(op)
        name = f"oomhost.{sys._getframe(1).f_code.co_name}"
        return rec.judged(name, str(s.ctx.scenario.path), rec.snapshot, lambda: refusing(op))

    def grow_memory(caller: Any, delta: int) -> int:
        return guarded(lambda: export(caller, "memory").grow(caller, delta))

    def grow_table(caller: Any, delta: int) -> int:
        return guarded(lambda: export(caller, "table").grow(caller, delta, None))

    def call_back(caller: Any, x: int) -> int:
        return int(export(caller, "callback")(caller, x))

    def mem_read(caller: Any, off: int, n: int) -> int:
        return sum(export(caller, "memory").read(caller, off, off + n)) & 0x7FFFFFFF

    def mem_write(caller: Any, off: int, byte: int, n: int) -> int:
        return guarded(
            lambda: export(caller, "memory").write(caller, bytes([byte & 0xFF]) * n, off)
        )

    def table_set(caller: Any, idx: int) -> int:
        return guarded(
            lambda: export(caller, "table").set(caller, idx, export(caller, "callback")) or 0
        )

    def table_get(caller: Any, idx: int) -> int:
        v = export(caller, "table").get(caller, idx)
        return 0 if v is None or v == None else 1  # noqa: E711 - a null Val compares == None

    def table_fill(caller: Any, start: int, n: int) -> int:
        tab, f = export(caller, "table"), export(caller, "callback")
        if hasattr(tab, "fill"):
            return guarded(lambda: tab.fill(caller, start, f, n) or 0)

        def fill_by_set() -> int:
            for i in range(n):
                tab.set(caller, start + i, f)
            return 0

        return guarded(fill_by_set)

    def table_copy(caller: Any, dst: int, src: int, n: int) -> int:
        tab = export(caller, "table")
        if hasattr(tab, "copy"):
            return guarded(lambda: tab.copy(caller, dst, tab, src, n) or 0)
        items = [tab.get(caller, src + i) for i in range(n)]

        def copy_by_set() -> int:
            for i, v in enumerate(items):
                tab.set(caller, dst + i, v)
            return 0

        return guarded(copy_by_set)

    def global_get(caller: Any) -> int:
        return int(export(caller, "global").value(caller))

    def global_set(caller: Any, v: int) -> None:
        export(caller, "global").set_value(caller, v)

    def new_memory(caller: Any, pages: int) -> int:
        return int(Memory(caller, MemoryType(Limits(pages, None))).size(caller))

    def new_table(caller: Any, n: int) -> int:
        return int(Table(caller, TableType(ValType.funcref(), Limits(n, None)), None).size(caller))

    def new_global(caller: Any, v: int) -> int:
        return int(Global(caller, GlobalType(ValType.i32(), True), v).value(caller))

    def new_func(caller: Any, x: int) -> int:
        f = Func(store, _functype("i32", "i32"), lambda y: y + 1)
        return int(f(caller, x))

    def exports_count(caller: Any) -> int:
        return sum(
            1 for n in ("memory", "table", "global", "callback") if caller.get(n) is not None
        )

    table: list[tuple[str, str, str, Callable[..., Any]]] = [
        ("grow_memory", "i32", "i32", grow_memory),
        ("grow_table", "i32", "i32", grow_table),
        ("call_back", "i32", "i32", call_back),
        ("mem_read", "i32 i32", "i32", mem_read),
        ("mem_write", "i32 i32 i32", "i32", mem_write),
        ("table_set", "i32", "i32", table_set),
        ("table_get", "i32", "i32", table_get),
        ("table_fill", "i32 i32", "i32", table_fill),
        ("table_copy", "i32 i32 i32", "i32", table_copy),
        ("global_get", "", "i64", global_get),
        ("global_set", "i64", "", global_set),
        ("new_memory", "i32", "i32", new_memory),
        ("new_table", "i32", "i32", new_table),
        ("new_global", "i32", "i32", new_global),
        ("new_func", "i32", "i32", new_func),
        ("exports_count", "", "i32", exports_count),
    ]
    for name, params, results, fn in table:
        linker.define_func("oomhost", name, _functype(params, results), fn, access_caller=True)
