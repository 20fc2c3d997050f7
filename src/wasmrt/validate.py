"""Wasm 2.0 validation (SIMD included): ``validate_module(m) -> ModuleInfo``.

Invariants:
- Invalid input raises ``InvalidModuleError`` and nothing else (an
  ``OutOfMemory`` from the allocation hook propagates unchanged); the message
  uses the spec testsuite's ``assert_invalid`` wording; ``func`` is the index
  in the function index space and ``instr`` the body position for code errors.
- Each function body is checked in one iterative pass (no recursion) with the
  spec's operand/control stack algorithm; ``None`` on the operand stack is the
  spec's ``Unknown`` type of the polymorphic (unreachable) stack.
- Constant expressions follow Wasm 2.0: only ``t.const``, ``ref.null``,
  ``ref.func`` and ``global.get`` of an *imported immutable* global.
- ``ref.func x`` in a body needs ``x`` declared in an element segment, an
  export or a global initialiser (never in a function body).
- ``try_alloc(..., AllocKind.MODULE)`` is asked once for the module's info
  and once per defined function, before that function's info is built.
- The result only describes; it never aliases mutable parts of the input
  except the (immutable) ``FuncType`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import InvalidModuleError
from wasmrt.opcodes import ALL_OPS

__all__ = ["BlockInfo", "FuncInfo", "ModuleInfo", "validate_module"]

#: Wasm 2.0 page limit for a 32-bit memory (4 GiB).
MAX_PAGES = 65536
#: Wasmtime/wasmparser's limit on a function's locals (params included).
MAX_LOCALS = 50_000
_U32_MAX = 0xFFFF_FFFF

_MODULE_BASE_COST = 256
_FUNC_BASE_COST = 128
_BLOCK_COST = 96


@dataclass(slots=True)
class BlockInfo:
    """A ``block``/``loop``/``if`` opened at a body position."""

    kind: str  # "block" | "loop" | "if"
    params: tuple[str, ...]
    results: tuple[str, ...]
    else_pos: int | None = None
    end_pos: int = -1


@dataclass(slots=True)
class FuncInfo:
    """What the compiler needs about one defined function."""

    type: ir.FuncType
    local_types: tuple[str, ...]  # params then declared locals, expanded
    max_stack_height: int
    #: body position of each block/loop/if -> its info, in body order.
    blocks: dict[int, BlockInfo] = field(default_factory=dict)


@dataclass(slots=True)
class ModuleInfo:
    """Result of validation: per defined function info plus index-space facts."""

    funcs: list[FuncInfo]  # defined functions only, in order
    func_types: list[ir.FuncType]  # the whole function index space
    declared_funcs: frozenset[int]  # function indices ``ref.func`` may name


# --------------------------------------------------------------------------
# Instruction classification (built once at import).

_PLAIN = 0  # fixed signature, nothing else to check
_MEMARG = 1  # fixed signature + memory 0 + alignment
_MEMLANE = 2  # fixed signature + memory 0 + alignment + lane
_LANE = 3  # fixed signature + lane index
_SHUFFLE = 4  # fixed signature + 16 lane indices < 32
_MEMNEED = 5  # fixed signature + memory 0
_SPECIAL = 10  # typed by hand; codes below

(
    _LOCAL_GET,
    _END,
    _BLOCK,
    _LOOP,
    _IF,
    _ELSE,
    _BR,
    _BR_IF,
    _BR_TABLE,
    _RETURN,
    _CALL,
    _CALL_INDIRECT,
    _LOCAL_SET,
    _LOCAL_TEE,
    _GLOBAL_GET,
    _GLOBAL_SET,
    _DROP,
    _SELECT,
    _SELECT_T,
    _UNREACHABLE,
    _NOP,
    _TABLE_GET,
    _TABLE_SET,
    _TABLE_SIZE,
    _TABLE_GROW,
    _TABLE_FILL,
    _TABLE_COPY,
    _TABLE_INIT,
    _ELEM_DROP,
    _MEMORY_INIT,
    _DATA_DROP,
    _REF_NULL,
    _REF_IS_NULL,
    _REF_FUNC,
) = range(_SPECIAL, _SPECIAL + 34)

_SPECIAL_NAMES = {
    "local.get": _LOCAL_GET,
    "end": _END,
    "block": _BLOCK,
    "loop": _LOOP,
    "if": _IF,
    "else": _ELSE,
    "br": _BR,
    "br_if": _BR_IF,
    "br_table": _BR_TABLE,
    "return": _RETURN,
    "call": _CALL,
    "call_indirect": _CALL_INDIRECT,
    "local.set": _LOCAL_SET,
    "local.tee": _LOCAL_TEE,
    "global.get": _GLOBAL_GET,
    "global.set": _GLOBAL_SET,
    "drop": _DROP,
    "select": _SELECT,
    "select_t": _SELECT_T,
    "unreachable": _UNREACHABLE,
    "nop": _NOP,
    "table.get": _TABLE_GET,
    "table.set": _TABLE_SET,
    "table.size": _TABLE_SIZE,
    "table.grow": _TABLE_GROW,
    "table.fill": _TABLE_FILL,
    "table.copy": _TABLE_COPY,
    "table.init": _TABLE_INIT,
    "elem.drop": _ELEM_DROP,
    "memory.init": _MEMORY_INIT,
    "data.drop": _DATA_DROP,
    "ref.null": _REF_NULL,
    "ref.is_null": _REF_IS_NULL,
    "ref.func": _REF_FUNC,
}

_SHAPE_LANES = {"i8x16": 16, "i16x8": 8, "i32x4": 4, "i64x2": 2, "f32x4": 4, "f64x2": 2}

_Entry = tuple[int, tuple[str, ...], tuple[str, ...], int]


def _build_table() -> dict[str, _Entry]:
    table: dict[str, _Entry] = {}
    for info in ALL_OPS:
        name = "select_t" if (info.name == "select" and info.imm == "select_t") else info.name
        if name in _SPECIAL_NAMES:
            table[name] = (_SPECIAL_NAMES[name], (), (), 0)
            continue
        if info.sig is None:
            raise AssertionError(f"no signature and no hand rule for {name}")
        params, results = info.sig
        rparams = tuple(reversed(params))
        if info.imm == "memarg":
            table[name] = (_MEMARG, rparams, results, info.align)
        elif info.imm == "memarg_lane":
            table[name] = (_MEMLANE, rparams, results, info.align)
        elif info.imm == "lane":
            table[name] = (_LANE, rparams, results, _SHAPE_LANES[name.split(".")[0]])
        elif info.imm == "shuffle":
            table[name] = (_SHUFFLE, rparams, results, 0)
        elif info.imm in ("mem", "mem2"):
            table[name] = (_MEMNEED, rparams, results, 0)
        else:
            table[name] = (_PLAIN, rparams, results, 0)
    missing = set(_SPECIAL_NAMES) - set(table)
    if missing:
        raise AssertionError(f"special instructions missing from opcodes: {missing}")
    return table


_TABLE: dict[str, _Entry] = _build_table()

_NUMVEC = frozenset(("i32", "i64", "f32", "f64", "v128", None))
_REFS = frozenset(("funcref", "externref", None))
_VALTYPES = frozenset(ir.VALTYPES)
_CONST_TYPES = {"i32.const": "i32", "i64.const": "i64", "f32.const": "f32", "f64.const": "f64"}
_CONST_TYPES["v128.const"] = "v128"


# --------------------------------------------------------------------------
# Module-level helpers.


class _Ctx:
    """Index spaces of the module under validation."""

    __slots__ = (
        "types",
        "func_types",
        "n_imported_funcs",
        "tables",
        "n_mems",
        "globals",
        "n_imported_globals",
        "elem_types",
        "data_count",
        "declared",
    )

    def __init__(self) -> None:
        self.types: list[ir.FuncType] = []
        self.func_types: list[ir.FuncType] = []
        self.n_imported_funcs = 0
        self.tables: list[ir.TableType] = []
        self.n_mems = 0
        self.globals: list[ir.GlobalType] = []
        self.n_imported_globals = 0
        self.elem_types: list[str] = []
        self.data_count: int | None = None
        self.declared: set[int] = set()


def _fail(message: str) -> InvalidModuleError:
    return InvalidModuleError(message)


def _type_at(ctx: _Ctx, idx: object) -> ir.FuncType:
    if not isinstance(idx, int) or not 0 <= idx < len(ctx.types):
        raise _fail(f"unknown type {idx}")
    return ctx.types[idx]


def _check_limits(limits: ir.Limits, bound: int, too_big: str) -> None:
    if limits.min > bound or (limits.max is not None and limits.max > bound):
        raise _fail(too_big)
    if limits.max is not None and limits.min > limits.max:
        raise _fail("size minimum must not be greater than maximum")


def _check_table_type(t: object) -> ir.TableType:
    if not isinstance(t, ir.TableType) or t.elem not in ir.REFTYPES:
        raise _fail("type mismatch")
    _check_limits(t.limits, _U32_MAX, "table size must be at most 2^32-1")
    return t


def _check_memory_type(t: object) -> ir.MemoryType:
    if not isinstance(t, ir.MemoryType):
        raise _fail("type mismatch")
    _check_limits(t.limits, MAX_PAGES, "memory size must be at most 65536 pages (4GiB)")
    return t


def _check_global_type(t: object) -> ir.GlobalType:
    if not isinstance(t, ir.GlobalType) or t.valtype not in _VALTYPES:
        raise _fail("type mismatch")
    return t


def _const_expr(ctx: _Ctx, expr: ir.Expr | None, expected: str) -> None:
    """Check a Wasm 2.0 constant expression producing exactly one ``expected``."""
    if not expr:
        raise _fail("type mismatch")
    stack: list[str] = []
    last = len(expr) - 1
    for pos, ins in enumerate(expr):
        op = ins.op
        imm = ins.imm
        if op == "end":
            if pos != last:
                raise _fail("constant expression required")
            break
        if op in _CONST_TYPES:
            stack.append(_CONST_TYPES[op])
        elif op == "ref.null":
            rt = imm[0] if imm else None
            if rt not in ir.REFTYPES:
                raise _fail("type mismatch")
            stack.append(rt)
        elif op == "ref.func":
            x = imm[0] if imm else -1
            if not isinstance(x, int) or not 0 <= x < len(ctx.func_types):
                raise _fail(f"unknown function {x}")
            stack.append("funcref")
        elif op == "global.get":
            x = imm[0] if imm else -1
            if not isinstance(x, int) or not 0 <= x < ctx.n_imported_globals:
                raise _fail(f"unknown global {x}")
            g = ctx.globals[x]
            if g.mutable:
                raise _fail("constant expression required")
            stack.append(g.valtype)
        else:
            raise _fail("constant expression required")
    else:
        raise _fail("constant expression required")  # no final end
    if len(stack) != 1 or stack[0] != expected:
        raise _fail("type mismatch")


def _collect_refs(expr: ir.Expr | None, out: set[int]) -> None:
    if expr:
        for ins in expr:
            if ins.op == "ref.func" and ins.imm and isinstance(ins.imm[0], int):
                out.add(ins.imm[0])


# --------------------------------------------------------------------------
# Function bodies.


def _blocktype(
    ctx: _Ctx, bt: object, fidx: int, pc: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if bt is None:
        return (), ()
    if isinstance(bt, str):
        if bt not in _VALTYPES:
            raise InvalidModuleError("type mismatch", fidx, pc)
        return (), (bt,)
    if isinstance(bt, int) and 0 <= bt < len(ctx.types):
        ft = ctx.types[bt]
        return ft.params, ft.results
    raise InvalidModuleError(f"unknown type {bt}", fidx, pc)


def _pop(
    stk: list, height: int, unreach: bool, expect: str | None, fidx: int, pc: int
) -> str | None:
    """Pop one operand matching ``expect`` (``None``: any); return its type."""
    if len(stk) > height:
        actual = stk.pop()
        if expect is not None and actual is not None and actual != expect:
            raise InvalidModuleError("type mismatch", fidx, pc)
        return actual  # type: ignore[no-any-return]
    if unreach:
        return expect
    raise InvalidModuleError("type mismatch", fidx, pc)


def _pop_all(
    stk: list, height: int, unreach: bool, types: tuple[str, ...], fidx: int, pc: int
) -> None:
    """Pop ``types`` (last one on top); unknowns below the frame are allowed when unreachable."""
    for t in reversed(types):
        if len(stk) > height:
            a = stk.pop()
            if a != t and a is not None:
                raise InvalidModuleError("type mismatch", fidx, pc)
        elif not unreach:
            raise InvalidModuleError("type mismatch", fidx, pc)


# Control frame layout (a list, mutated in place).
_F_KIND, _F_LABELS, _F_RESULTS, _F_HEIGHT, _F_UNREACH, _F_INFO = range(6)


def _validate_func(ctx: _Ctx, fidx: int, func: ir.Function) -> FuncInfo:  # noqa: C901, PLR0912, PLR0915
    ftype = _type_at(ctx, func.type_idx)
    body = func.body
    # Locals: bound the count before expanding, then charge once for the info.
    n_locals = len(ftype.params)
    for count, vt in func.locals:
        if vt not in _VALTYPES or count < 0:
            raise InvalidModuleError("type mismatch", fidx)
        n_locals += count
        if n_locals > MAX_LOCALS:
            raise InvalidModuleError("too many locals", fidx)
    try_alloc(_FUNC_BASE_COST + SLOT_SIZE * n_locals + _BLOCK_COST * len(body), AllocKind.MODULE)
    local_types = ftype.params
    for count, vt in func.locals:
        local_types += (vt,) * count
    n_local_types = len(local_types)

    table = _TABLE
    func_types = ctx.func_types
    n_funcs = len(func_types)
    globals_ = ctx.globals
    n_globals = len(globals_)
    tables = ctx.tables
    n_tables = len(tables)
    has_mem = ctx.n_mems > 0
    declared = ctx.declared
    func_results = ftype.results

    blocks: dict[int, BlockInfo] = {}
    stk: list[str | None] = []
    ctrl: list[list] = [["func", func_results, func_results, 0, False, None]]
    frame = ctrl[0]
    height = 0
    unreach = False
    maxh = 0
    last = len(body) - 1
    done = False

    for pc, ins in enumerate(body):
        if done:
            raise InvalidModuleError("operators remaining after end of function", fidx, pc)
        op = ins.op
        ent = table.get(op)
        if ent is None:
            raise InvalidModuleError(f"unknown instruction {op}", fidx, pc)
        code = ent[0]
        if code < _SPECIAL:
            if code != _PLAIN:
                imm = ins.imm
                if code == _MEMARG or code == _MEMLANE:
                    if not has_mem:
                        raise InvalidModuleError("unknown memory 0", fidx, pc)
                    align = ent[3]
                    if imm[0] > align:
                        raise InvalidModuleError(
                            "alignment must not be larger than natural", fidx, pc
                        )
                    if code == _MEMLANE and not 0 <= imm[2] < (16 >> align):
                        raise InvalidModuleError("invalid lane index", fidx, pc)
                elif code == _LANE:
                    if not 0 <= imm[0] < ent[3]:
                        raise InvalidModuleError("invalid lane index", fidx, pc)
                elif code == _SHUFFLE:
                    lanes = imm[0]
                    if len(lanes) != 16 or max(lanes) >= 32 or min(lanes) < 0:
                        raise InvalidModuleError("invalid lane index", fidx, pc)
                elif not has_mem:  # _MEMNEED
                    raise InvalidModuleError("unknown memory 0", fidx, pc)
            for t in ent[1]:
                if len(stk) > height:
                    a = stk.pop()
                    if a != t and a is not None:
                        raise InvalidModuleError("type mismatch", fidx, pc)
                elif not unreach:
                    raise InvalidModuleError("type mismatch", fidx, pc)
            res = ent[2]
            if res:
                stk.extend(res)
                if len(stk) > maxh:
                    maxh = len(stk)
            continue

        imm = ins.imm
        if code == _LOCAL_GET:
            x = imm[0]
            if not 0 <= x < n_local_types:
                raise InvalidModuleError(f"unknown local {x}", fidx, pc)
            stk.append(local_types[x])
            if len(stk) > maxh:
                maxh = len(stk)
        elif code == _LOCAL_SET or code == _LOCAL_TEE:
            x = imm[0]
            if not 0 <= x < n_local_types:
                raise InvalidModuleError(f"unknown local {x}", fidx, pc)
            t = local_types[x]
            if len(stk) > height:
                a = stk.pop()
                if a != t and a is not None:
                    raise InvalidModuleError("type mismatch", fidx, pc)
            elif not unreach:
                raise InvalidModuleError("type mismatch", fidx, pc)
            if code == _LOCAL_TEE:
                stk.append(t)
                if len(stk) > maxh:
                    maxh = len(stk)
        elif code == _END or code == _ELSE:
            results = frame[_F_RESULTS]
            _pop_all(stk, height, unreach, results, fidx, pc)
            if len(stk) != height:
                raise InvalidModuleError("type mismatch", fidx, pc)
            kind = frame[_F_KIND]
            binfo = frame[_F_INFO]
            if code == _ELSE:
                if kind != "if":
                    raise InvalidModuleError("else found outside of an `if` block", fidx, pc)
                frame[_F_KIND] = "else"
                frame[_F_UNREACH] = unreach = False
                binfo.else_pos = pc
                stk.extend(binfo.params)
                if len(stk) > maxh:
                    maxh = len(stk)
                continue
            if kind == "if" and binfo.params != results:
                raise InvalidModuleError("type mismatch", fidx, pc)
            ctrl.pop()
            if binfo is not None:
                binfo.end_pos = pc
            if not ctrl:
                if pc != last:
                    raise InvalidModuleError("operators remaining after end of function", fidx, pc)
                done = True
                continue
            frame = ctrl[-1]
            height = frame[_F_HEIGHT]
            unreach = frame[_F_UNREACH]
            stk.extend(results)
            if len(stk) > maxh:
                maxh = len(stk)
        elif code == _BLOCK or code == _LOOP or code == _IF:
            params, results = _blocktype(ctx, imm[0] if imm else None, fidx, pc)
            if code == _IF:
                _pop(stk, height, unreach, "i32", fidx, pc)
            _pop_all(stk, height, unreach, params, fidx, pc)
            kind = op
            binfo = BlockInfo(kind, params, results)
            blocks[pc] = binfo
            height = len(stk)
            unreach = False
            frame = [kind, params if code == _LOOP else results, results, height, False, binfo]
            ctrl.append(frame)
            if params:
                stk.extend(params)
                if len(stk) > maxh:
                    maxh = len(stk)
        elif code == _BR or code == _BR_IF:
            x = imm[0]
            if not 0 <= x < len(ctrl):
                raise InvalidModuleError(f"unknown label {x}", fidx, pc)
            labels = ctrl[-1 - x][_F_LABELS]
            if code == _BR_IF:
                _pop(stk, height, unreach, "i32", fidx, pc)
                _pop_all(stk, height, unreach, labels, fidx, pc)
                stk.extend(labels)
                if len(stk) > maxh:
                    maxh = len(stk)
            else:
                _pop_all(stk, height, unreach, labels, fidx, pc)
                del stk[height:]
                frame[_F_UNREACH] = unreach = True
        elif code == _BR_TABLE:
            _pop(stk, height, unreach, "i32", fidx, pc)
            targets, default = (imm[0], imm[1]) if len(imm) == 2 else ((), -1)
            n_ctrl = len(ctrl)
            if not isinstance(default, int) or not 0 <= default < n_ctrl:
                raise InvalidModuleError(f"unknown label {default}", fidx, pc)
            dlabels = ctrl[-1 - default][_F_LABELS]
            arity = len(dlabels)
            for x in targets:
                if not isinstance(x, int) or not 0 <= x < n_ctrl:
                    raise InvalidModuleError(f"unknown label {x}", fidx, pc)
                labels = ctrl[-1 - x][_F_LABELS]
                if len(labels) != arity:
                    raise InvalidModuleError("type mismatch", fidx, pc)
                # pop_vals + push_vals of the actual types: only a check.
                avail = len(stk) - height
                for i in range(arity):
                    if i < avail:
                        a = stk[-1 - i]
                        if a is not None and a != labels[-1 - i]:
                            raise InvalidModuleError("type mismatch", fidx, pc)
                    elif not unreach:
                        raise InvalidModuleError("type mismatch", fidx, pc)
            _pop_all(stk, height, unreach, dlabels, fidx, pc)
            del stk[height:]
            frame[_F_UNREACH] = unreach = True
        elif code == _RETURN:
            _pop_all(stk, height, unreach, func_results, fidx, pc)
            del stk[height:]
            frame[_F_UNREACH] = unreach = True
        elif code == _CALL or code == _CALL_INDIRECT:
            if code == _CALL:
                x = imm[0]
                if not 0 <= x < n_funcs:
                    raise InvalidModuleError(f"unknown function {x}", fidx, pc)
                ft = func_types[x]
            else:
                ti = imm[0]
                tbl = imm[1]
                if not 0 <= tbl < n_tables:
                    raise InvalidModuleError(f"unknown table {tbl}", fidx, pc)
                if tables[tbl].elem != "funcref":
                    raise InvalidModuleError("type mismatch", fidx, pc)
                if not 0 <= ti < len(ctx.types):
                    raise InvalidModuleError(f"unknown type {ti}", fidx, pc)
                ft = ctx.types[ti]
                _pop(stk, height, unreach, "i32", fidx, pc)
            _pop_all(stk, height, unreach, ft.params, fidx, pc)
            if ft.results:
                stk.extend(ft.results)
                if len(stk) > maxh:
                    maxh = len(stk)
        elif code == _GLOBAL_GET or code == _GLOBAL_SET:
            x = imm[0]
            if not 0 <= x < n_globals:
                raise InvalidModuleError(f"unknown global {x}", fidx, pc)
            g = globals_[x]
            if code == _GLOBAL_GET:
                stk.append(g.valtype)
                if len(stk) > maxh:
                    maxh = len(stk)
            else:
                if not g.mutable:
                    raise InvalidModuleError("global is immutable", fidx, pc)
                _pop(stk, height, unreach, g.valtype, fidx, pc)
        elif code == _DROP:
            _pop(stk, height, unreach, None, fidx, pc)
        elif code == _SELECT and not imm:
            _pop(stk, height, unreach, "i32", fidx, pc)
            t1 = _pop(stk, height, unreach, None, fidx, pc)
            t2 = _pop(stk, height, unreach, None, fidx, pc)
            if t1 not in _NUMVEC or t2 not in _NUMVEC:
                raise InvalidModuleError("type mismatch", fidx, pc)
            if t1 is not None and t2 is not None and t1 != t2:
                raise InvalidModuleError("type mismatch", fidx, pc)
            stk.append(t2 if t1 is None else t1)
            if len(stk) > maxh:
                maxh = len(stk)
        elif code == _SELECT or code == _SELECT_T:
            types = imm[0] if imm else ()
            if not isinstance(types, tuple) or len(types) != 1:
                raise InvalidModuleError("invalid result arity", fidx, pc)
            t = types[0]
            if t not in _VALTYPES:
                raise InvalidModuleError("type mismatch", fidx, pc)
            _pop(stk, height, unreach, "i32", fidx, pc)
            _pop(stk, height, unreach, t, fidx, pc)
            _pop(stk, height, unreach, t, fidx, pc)
            stk.append(t)
            if len(stk) > maxh:
                maxh = len(stk)
        elif code == _UNREACHABLE:
            del stk[height:]
            frame[_F_UNREACH] = unreach = True
        elif code == _NOP:
            pass
        elif code == _REF_NULL:
            rt = imm[0] if imm else None
            if rt not in ir.REFTYPES:
                raise InvalidModuleError("type mismatch", fidx, pc)
            stk.append(rt)
            if len(stk) > maxh:
                maxh = len(stk)
        elif code == _REF_IS_NULL:
            top = _pop(stk, height, unreach, None, fidx, pc)
            if top not in _REFS:
                raise InvalidModuleError("type mismatch", fidx, pc)
            stk.append("i32")
            if len(stk) > maxh:
                maxh = len(stk)
        elif code == _REF_FUNC:
            x = imm[0]
            if not 0 <= x < n_funcs:
                raise InvalidModuleError(f"unknown function {x}", fidx, pc)
            if x not in declared:
                raise InvalidModuleError("undeclared function reference", fidx, pc)
            stk.append("funcref")
            if len(stk) > maxh:
                maxh = len(stk)
        elif code <= _TABLE_FILL:  # table.get/set/size/grow/fill
            x = imm[0]
            if not 0 <= x < n_tables:
                raise InvalidModuleError(f"unknown table {x}", fidx, pc)
            et = tables[x].elem
            if code == _TABLE_GET:
                _pop(stk, height, unreach, "i32", fidx, pc)
                stk.append(et)
                if len(stk) > maxh:
                    maxh = len(stk)
            elif code == _TABLE_SET:
                _pop(stk, height, unreach, et, fidx, pc)
                _pop(stk, height, unreach, "i32", fidx, pc)
            elif code == _TABLE_SIZE:
                stk.append("i32")
                if len(stk) > maxh:
                    maxh = len(stk)
            elif code == _TABLE_GROW:
                _pop(stk, height, unreach, "i32", fidx, pc)
                _pop(stk, height, unreach, et, fidx, pc)
                stk.append("i32")
                if len(stk) > maxh:
                    maxh = len(stk)
            else:
                _pop(stk, height, unreach, "i32", fidx, pc)
                _pop(stk, height, unreach, et, fidx, pc)
                _pop(stk, height, unreach, "i32", fidx, pc)
        elif code == _TABLE_COPY or code == _TABLE_INIT:
            if code == _TABLE_COPY:
                dst = imm[0]
                src = imm[1]
                for x in (dst, src):
                    if not 0 <= x < n_tables:
                        raise InvalidModuleError(f"unknown table {x}", fidx, pc)
                src_type = tables[src].elem
                dst_type = tables[dst].elem
            else:
                e = imm[0]
                x = imm[1]
                if not 0 <= x < n_tables:
                    raise InvalidModuleError(f"unknown table {x}", fidx, pc)
                if not 0 <= e < len(ctx.elem_types):
                    raise InvalidModuleError(f"unknown elem segment {e}", fidx, pc)
                src_type = ctx.elem_types[e]
                dst_type = tables[x].elem
            if src_type != dst_type:
                raise InvalidModuleError("type mismatch", fidx, pc)
            _pop_all(stk, height, unreach, ("i32", "i32", "i32"), fidx, pc)
        elif code == _ELEM_DROP:
            e = imm[0]
            if not 0 <= e < len(ctx.elem_types):
                raise InvalidModuleError(f"unknown elem segment {e}", fidx, pc)
        elif code == _MEMORY_INIT or code == _DATA_DROP:
            d = imm[0]
            if code == _MEMORY_INIT and not has_mem:
                raise InvalidModuleError("unknown memory 0", fidx, pc)
            if ctx.data_count is None:
                raise InvalidModuleError("data count section required", fidx, pc)
            if not 0 <= d < ctx.data_count:
                raise InvalidModuleError(f"unknown data segment {d}", fidx, pc)
            if code == _MEMORY_INIT:
                _pop_all(stk, height, unreach, ("i32", "i32", "i32"), fidx, pc)
        else:  # pragma: no cover - every special code is handled above
            raise AssertionError(op)

    if not done:
        raise InvalidModuleError("function body must end with END opcode", fidx, len(body))
    return FuncInfo(ftype, local_types, maxh, blocks)


# --------------------------------------------------------------------------
# Entry point.


def validate_module(m: ir.Module) -> ModuleInfo:  # noqa: C901, PLR0912
    """Validate ``m`` against the Wasm 2.0 rules; return what the compiler needs.

    Raises ``InvalidModuleError`` on the first error found.
    """
    try_alloc(
        _MODULE_BASE_COST + SLOT_SIZE * (2 * (len(m.imports) + len(m.funcs)) + len(m.elems)),
        AllocKind.MODULE,
    )
    ctx = _Ctx()
    ctx.types = m.types
    for ft in m.types:
        if not isinstance(ft, ir.FuncType) or not all(
            t in _VALTYPES for t in ft.params + ft.results
        ):
            raise _fail("type mismatch")

    n_mems = 0
    for imp in m.imports:
        if imp.kind == "func":
            ctx.func_types.append(_type_at(ctx, imp.desc))
        elif imp.kind == "table":
            ctx.tables.append(_check_table_type(imp.desc))
        elif imp.kind == "memory":
            _check_memory_type(imp.desc)
            n_mems += 1
        elif imp.kind == "global":
            ctx.globals.append(_check_global_type(imp.desc))
        else:
            raise _fail(f"unknown import kind {imp.kind}")
    ctx.n_imported_funcs = len(ctx.func_types)
    ctx.n_imported_globals = len(ctx.globals)

    for f in m.funcs:
        ctx.func_types.append(_type_at(ctx, f.type_idx))
    for t in m.tables:
        ctx.tables.append(_check_table_type(t))
    for mt in m.mems:
        _check_memory_type(mt)
        n_mems += 1
    if n_mems > 1:
        raise _fail("multiple memories")
    ctx.n_mems = n_mems

    # Declared function references (C.refs): everything outside function bodies.
    declared = ctx.declared
    for g in m.globals:
        _collect_refs(g.init, declared)
    for el in m.elems:
        _collect_refs(el.offset, declared)
        for e in el.init:
            _collect_refs(e, declared)
    for ex in m.exports:
        if ex.kind == "func" and isinstance(ex.index, int):
            declared.add(ex.index)

    for g in m.globals:
        gt = _check_global_type(g.type)
        _const_expr(ctx, g.init, gt.valtype)
        ctx.globals.append(gt)

    names: set[str] = set()
    spaces = {
        "func": len(ctx.func_types),
        "table": len(ctx.tables),
        "memory": n_mems,
        "global": len(ctx.globals),
    }
    for ex in m.exports:
        if ex.name in names:
            raise _fail("duplicate export name")
        names.add(ex.name)
        bound = spaces.get(ex.kind)
        if bound is None:
            raise _fail(f"unknown export kind {ex.kind}")
        if not isinstance(ex.index, int) or not 0 <= ex.index < bound:
            what = "function" if ex.kind == "func" else ex.kind
            raise _fail(f"unknown {what} {ex.index}")

    if m.start is not None:
        s = m.start
        if not 0 <= s < len(ctx.func_types):
            raise _fail(f"unknown function {s}")
        st = ctx.func_types[s]
        if st.params or st.results:
            raise _fail("start function")

    for el in m.elems:
        if el.reftype not in ir.REFTYPES:
            raise _fail("type mismatch")
        for e in el.init:
            _const_expr(ctx, e, el.reftype)
        if el.mode == "active":
            if not 0 <= el.table < len(ctx.tables):
                raise _fail(f"unknown table {el.table}")
            if ctx.tables[el.table].elem != el.reftype:
                raise _fail("type mismatch")
            _const_expr(ctx, el.offset, "i32")
        elif el.mode not in ("passive", "declarative"):
            raise _fail(f"unknown element segment mode {el.mode}")
        ctx.elem_types.append(el.reftype)

    if m.data_count is not None and m.data_count != len(m.datas):
        raise _fail("data count and data section have inconsistent lengths")
    ctx.data_count = m.data_count
    for d in m.datas:
        if d.mode == "active":
            if not 0 <= d.memory < n_mems:
                raise _fail(f"unknown memory {d.memory}")
            _const_expr(ctx, d.offset, "i32")
        elif d.mode != "passive":
            raise _fail(f"unknown data segment mode {d.mode}")

    base = ctx.n_imported_funcs
    infos = []
    for i, f in enumerate(m.funcs):
        try:
            infos.append(_validate_func(ctx, base + i, f))
        except (IndexError, TypeError, ValueError) as exc:
            # Only a hand-built IR with a wrongly shaped immediate gets here.
            raise InvalidModuleError(f"malformed immediate ({exc})", base + i) from exc
    return ModuleInfo(infos, ctx.func_types, frozenset(declared))
