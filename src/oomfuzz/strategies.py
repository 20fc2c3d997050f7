"""Hypothesis strategies for oomfuzz: valid modules, WAST scenarios and fault plans.

``modules()`` draws an ``ir.Module`` (encode it with ``wasmrt.binary``),
``scenarios()`` a module plus a few commands that render to a self-contained
WAST script, ``fault_plans()`` an OOM injection plan.

Invariants:
- Every drawn module is valid Wasm 2.0 without SIMD: it passes
  ``wasmrt.validate.validate_module`` and ``wasm-tools validate``. Bodies
  come from a type-directed generator: each piece of code is generated for
  the exact stack effect its context needs (``expr(t)`` leaves one ``t``,
  ``values(ts)`` leaves ``ts``, ``stmt()`` leaves nothing), so no draw can
  produce an ill-typed body and nothing is filtered.
- Every execution terminates:
  * every loop has its own reserved ``i32`` counter local, set to 1..3 right
    before the loop and decremented by the only branch that targets the
    loop (``local.tee``/``br_if 0`` at the end of its body); no other
    ``br``/``br_if``/``br_table`` names a loop label and no other
    instruction touches a counter local;
  * ``call`` only names lower-indexed functions; a function is either
    *table-safe* (may be referenced: ``ref.func``, element segments, global
    initialisers; never uses ``call_indirect``; only calls table-safe
    functions) or not (may use ``call_indirect`` and call anything lower),
    so every table entry a module can create leads to a table-safe function
    or a host stub, and the call graph is acyclic.
- Growth is bounded: every memory and table has a small maximum.
- Instantiation succeeds with the host module: active segments are in
  bounds (imported-global offsets assume the host's zero) and the start
  function, if any, is generated trap-free (no memory/table accesses, no
  integer div/rem or trapping truncation, calls only to trap-free code).
- Imports all come from module ``"host"`` (``HOST_MODULE``) and are
  satisfied by ``host_module_for(m)`` (functions return zero values, globals
  hold zero/null, memories/tables have the imported limits);
  ``host_imports_for(m)`` lists them for host-side stubs.
- Every function (imported or defined) is exported as ``f<index>`` and every
  global as ``g<index>``; export names are unique.
- Shrinking: the simplest alternative of every choice is drawn as ``0`` /
  ``False`` / the first entry (constants before compound code, no memory
  before a memory, ``i32`` before other types); alternatives sit in fixed
  slots per call site (an inapplicable slot falls back to slot 0), so a
  choice keeps its meaning when the shrinker deletes an unrelated part;
  variable-length parts are "continue?" flags before each element, so the
  shrinker deletes an element by deleting its block of choices. Per-function instruction fuel and a
  nesting-depth bound keep drawn modules small.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from hypothesis import strategies as st

from wasmrt import ir
from wasmrt.binary import encode_module
from wasmrt.opcodes import ALL_OPS, OpInfo

__all__ = [
    "HOST_MODULE",
    "FaultPlan",
    "Get",
    "HostImport",
    "Invoke",
    "ModuleConfig",
    "Value",
    "WastScenario",
    "fault_plans",
    "host_imports_for",
    "host_module_for",
    "module_features",
    "modules",
    "scenarios",
    "values_of",
]

HOST_MODULE = "host"
NUMTYPES: tuple[str, ...] = ("i32", "i64", "f32", "f64")
REFTYPES: tuple[str, ...] = ("funcref", "externref")
#: Value types drawn for signatures and locals; ``i32`` twice so it is likelier.
_DRAWN_VALTYPES: tuple[str, ...] = ("i32", "i64", "f32", "f64", "i32", "funcref", "externref")
_BLOCK_KINDS = ("block", "if", "loop")
_T = TypeVar("_T")


def _op_tables() -> tuple[
    dict[str, tuple[OpInfo, ...]], dict[str, tuple[OpInfo, ...]], tuple[OpInfo, ...]
]:
    """Fixed-signature numeric ops and loads by result type, and the stores."""
    pure: dict[str, list[OpInfo]] = {t: [] for t in NUMTYPES}
    loads: dict[str, list[OpInfo]] = {t: [] for t in NUMTYPES}
    stores: list[OpInfo] = []
    for op in ALL_OPS:
        if op.prefix == 0xFD or op.sig is None:
            continue
        params, results = op.sig
        if op.imm == "none" and params and len(results) == 1:
            pure[results[0]].append(op)
        elif op.imm == "memarg" and results:
            loads[results[0]].append(op)
        elif op.imm == "memarg":
            stores.append(op)
    return (
        {t: tuple(v) for t, v in pure.items()},
        {t: tuple(v) for t, v in loads.items()},
        tuple(stores),
    )


_PURE_OPS, _LOAD_OPS, _STORE_OPS = _op_tables()


def _may_trap(op: OpInfo) -> bool:
    """Integer division/remainder and the non-saturating float->int truncations."""
    name = op.name
    return name[0] == "i" and (".div" in name or ".rem" in name or ".trunc_f" in name)


#: ``_PURE_OPS`` without the ops that may trap (for the start function).
_TRAP_FREE_OPS = {t: tuple(op for op in ops if not _may_trap(op)) for t, ops in _PURE_OPS.items()}


@dataclass(frozen=True, slots=True)
class ModuleConfig:
    """Size bounds for ``modules()`` (all maxima are inclusive)."""

    min_funcs: int = 1
    max_funcs: int = 4
    max_imported_funcs: int = 2
    max_params: int = 3
    max_results: int = 2
    max_locals: int = 3
    max_instrs: int = 48  # per-function fuel; compound code stops when it runs out
    max_depth: int = 4  # nesting of compound expressions and blocks
    max_stmts: int = 4  # statements per block (twice that at function level)
    memory: bool = True
    max_tables: int = 2
    max_imported_globals: int = 2
    max_globals: int = 3
    max_elems: int = 3
    max_datas: int = 3
    imports: bool = True
    start: bool = True


@dataclass(slots=True)
class _Label:
    kind: str  # "func" | "block" | "if" | "loop"
    types: tuple[str, ...]  # the values a branch to it carries


def _zero_instr(t: str) -> ir.Instr:
    if t in REFTYPES:
        return ir.Instr("ref.null", (t,))
    return ir.Instr(f"{t}.const", (0,))


def _floats(width: int) -> st.SearchStrategy[float]:
    return st.floats(width=32) if width == 32 else st.floats(width=64)


def _float_bits(value: float, width: int) -> int:
    if width == 32:
        return int(struct.unpack("<I", struct.pack("<f", value))[0])
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


class _Builder:
    """Module-level drawing state; one per drawn module."""

    def __init__(self, draw: st.DrawFn, cfg: ModuleConfig) -> None:
        self.draw = draw
        self.cfg = cfg
        self.types: list[ir.FuncType] = []
        self.imports: list[ir.Import] = []
        self.func_types: list[ir.FuncType] = []  # the function index space
        self.safe: list[bool] = []  # table-safe, per function index
        self.trap_free: list[bool] = []  # generated without trapping code
        self.tables: list[ir.TableType] = []  # the table index space
        self.mem: ir.MemoryType | None = None
        self.globals: list[ir.GlobalType] = []  # the global index space
        self.n_imported_globals = 0
        self.elems: list[ir.Elem] = []
        self.datas: list[ir.Data] = []
        self.needs_data_count = False

    # -- drawing primitives (simplest outcome is 0 / False) ---------------

    def pick(self, n: int) -> int:
        return 0 if n <= 1 else int(self.draw(st.integers(0, n - 1)))

    def flag(self) -> bool:
        return bool(self.draw(st.booleans()))

    def choose(self, items: Sequence[_T]) -> _T:
        return items[self.pick(len(items))]

    def many(self, max_size: int, item: Callable[[], _T]) -> list[_T]:
        out: list[_T] = []
        while len(out) < max_size and self.flag():
            out.append(item())
        return out

    def small(self, hi: int) -> int:
        return int(self.draw(st.integers(0, hi))) if hi > 0 else 0

    def valtype(self) -> str:
        return self.choose(_DRAWN_VALTYPES)

    def type_index(self, ft: ir.FuncType) -> int:
        try:
            return self.types.index(ft)
        except ValueError:
            self.types.append(ft)
            return len(self.types) - 1

    def functype(self) -> ir.FuncType:
        if self.types and self.flag():
            return self.choose(self.types)
        params = self.many(self.cfg.max_params, self.valtype)
        results = self.many(self.cfg.max_results, self.valtype)
        return ir.FuncType(tuple(params), tuple(results))

    def limits(self, max_min: int, max_extra: int) -> ir.Limits:
        lo = self.small(max_min)
        return ir.Limits(lo, lo + self.small(max_extra))

    # -- values -----------------------------------------------------------

    def int_value(self, bits: int) -> int:
        if self.flag():
            return int(self.draw(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)))
        return self.small(16)

    def float_value(self, width: int) -> int:
        if self.flag():
            return int(self.draw(st.integers(0, (1 << width) - 1)))
        return _float_bits(float(self.draw(_floats(width))), width)

    def const_instr(self, t: str) -> ir.Instr:
        if t in ("i32", "i64"):
            return ir.Instr(f"{t}.const", (self.int_value(int(t[1:])),))
        if t in ("f32", "f64"):
            return ir.Instr(f"{t}.const", (self.float_value(int(t[1:])),))
        return ir.Instr("ref.null", (t,))

    def ref_targets(self) -> list[int]:
        return [i for i, ok in enumerate(self.safe) if ok]

    def imported_const_globals(self, t: str) -> list[int]:
        return [
            i
            for i in range(self.n_imported_globals)
            if self.globals[i].valtype == t and not self.globals[i].mutable
        ]

    def const_expr(self, t: str) -> ir.Expr:
        alts: list[Callable[[], ir.Instr]] = [lambda: self.const_instr(t)]
        gets = self.imported_const_globals(t)
        if gets:
            alts.append(lambda: ir.Instr("global.get", (self.choose(gets),)))
        targets = self.ref_targets()
        if t == "funcref" and targets:
            alts.append(lambda: ir.Instr("ref.func", (self.choose(targets),)))
        return [self.choose(alts)(), ir.Instr("end")]

    # -- sections ---------------------------------------------------------

    def build(self) -> ir.Module:
        cfg = self.cfg
        imports = cfg.imports
        # Each list element is drawn right after its "continue?" flag, so the
        # shrinker removes an element by deleting one contiguous block.
        if imports:
            self.many(cfg.max_imported_funcs, self.imported_func)
        mem_choice = self.pick(3) if cfg.memory else 0
        if mem_choice == 2 and not imports:
            mem_choice = 1
        if mem_choice:
            self.mem = ir.MemoryType(self.limits(2, 2))
            if mem_choice == 2:
                self.imports.append(ir.Import(HOST_MODULE, "memory", "memory", self.mem))
        if imports and cfg.max_tables and self.flag():
            tt = self.table_type()
            self.imports.append(ir.Import(HOST_MODULE, "table0", "table", tt))
            self.tables.append(tt)
        if imports:
            self.many(cfg.max_imported_globals, self.imported_global)
        self.n_imported_globals = len(self.globals)

        n_imported_funcs = len(self.func_types)
        for _ in range(cfg.min_funcs):
            self.defined_func()
        self.many(max(0, cfg.max_funcs - cfg.min_funcs), self.defined_func)
        n_defined = len(self.func_types) - n_imported_funcs
        # The start function runs at instantiation: it must not trap, or the
        # module could never be instantiated.
        start = None
        starts = [i for i, ft in enumerate(self.func_types) if not ft.params and not ft.results]
        if cfg.start and starts and self.flag():
            start = self.choose(starts)
            self.trap_free[start] = True

        n_imported_tables = len(self.tables)
        while len(self.tables) < cfg.max_tables and self.flag():
            self.tables.append(self.table_type())
        defined_globals = self.many(cfg.max_globals, self.defined_global)
        self.globals += [g.type for g in defined_globals]
        self.elems = self.many(cfg.max_elems, self.elem)
        self.datas = self.many(cfg.max_datas, self.data)

        funcs = [_FuncGen(self, n_imported_funcs + i).generate() for i in range(n_defined)]
        data_count = None
        if self.needs_data_count or (self.datas and self.flag()):
            data_count = len(self.datas)

        exports = [ir.Export(f"f{i}", "func", i) for i in range(len(self.func_types))]
        exports += [ir.Export(f"g{i}", "global", i) for i in range(len(self.globals))]
        if self.mem is not None and self.flag():
            exports.append(ir.Export("memory", "memory", 0))
        if self.tables and self.flag():
            exports += [ir.Export(f"table{i}", "table", i) for i in range(len(self.tables))]
        return ir.Module(
            types=self.types,
            imports=self.imports,
            funcs=funcs,
            tables=self.tables[n_imported_tables:],
            mems=[self.mem] if mem_choice == 1 and self.mem is not None else [],
            globals=defined_globals,
            exports=exports,
            start=start,
            elems=self.elems,
            datas=self.datas,
            data_count=data_count,
        )

    def imported_func(self) -> None:
        """A host stub: table-safe and trap-free (it never calls back)."""
        ft = self.functype()
        name = f"f{len(self.func_types)}"
        self.imports.append(ir.Import(HOST_MODULE, name, "func", self.type_index(ft)))
        self.func_types.append(ft)
        self.safe.append(True)
        self.trap_free.append(True)

    def imported_global(self) -> None:
        gt = ir.GlobalType(self.valtype(), self.flag())
        name = f"g{len(self.globals)}"
        self.imports.append(ir.Import(HOST_MODULE, name, "global", gt))
        self.globals.append(gt)

    def defined_func(self) -> None:
        ft = self.functype()
        self.type_index(ft)
        self.func_types.append(ft)
        self.safe.append(not self.flag())
        self.trap_free.append(False)

    def table_type(self) -> ir.TableType:
        return ir.TableType(self.choose(REFTYPES), self.limits(4, 4))

    def defined_global(self) -> ir.Global:
        t = self.valtype()
        return ir.Global(ir.GlobalType(t, self.flag()), self.const_expr(t))

    def elem(self) -> ir.Elem:
        mode = self.choose(("passive", "active", "declarative"))
        if mode == "active" and self.tables:
            table = self.pick(len(self.tables))
            tt = self.tables[table]
            room = tt.limits.min
            gets = self.imported_const_globals("i32")
            if gets and self.flag():
                offset = [ir.Instr("global.get", (self.choose(gets),)), ir.Instr("end")]
            else:
                k = self.small(room)
                room -= k
                offset = [ir.Instr("i32.const", (k,)), ir.Instr("end")]
            init = self.many(min(room, 4), lambda: self.const_expr(tt.elem))
            return ir.Elem("active", tt.elem, init, table, offset)
        if mode == "declarative":
            init = self.many(4, lambda: self.const_expr("funcref"))
            return ir.Elem("declarative", "funcref", init)
        reftype = self.choose(REFTYPES)
        return ir.Elem("passive", reftype, self.many(4, lambda: self.const_expr(reftype)))

    def data(self) -> ir.Data:
        init = bytes(self.draw(st.binary(max_size=8)))
        if self.mem is not None and self.flag():
            room = self.mem.limits.min * 65536 - len(init)
            gets = self.imported_const_globals("i32")
            if room >= 0 and gets and self.flag():
                return ir.Data(
                    "active",
                    init,
                    0,
                    [ir.Instr("global.get", (self.choose(gets),)), ir.Instr("end")],
                )
            if room >= 0:
                offset = self.small(min(room, 64))
                return ir.Data(
                    "active", init, 0, [ir.Instr("i32.const", (offset,)), ir.Instr("end")]
                )
        return ir.Data("passive", init)


class _FuncGen:
    """Type-directed body generator for one defined function."""

    def __init__(self, b: _Builder, fidx: int) -> None:
        self.b = b
        self.ft = b.func_types[fidx]
        self.safe = b.safe[fidx]
        self.trap_free = b.trap_free[fidx]
        self.pure_ops = _TRAP_FREE_OPS if self.trap_free else _PURE_OPS
        self.callees = [
            j
            for j in range(fidx)
            if (b.safe[j] or not self.safe) and (b.trap_free[j] or not self.trap_free)
        ]
        # Code that can trap on bounds: memory and table accesses.
        self.accesses = not self.trap_free
        self.n_params = len(self.ft.params)
        self.locals: list[str] = list(self.ft.params) + b.many(b.cfg.max_locals, b.valtype)
        self.reserved: set[int] = set()
        self.code: list[ir.Instr] = []
        self.labels: list[_Label] = [_Label("func", self.ft.results)]
        self.depth = 0
        self.fuel = b.cfg.max_instrs

    def generate(self) -> ir.Function:
        self.stmts(2 * self.b.cfg.max_stmts)
        self.values(self.ft.results)
        self.emit("end")
        runs: list[tuple[int, str]] = []
        for t in self.locals[self.n_params :]:
            if runs and runs[-1][1] == t:
                runs[-1] = (runs[-1][0] + 1, t)
            else:
                runs.append((1, t))
        return ir.Function(self.b.type_index(self.ft), runs, self.code)

    # -- helpers ----------------------------------------------------------

    def emit(self, op: str, *imm: object) -> None:
        self.code.append(ir.Instr(op, tuple(imm)))
        self.fuel -= 1

    def nestable(self) -> bool:
        return self.fuel > 0 and self.depth < self.b.cfg.max_depth

    def run(self, slots: Sequence[Callable[[], None] | None]) -> None:
        """Run one alternative. ``slots`` has a fixed layout per call site and
        ``None`` marks an alternative that does not apply here (it falls back
        to slot 0, the simplest), so a choice keeps its meaning when the
        shrinker removes, say, an import and some alternative disappears."""
        alt = self.b.choose(slots) or slots[0]
        assert alt is not None
        self.depth += 1
        alt()
        self.depth -= 1

    def locals_of(self, t: str) -> list[int]:
        return [i for i, lt in enumerate(self.locals) if lt == t and i not in self.reserved]

    def globals_of(self, t: str, mutable: bool = False) -> list[int]:
        return [
            i for i, g in enumerate(self.b.globals) if g.valtype == t and (g.mutable or not mutable)
        ]

    def tables_of(self, t: str) -> list[int]:
        return [i for i, tt in enumerate(self.b.tables) if tt.elem == t]

    def targets(self) -> list[int]:
        """Positions (in ``labels``) a branch may name: every non-loop label."""
        return [i for i, lab in enumerate(self.labels) if lab.kind != "loop"]

    def depth_of(self, pos: int) -> int:
        return len(self.labels) - 1 - pos

    def calls_with(self, results: tuple[str, ...]) -> list[int]:
        return [f for f in self.callees if self.b.func_types[f].results == results]

    def indirect_types_with(self, results: tuple[str, ...]) -> list[int]:
        if self.safe or not self.accesses or not self.tables_of("funcref"):
            return []
        return [i for i, ft in enumerate(self.b.types) if ft.results == results]

    def memarg(self, op: OpInfo) -> tuple[int, int]:
        align = self.b.pick(op.align + 1)
        offset = self.b.small(64) if self.b.flag() else 0
        return align, offset

    # -- operands ---------------------------------------------------------

    def small_i32(self) -> None:
        """An i32 operand, usually a small constant (lengths, counts, indices)."""
        alts: list[Callable[[], None]] = [lambda: self.emit("i32.const", self.b.small(8))]
        if self.nestable():
            alts.append(lambda: self.expr("i32"))
        self.b.choose(alts)()

    def address(self) -> None:
        def masked() -> None:
            self.expr("i32")
            self.emit("i32.const", 0xFFFF)
            self.emit("i32.and")

        alts: list[Callable[[], None]] = [lambda: self.emit("i32.const", self.b.small(64))]
        if self.nestable():
            alts.append(masked)
        self.b.choose(alts)()

    def values(self, ts: tuple[str, ...]) -> None:
        """Code leaving exactly ``ts`` on the stack."""
        if len(ts) < 2 or not self.nestable():
            self.sequence(ts)
            return
        calls = self.calls_with(ts)
        itypes = self.indirect_types_with(ts)
        self.run(
            [
                lambda: self.sequence(ts),
                lambda: self.structured(self.block_kind(), self.block_params(), ts),
                (lambda: self.call(self.b.choose(calls))) if calls else None,
                (lambda: self.call_indirect(self.b.choose(itypes))) if itypes else None,
            ]
        )

    def sequence(self, ts: tuple[str, ...]) -> None:
        for t in ts:
            self.expr(t)

    def consume(self, ts: tuple[str, ...]) -> None:
        """Code popping ``ts`` (top of stack last in ``ts``)."""
        for t in reversed(ts):
            ls = self.locals_of(t)
            if ls and self.b.flag():
                self.emit("local.set", self.b.choose(ls))
            else:
                self.emit("drop")

    # -- expressions ------------------------------------------------------

    def expr(self, t: str) -> None:
        """Code leaving one value of type ``t``."""
        b = self.b
        ls = self.locals_of(t)
        gs = self.globals_of(t)
        refs = b.ref_targets() if t == "funcref" else []
        slots: list[Callable[[], None] | None] = [
            lambda: self.code.append(b.const_instr(t)),
            (lambda: self.emit("local.get", b.choose(ls))) if ls else None,
            (lambda: self.emit("global.get", b.choose(gs))) if gs else None,
            (lambda: self.emit("ref.func", b.choose(refs))) if refs else None,
        ]
        compound = self.compound_exprs(t)
        slots += compound if self.nestable() else [None] * len(compound)
        self.fuel -= 1
        self.run(slots)

    def compound_exprs(self, t: str) -> list[Callable[[], None] | None]:  # noqa: C901
        """Compound alternatives for ``expr(t)``; the layout depends only on ``t``."""
        b = self.b
        num = t in NUMTYPES
        i32 = t == "i32"
        mem = b.mem is not None
        tables = bool(b.tables)
        ref_tables = self.tables_of(t) if self.accesses else []
        ls = self.locals_of(t)
        calls = self.calls_with((t,))
        itypes = self.indirect_types_with((t,))
        value_targets = [p for p in self.targets() if self.labels[p].types == (t,)]
        return [
            (lambda: self.pure_op(b.choose(self.pure_ops[t]))) if num else None,
            (lambda: self.load(b.choose(_LOAD_OPS[t]))) if num and mem and self.accesses else None,
            (lambda: self.emit("memory.size")) if i32 and mem else None,
            self.memory_grow if i32 and mem else None,
            (lambda: self.emit("table.size", b.pick(len(b.tables)))) if i32 and tables else None,
            self.table_grow if i32 and tables else None,
            self.ref_is_null if i32 else None,
            (lambda: self.table_get(b.choose(ref_tables))) if ref_tables else None,
            lambda: self.select(t),
            (lambda: self.local_tee(t)) if ls else None,
            lambda: self.structured(self.block_kind(), self.block_params(), (t,)),
            (lambda: self.call(b.choose(calls))) if calls else None,
            (lambda: self.call_indirect(b.choose(itypes))) if itypes else None,
            (lambda: self.br_if_value(b.choose(value_targets))) if value_targets else None,
        ]

    def pure_op(self, op: OpInfo) -> None:
        assert op.sig is not None
        self.sequence(op.sig[0])
        self.emit(op.name)

    def load(self, op: OpInfo) -> None:
        self.address()
        self.emit(op.name, *self.memarg(op))

    def memory_grow(self) -> None:
        self.small_i32()
        self.emit("memory.grow")

    def table_grow(self) -> None:
        x = self.b.pick(len(self.b.tables))
        self.expr(self.b.tables[x].elem)
        self.small_i32()
        self.emit("table.grow", x)

    def table_get(self, x: int) -> None:
        self.small_i32()
        self.emit("table.get", x)

    def ref_is_null(self) -> None:
        self.expr(self.b.choose(REFTYPES))
        self.emit("ref.is_null")

    def select(self, t: str) -> None:
        self.expr(t)
        self.expr(t)
        self.expr("i32")
        if t in NUMTYPES and not self.b.flag():
            self.emit("select")
        else:
            self.emit("select_t", (t,))

    def local_tee(self, t: str) -> None:
        x = self.b.choose(self.locals_of(t))
        self.expr(t)
        self.emit("local.tee", x)

    def call(self, f: int) -> None:
        self.values(self.b.func_types[f].params)
        self.emit("call", f)

    def call_indirect(self, typeidx: int) -> None:
        self.values(self.b.types[typeidx].params)
        self.small_i32()
        self.emit("call_indirect", typeidx, self.b.choose(self.tables_of("funcref")))

    def br_if_value(self, pos: int) -> None:
        self.values(self.labels[pos].types)
        self.expr("i32")
        self.emit("br_if", self.depth_of(pos))

    # -- structured control -----------------------------------------------

    def block_kind(self) -> str:
        return self.b.choose(_BLOCK_KINDS)

    def block_params(self) -> tuple[str, ...]:
        return tuple(self.b.many(2, self.b.valtype))

    def blocktype(self, params: tuple[str, ...], results: tuple[str, ...]) -> ir.BlockType:
        if not params and len(results) <= 1 and not self.b.flag():
            return results[0] if results else None
        return self.b.type_index(ir.FuncType(params, results))

    def structured(self, kind: str, params: tuple[str, ...], results: tuple[str, ...]) -> None:
        """A ``block``/``if``/``loop`` taking ``params`` and leaving ``results``."""
        bt = self.blocktype(params, results)
        counter = -1
        if kind == "loop":
            counter = len(self.locals)
            self.locals.append("i32")
            self.reserved.add(counter)
            self.emit("i32.const", 1 + self.b.small(2))
            self.emit("local.set", counter)
        self.values(params)
        if kind == "if":
            self.expr("i32")
        self.emit(kind, bt)
        self.depth += 1
        if kind == "loop":
            self.labels.append(_Label("loop", params))
            self.consume(params)
            self.stmts(self.b.cfg.max_stmts)
            self.values(params)
            self.emit("local.get", counter)
            self.emit("i32.const", 1)
            self.emit("i32.sub")
            self.emit("local.tee", counter)
            self.emit("br_if", 0)
            self.consume(params)
        else:
            self.labels.append(_Label(kind, results))
            self.consume(params)
            self.stmts(self.b.cfg.max_stmts)
        self.values(results)
        if kind == "if" and (params != results or self.b.flag()):
            self.emit("else")
            self.consume(params)
            self.stmts(self.b.cfg.max_stmts)
            self.values(results)
        self.labels.pop()
        self.depth -= 1
        self.emit("end")

    # -- statements -------------------------------------------------------

    def stmts(self, max_count: int) -> None:
        n = 0
        while n < max_count and self.fuel > 0 and self.b.draw(st.integers(0, 2)) != 0:
            self.stmt()
            n += 1

    def stmt(self) -> None:
        """Code with no net stack effect (or that branches away)."""
        b = self.b
        mem = b.mem is not None and self.accesses
        tables = bool(b.tables) and self.accesses
        self.run(
            [
                lambda: self.emit("nop"),
                self.drop_expr,
                self.local_set if self.settable() else None,
                self.global_set if any(g.mutable for g in b.globals) else None,
                self.block_stmt if self.nestable() else None,
                self.call_stmt if self.callees else None,
                self.call_indirect_stmt if self.indirect_types_with_any() else None,
                self.br_if_stmt,
                self.terminator,
                self.store if mem else None,
                self.memory_bulk if mem else None,
                self.data_drop if b.datas else None,
                self.table_set if tables else None,
                self.table_fill if tables else None,
                self.table_copy if tables else None,
                self.table_init if self.accesses and self.table_init_pairs() else None,
                (lambda: self.emit("elem.drop", b.pick(len(b.elems)))) if b.elems else None,
            ]
        )

    def settable(self) -> list[int]:
        return [i for i in range(len(self.locals)) if i not in self.reserved]

    def drop_expr(self) -> None:
        self.expr(self.b.valtype())
        self.emit("drop")

    def local_set(self) -> None:
        x = self.b.choose(self.settable())
        self.expr(self.locals[x])
        self.emit("local.set", x)

    def global_set(self) -> None:
        x = self.b.choose([i for i, g in enumerate(self.b.globals) if g.mutable])
        self.expr(self.b.globals[x].valtype)
        self.emit("global.set", x)

    def block_stmt(self) -> None:
        results = tuple(self.b.many(2, self.b.valtype))
        self.structured(self.block_kind(), self.block_params(), results)
        self.consume(results)

    def call_stmt(self) -> None:
        f = self.b.choose(self.callees)
        self.call(f)
        self.consume(self.b.func_types[f].results)

    def indirect_types_with_any(self) -> list[int]:
        if self.safe or not self.accesses or not self.tables_of("funcref"):
            return []
        return list(range(len(self.b.types)))

    def call_indirect_stmt(self) -> None:
        ti = self.b.choose(self.indirect_types_with_any())
        self.call_indirect(ti)
        self.consume(self.b.types[ti].results)

    def br_if_stmt(self) -> None:
        pos = self.b.choose(self.targets())
        self.br_if_value(pos)
        self.consume(self.labels[pos].types)

    def terminator(self) -> None:
        """``br``, ``br_table`` or ``return``: the rest of the block is unreachable."""
        b = self.b
        kind = b.pick(3)
        if kind == 2:
            self.values(self.ft.results)
            self.emit("return")
            return
        pos = b.choose(self.targets())
        types = self.labels[pos].types
        self.values(types)
        if kind == 0:
            self.emit("br", self.depth_of(pos))
            return
        same = [p for p in self.targets() if self.labels[p].types == types]
        table = b.many(3, lambda: self.depth_of(b.choose(same)))
        self.small_i32()
        self.emit("br_table", tuple(table), self.depth_of(pos))

    def store(self) -> None:
        op = self.b.choose(_STORE_OPS)
        assert op.sig is not None
        self.address()
        self.expr(op.sig[0][1])
        self.emit(op.name, *self.memarg(op))

    def memory_bulk(self) -> None:
        b = self.b
        kind = b.pick(3 if b.datas else 2)
        self.address()
        if kind == 0:
            self.expr("i32")
            self.small_i32()
            self.emit("memory.fill")
        elif kind == 1:
            self.address()
            self.small_i32()
            self.emit("memory.copy")
        else:
            self.small_i32()
            self.small_i32()
            self.emit("memory.init", b.pick(len(b.datas)))
            b.needs_data_count = True

    def data_drop(self) -> None:
        self.emit("data.drop", self.b.pick(len(self.b.datas)))
        self.b.needs_data_count = True

    def table_set(self) -> None:
        x = self.b.pick(len(self.b.tables))
        self.small_i32()
        self.expr(self.b.tables[x].elem)
        self.emit("table.set", x)

    def table_fill(self) -> None:
        x = self.b.pick(len(self.b.tables))
        self.small_i32()
        self.expr(self.b.tables[x].elem)
        self.small_i32()
        self.emit("table.fill", x)

    def table_copy(self) -> None:
        b = self.b
        dst = b.pick(len(b.tables))
        src = b.choose(self.tables_of(b.tables[dst].elem))
        for _ in range(3):
            self.small_i32()
        self.emit("table.copy", dst, src)

    def table_init_pairs(self) -> list[tuple[int, int]]:
        return [(e, x) for e, el in enumerate(self.b.elems) for x in self.tables_of(el.reftype)]

    def table_init(self) -> None:
        e, x = self.b.choose(self.table_init_pairs())
        for _ in range(3):
            self.small_i32()
        self.emit("table.init", e, x)


@st.composite
def _modules(draw: st.DrawFn, cfg: ModuleConfig) -> ir.Module:
    return _Builder(draw, cfg).build()


def modules(
    *,
    min_funcs: int = 1,
    max_funcs: int = 4,
    max_imported_funcs: int = 2,
    max_instrs: int = 48,
    max_depth: int = 4,
    memory: bool = True,
    max_tables: int = 2,
    max_globals: int = 3,
    imports: bool = True,
    start: bool = True,
    config: ModuleConfig | None = None,
) -> st.SearchStrategy[ir.Module]:
    """Valid Wasm 2.0 (non-SIMD) modules as IR; see the module docstring.

    ``config`` (a ``ModuleConfig``) overrides every other argument.
    """
    if config is None:
        config = ModuleConfig(
            min_funcs=min_funcs,
            max_funcs=max(min_funcs, max_funcs),
            max_imported_funcs=max_imported_funcs,
            max_instrs=max_instrs,
            max_depth=max_depth,
            memory=memory,
            max_tables=max_tables,
            max_globals=max_globals,
            imports=imports,
            start=start,
        )
    return _modules(config)


# --------------------------------------------------------------------------
# Host side of imports.


@dataclass(frozen=True, slots=True)
class HostImport:
    """One import a host must supply: a stub returning zero values, or an
    object of the given type holding zeros / null references."""

    module: str
    name: str
    kind: ir.ExternKind
    type: ir.FuncType | ir.TableType | ir.MemoryType | ir.GlobalType


def host_imports_for(m: ir.Module) -> list[HostImport]:
    """Every import of ``m`` with its kind and full type, in import order."""
    out = []
    for imp in m.imports:
        desc = imp.desc
        ty = m.types[desc] if isinstance(desc, int) else desc
        out.append(HostImport(imp.module, imp.name, imp.kind, ty))
    return out


def host_module_for(m: ir.Module, module: str = HOST_MODULE) -> ir.Module:
    """A module exporting, under the imported names, everything ``m`` imports
    from ``module``: functions returning zero values, zero/null globals and
    memories/tables with exactly the imported limits."""
    host = ir.Module()
    for imp in host_imports_for(m):
        if imp.module != module:
            continue
        ty = imp.type
        if isinstance(ty, ir.FuncType):
            if ty not in host.types:
                host.types.append(ty)
            body = [_zero_instr(t) for t in ty.results] + [ir.Instr("end")]
            host.funcs.append(ir.Function(host.types.index(ty), [], body))
            host.exports.append(ir.Export(imp.name, "func", len(host.funcs) - 1))
        elif isinstance(ty, ir.MemoryType):
            host.mems.append(ty)
            host.exports.append(ir.Export(imp.name, "memory", len(host.mems) - 1))
        elif isinstance(ty, ir.TableType):
            host.tables.append(ty)
            host.exports.append(ir.Export(imp.name, "table", len(host.tables) - 1))
        else:
            host.globals.append(ir.Global(ty, [_zero_instr(ty.valtype), ir.Instr("end")]))
            host.exports.append(ir.Export(imp.name, "global", len(host.globals) - 1))
    return host


def module_features(m: ir.Module) -> frozenset[str]:
    """What a module exercises: every instruction name in its bodies plus
    structural tags (``import:<kind>``, ``elem:<mode>``, ``data:<mode>``,
    ``blocktype:multi``, ``func:multi-value``, ``data_count``, ``start``)."""
    out: set[str] = {f"import:{imp.kind}" for imp in m.imports}
    out |= {f"elem:{el.mode}" for el in m.elems}
    out |= {f"data:{d.mode}" for d in m.datas}
    for f in m.funcs:
        for ins in f.body:
            out.add(ins.op)
            if ins.op in _BLOCK_KINDS and isinstance(ins.imm[0], int):
                ft = m.types[ins.imm[0]]
                if ft.params or len(ft.results) > 1:
                    out.add("blocktype:multi")
    if any(len(ft.results) > 1 for ft in m.types):
        out.add("func:multi-value")
    if m.data_count is not None:
        out.add("data_count")
    if m.start is not None:
        out.add("start")
    if m.mems:
        out.add("memory")
    if m.tables:
        out.add("table")
    return frozenset(out)


# --------------------------------------------------------------------------
# Scenarios.


def _signed(bits: int, width: int) -> int:
    return bits - (1 << width) if bits >> (width - 1) else bits


def _float_literal(bits: int, width: int) -> str:
    man_bits = 23 if width == 32 else 52
    exp_mask = (1 << (width - 1 - man_bits)) - 1
    sign = "-" if bits >> (width - 1) else ""
    exp = (bits >> man_bits) & exp_mask
    man = bits & ((1 << man_bits) - 1)
    if exp == exp_mask:
        return f"{sign}inf" if man == 0 else f"{sign}nan:0x{man:x}"
    fmt, ifmt = ("<f", "<I") if width == 32 else ("<d", "<Q")
    return float(struct.unpack(fmt, struct.pack(ifmt, bits))[0]).hex()


@dataclass(frozen=True, slots=True)
class Value:
    """An argument: ``bits`` is the unsigned bit pattern (floats: raw IEEE
    bits); for references ``None`` is null and an int ``n`` is ``ref.extern n``."""

    type: str
    bits: int | None = None

    def to_wast(self) -> str:
        t, bits = self.type, self.bits
        if t in REFTYPES:
            if bits is None:
                return f"(ref.null {t[:-3]})"
            return f"(ref.extern {bits})"
        assert bits is not None
        width = int(t[1:])
        if t[0] == "i":
            return f"({t}.const {_signed(bits, width)})"
        return f"({t}.const {_float_literal(bits, width)})"


@dataclass(frozen=True, slots=True)
class Invoke:
    name: str
    args: tuple[Value, ...] = ()

    def to_wast(self) -> str:
        return (
            " ".join(
                [f"(invoke {_wast_string(self.name.encode())}", *(a.to_wast() for a in self.args)]
            )
            + ")"
        )


@dataclass(frozen=True, slots=True)
class Get:
    name: str

    def to_wast(self) -> str:
        return f"(get {_wast_string(self.name.encode())})"


def _wast_string(data: bytes) -> str:
    """A WAST string literal: plain ASCII letters, digits and ``_.-`` as is,
    every other byte as a ``\\hh`` escape."""
    return '"' + "".join(chr(b) if chr(b) in _PLAIN_CHARS else f"\\{b:02x}" for b in data) + '"'


_PLAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _binary_module(name: str, data: bytes) -> str:
    lines = [f"(module ${name} binary"]
    for i in range(0, len(data), 32):
        lines.append("  " + _wast_string(data[i : i + 32]))
    return "\n".join(lines) + ")"


@dataclass(slots=True)
class WastScenario:
    """A module and the commands to run against it (traps are outcomes, not
    failures: the runner records whatever each invoke does)."""

    module: ir.Module
    commands: list[Invoke | Get] = field(default_factory=list)

    def to_wast(self) -> str:
        """A self-contained script: a host module per imported module name
        (``register``-ed under that name), the module, then the commands."""
        out = [";; generated by oomfuzz.strategies"]
        for i, name in enumerate(dict.fromkeys(imp.module for imp in self.module.imports)):
            host = host_module_for(self.module, name)
            out.append(_binary_module(f"host{i}", encode_module(host)))
            out.append(f"(register {_wast_string(name.encode())} $host{i})")
        out.append(_binary_module("main", encode_module(self.module)))
        out += [c.to_wast() for c in self.commands]
        return "\n".join(out) + "\n"


def values_of(t: str) -> st.SearchStrategy[Value]:
    """Argument values of value type ``t`` (shrinking toward zero / null)."""
    if t in ("i32", "i64"):
        width = int(t[1:])
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        return st.integers(lo, hi).map(lambda v: Value(t, v & ((1 << width) - 1)))
    if t in ("f32", "f64"):
        width = int(t[1:])
        return st.one_of(
            _floats(width).map(lambda x: Value(t, _float_bits(x, width))),
            st.integers(0, (1 << width) - 1).map(lambda b: Value(t, b)),
        )
    if t == "externref":
        return st.one_of(st.just(Value(t)), st.integers(0, 3).map(lambda n: Value(t, n)))
    if t == "funcref":
        return st.just(Value(t))
    raise ValueError(f"no argument values for type {t!r}")


@st.composite
def _scenarios(
    draw: st.DrawFn, module_strategy: st.SearchStrategy[ir.Module], max_commands: int
) -> WastScenario:
    m = draw(module_strategy)
    funcs = [e for e in m.exports if e.kind == "func"]
    globs = [e.name for e in m.exports if e.kind == "global"]
    commands: list[Invoke | Get] = []
    while len(commands) < max_commands and (funcs or globs) and draw(st.booleans()):
        if funcs and (not globs or not draw(st.booleans())):
            ex = funcs[draw(st.integers(0, len(funcs) - 1))]
            ft = m.func_type(ex.index)
            args = tuple(draw(values_of(t)) for t in ft.params)
            commands.append(Invoke(ex.name, args))
        else:
            commands.append(Get(globs[draw(st.integers(0, len(globs) - 1))]))
    return WastScenario(m, commands)


def scenarios(
    module_strategy: st.SearchStrategy[ir.Module] | None = None, *, max_commands: int = 4
) -> st.SearchStrategy[WastScenario]:
    """A module (``modules()`` unless given) plus up to ``max_commands``
    invokes of exported functions (well-typed arguments) and gets of
    exported globals."""
    return _scenarios(module_strategy if module_strategy is not None else modules(), max_commands)


# --------------------------------------------------------------------------
# Fault plans.

FaultMode = Literal["transient", "persistent"]
AllocatorName = Literal["ondemand", "pooling"]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Fail allocation number ``index`` (0-based) once (``transient``) or it
    and every later one (``persistent``), under the given instance allocator."""

    mode: FaultMode
    index: int
    allocator: AllocatorName


def fault_plans(
    *,
    max_index: int | None = None,
    modes: Sequence[FaultMode] = ("transient", "persistent"),
    allocators: Sequence[AllocatorName] = ("ondemand", "pooling"),
) -> st.SearchStrategy[FaultPlan]:
    """Injection plans; ``index`` shrinks toward 0, the first mode and
    allocator are the simplest."""
    return st.builds(
        FaultPlan,
        mode=st.sampled_from(tuple(modes)),
        index=st.integers(min_value=0, max_value=max_index),
        allocator=st.sampled_from(tuple(allocators)),
    )
