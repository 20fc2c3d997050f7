"""Wasm function bodies -> Python source.

Invariants:
- Input is a *validated* ``ir.Module``; the generator trusts stack typing.
- The operand-stack slot at height ``p`` is the Python local ``s{p}``; wasm
  local ``k`` is ``l{k}``. Pure, non-trapping operations are kept as pending
  expressions on a compile-time stack and emitted where consumed; an entry at
  height ``p`` only ever references slots ``>= p`` (so flushing bottom-up is
  safe), and writing slot ``q`` or local ``k`` first flushes pending entries
  that read it. Anything that can trap or has side effects is emitted in
  program order.
- At every control-flow join (block/loop/if entry, else, end, branch) the
  stack is canonical: entry ``p`` is the name ``s{p}``.
- Structured control flow: a wasm construct gets a Python ``while True:`` loop
  only when some branch needs it (``loop`` targeted by a branch; ``block``/
  ``if`` targeted by a branch that cannot simply ``break`` the innermost Python
  loop because that loop ends exactly where the target ends). Branches out of
  several Python loops set ``_br`` to the target's id and ``break``; after each
  such loop a check re-dispatches.
- One function at a time: ``ModuleCodegen.function_source(i)`` costs time
  linear in function ``i``'s body (module-wide facts are computed once per
  ``ModuleCodegen``); the text depends only on the function's body, its
  module's types/imports/globals and the option variant, never on which
  other functions were generated. Names the code binds per instance follow
  ``wasmrt.compile.cache.FREE_NAME``; float constants without a literal are
  globals named by their bits (``_kf32_<bits>``/``_kf64_<bits>``), and a
  ``br_table`` dispatch table is a tuple constant.
- Tables: ``call_indirect``'s one-line check fails over to ``_cifail(T<t>, ..)``
  with the ``TableInstance``, which also resolves lazy funcref placeholders;
  code that reads elements as values (``table.get``, ``table.copy`` source)
  reads them through ``_r<t>``, which the binder materialises before it hands
  the list out, so those reads never see a placeholder (``wasmrt.vm.table``).
- Call depth is not counted in generated code: ``StoreCore.invoke`` bounds it
  with the Python recursion limit (wasm->wasm calls are plain Python calls).
- Fuel and epoch checks are emitted only in the variants that ask for them.
- SIMD: a v128 is an unsigned 128-bit int (zero value ``0``) and travels like
  any other value (locals, globals, params/results, select, block params).
  Every 0xFD instruction compiles to a call of its ``wasmrt.compile.simd``
  function, bound once as the module-namespace global ``_V_<name>``
  (``numeric.simd_global``; part of ``RUNTIME_NAMESPACE``), except ``v128.const``, which
  is evaluated at compile time into an int literal, the ops with an inline
  form (``simd.SIMD_INLINE``: an int expression with the function's value)
  and ``v128.load``/``v128.store`` (a slice of ``_md`` and ``int.from_bytes``
  / ``to_bytes``, what their functions do). Non-memory SIMD ops
  never trap, so they are pending expressions like pure numeric ops; loads and
  stores first check ``addr + offset + size <= memory size`` exactly and
  trap ``MEMORY_OUT_OF_BOUNDS`` otherwise.
- Integer wrap-around: add/sub results are reduced with ``% 2**w``, mul/shl
  results with ``& (2**w - 1)`` (the same value; each is the faster one in
  CPython for its typical operands). A memory address still pending as
  unmasked add/sub/mul/shl text is bounds-checked unmasked first
  (``_unmasked_addr``): exact, because the memory size never exceeds 2**w.
- A function that accesses memory caches ``_md``/``_ms`` (data, size) and,
  per access size ``n`` it uses, ``_ms<n> = _ms - n``, all three reloaded
  together (``mem_reload``) on entry and after every call or ``memory.grow``;
  an ``n``-byte access at ``a`` is in bounds iff ``a <= _ms<n>``.
- Signed comparisons never flip both operands' sign bits: against a constant
  they are range tests, between names one sign test picks the unsigned
  order or its reverse (``signed_compare_text``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from wasmrt import ir
from wasmrt.compile.dispatch import tree_dispatch
from wasmrt.compile.numeric import simd_global
from wasmrt.compile.simd import SIMD_INLINE, SIMD_MEMORY_OPS, SIMD_MEMORY_SIZES, SIMD_OPS
from wasmrt.opcodes import BY_NAME
from wasmrt.vm.values import f32_from_bits, f64_from_bits

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
_SIMPLE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|\d+)$")

#: Fuel: operators costing 0 (everything else costs 1). This matches the wasmtime
#: release the tests compare with: ``unreachable`` and ``return`` cost 1, and the
#: function's final ``end`` (reached by falling off or by a branch to the
#: function label) costs 1 like a return.
_ZERO_COST = frozenset({"nop", "drop", "block", "loop", "else", "end"})


@dataclass(slots=True)
class _Entry:
    expr: str
    refs: frozenset[str] = frozenset()
    cond: str | None = None
    depth: int = 0
    #: For an integer add/sub/mul/shl still pending: ``expr`` without its final
    #: wrap-around mask (see ``FunctionCompiler.wrapping``).
    raw: str | None = None
    #: ``raw``'s wrap-around mask (its width's), and whether ``raw`` is never negative
    #: (built from + * << alone: ``_addr`` then needs no lower bound check).
    mask: int = 0
    nonneg: bool = False


@dataclass(slots=True)
class _Info:
    """Prepass facts about one construct (block/loop/if)."""

    kind: str
    parent: int  # construct index or -1 for the function
    tail: bool = False  # last instruction of its parent's body
    pyloop: bool = False
    brs: list[list[int]] = field(default_factory=list)  # constructs between br and target


@dataclass(slots=True)
class _Ctl:
    kind: str  # func, block, loop, if
    idx: int
    height: int  # stack height below params
    nparams: int
    nresults: int
    pyloop: bool
    saved: list[_Entry]
    indent: int
    unreachable: bool = False
    targeted: bool = False
    break_lands: bool = False
    br_out: set[int] = field(default_factory=set)  # _br targets propagating out of this loop
    mark: int = 0  # line count when the current suite started
    else_seen: bool = False
    then_reach: bool = False
    lab_end: int = -1  # flat mode: segment after the construct
    lab_else: int = -1  # flat mode: else segment of an if
    lab_start: int = -1  # flat mode: loop header segment


def _blocktype(m: ir.Module, bt: object) -> tuple[int, int]:
    if bt is None:
        return 0, 0
    if isinstance(bt, str):
        return 0, 1
    assert isinstance(bt, int)
    t = m.types[bt]
    return len(t.params), len(t.results)


def _prepass(body: list[ir.Instr]) -> list[_Info]:
    infos: list[_Info] = []
    open_: list[int] = []
    dead = False
    skip = 0
    last_closed = -1
    for ins in body:
        op = ins.op
        if last_closed >= 0:
            infos[last_closed].tail = op in ("end", "else")
            last_closed = -1
        if dead:
            if op in ("block", "loop", "if"):
                skip += 1
                continue
            if op == "end":
                if skip:
                    skip -= 1
                    continue
            elif op == "else":
                if skip:
                    continue
            else:
                continue
            dead = False
        if op in ("block", "loop", "if"):
            infos.append(_Info(op, open_[-1] if open_ else -1))
            open_.append(len(infos) - 1)
        elif op == "end":
            if not open_:
                break
            c = open_.pop()
            _decide(infos, c)
            last_closed = c
        elif op in ("br", "br_if", "br_table"):
            labels = (ins.imm[0],) if op != "br_table" else tuple(ins.imm[0]) + (ins.imm[1],)
            for lab in labels:
                if lab < len(open_):
                    tgt = open_[len(open_) - 1 - lab]
                    infos[tgt].brs.append(open_[len(open_) - lab :])
            if op != "br_if":
                dead = True
        elif op in ("return", "unreachable"):
            dead = True
    return infos


def _tail_chain(infos: list[_Info], x: int, target: int) -> bool:
    while x != target:
        if not infos[x].tail:
            return False
        x = infos[x].parent
    return True


def _decide(infos: list[_Info], c: int) -> None:
    info = infos[c]
    if not info.brs:
        return
    if info.kind == "loop":
        info.pyloop = True
        return
    for between in info.brs:
        x = next((b for b in reversed(between) if infos[b].pyloop), None)
        if x is None or not _tail_chain(infos, x, c):
            info.pyloop = True
            return


#: Python allows 20 statically nested loops and 100 indentation levels; stay well below.
MAX_PYLOOP_NESTING = 16
#: Test hook: emit every function in the flat (state machine) form.
FORCE_FLAT = False
MAX_CONSTRUCT_NESTING = 40


def _needs_flat(infos: list[_Info]) -> bool:
    """True when structured emission would exceed Python's nesting limits."""
    depth: list[int] = []
    loops: list[int] = []
    for info in infos:
        d = 1 if info.parent < 0 else depth[info.parent] + 1
        lp = (0 if info.parent < 0 else loops[info.parent]) + (1 if info.pyloop else 0)
        depth.append(d)
        loops.append(lp)
        if d > MAX_CONSTRUCT_NESTING or lp > MAX_PYLOOP_NESTING:
            return True
    return False


def _float_literal(x: float, consts: dict[str, str], kind: str, bits: int) -> str:
    """A literal for ``x``, or the name of a namespace constant (NaNs, infinities, -0.0).

    The name is derived from the bits alone, so every function (and every
    module sharing a variant namespace) agrees on what it means.
    """
    if math.isfinite(x) and not (x == 0.0 and math.copysign(1.0, x) < 0):
        r = repr(x)
        return f"({r})" if r.startswith("-") else r
    name = f"_k{kind}_{bits}"
    consts[name] = f"{kind}:{bits}"
    return name


class FunctionCompiler:
    """Generates the source of one function: a ``def f<funcidx>(...)`` compiled on its own
    (``wasmrt.compile.cache``), its per-instance names bound as free variables."""

    def __init__(
        self,
        mc: ModuleCodegen,
        fidx: int,
        func: ir.Function,
        ftype: ir.FuncType,
    ) -> None:
        self.mc = mc
        self.m = mc.module
        self.fidx = fidx
        self.func = func
        self.ftype = ftype
        self.fuel = mc.fuel
        self.epoch = mc.epoch
        #: Namespace constants this function reads (``_float_literal``).
        self.consts: dict[str, str] = {}
        self.lines: list[str] = []
        #: The index of the wasm instruction each line of ``lines`` was emitted for.
        self.line_instrs: list[int] = []
        #: Flat form: each segment's ``(label, index of its header in lines)``.
        self.seg_starts: list[tuple[int, int]] = []
        self.cur_instr = 0
        #: Lines of the generated function before ``lines`` (``def`` and prologue).
        self.lines_before_body = 1
        self.stack: list[_Entry] = []
        self.ctls: list[_Ctl] = []
        self.uses_br = False
        self.uses_mem = False
        self.fuel_acc = 0

    # ------------------------------------------------------------ emission
    def emit(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)
        self.line_instrs.extend([self.cur_instr] * (text.count("\n") + 1))

    @property
    def indent(self) -> int:
        return self._indent

    # ------------------------------------------------------------ stack
    def push(
        self,
        expr: str,
        refs: frozenset[str] = frozenset(),
        cond: str | None = None,
        depth: int = 0,
        raw: str | None = None,
        mask: int = 0,
        nonneg: bool = False,
    ) -> None:
        if depth > 12:
            p = len(self.stack)
            self.stack.append(_Entry(expr, refs, cond, depth))
            self.materialize(p)
            return
        self.stack.append(_Entry(expr, refs, cond, depth, raw, mask, nonneg))

    def push_slot_written(self) -> str:
        """Reserve the next slot as a materialized value; returns its name."""
        p = len(self.stack)
        name = f"s{p}"
        self.flush_readers(name)
        self.stack.append(_Entry(name, frozenset((name,))))
        return name

    def pop(self) -> _Entry:
        return self.stack.pop()

    def val(self, e: _Entry) -> str:
        if e.cond is not None and e.expr == "":
            e.expr = f"(1 if {e.cond} else 0)"
        return e.expr

    def flush_readers(self, name: str, below: int | None = None) -> None:
        n = len(self.stack) if below is None else below
        for j in range(n):
            e = self.stack[j]
            if name in e.refs and e.expr != f"s{j}":
                self.materialize(j)

    def materialize(self, p: int) -> None:
        e = self.stack[p]
        name = f"s{p}"
        if e.expr == name:
            return
        self.flush_readers(name, p)
        self.emit(f"{name} = {self.val(e)}")
        self.stack[p] = _Entry(name, frozenset((name,)))

    def flush_all(self) -> None:
        for p in range(len(self.stack)):
            self.materialize(p)

    def make_simple(self, from_top: int) -> None:
        p = len(self.stack) - 1 - from_top
        e = self.stack[p]
        if e.cond is not None and e.expr == "":
            self.materialize(p)
        elif not _SIMPLE.match(e.expr):
            self.materialize(p)

    def set_slot(self, p: int, expr: str) -> None:
        """Emit ``s{p} = expr`` for a value being pushed at height p (stack len == p)."""
        name = f"s{p}"
        self.flush_readers(name)
        self.emit(f"{name} = {expr}")
        self.stack.append(_Entry(name, frozenset((name,))))

    # ------------------------------------------------------------ fuel
    def fuel_flush(self) -> None:
        if self.fuel and self.fuel_acc:
            self.emit(f"_S.fuel_counter += {self.fuel_acc}")
            self.fuel_acc = 0

    def checks(self) -> None:
        if self.fuel:
            self.emit("if _S.fuel_counter >= 0: _oof()")
        if self.epoch:
            self.emit("if _E.epoch >= _S.epoch_deadline: _interrupt()")

    def reload_mem(self) -> None:
        if self.uses_mem:
            self.emit(self.mem_reload)

    # ------------------------------------------------------------ driver
    def compile(self) -> list[str]:
        ft = self.ftype
        nparams = len(ft.params)
        body = self.func.body
        self.infos = _prepass(body)
        self.flat = self.mc.force_flat or _needs_flat(self.infos)
        if self.flat:
            for info in self.infos:
                info.pyloop = False
        self.nseg = 1
        self.cidx = 0
        ops = [i.op for i in body]
        mem_ops = not _MEMORY_OPS.isdisjoint(ops)
        self.uses_mem = mem_ops
        # ``_ms<n>`` is the memory size less ``n``: an access of n bytes at ``a`` is in
        # bounds iff ``a <= _ms<n>`` (one comparison, no addition per access).
        sizes = sorted({_ACCESS_SIZE.get(op, 0) for op in ops} - {0}) if mem_ops else []
        self.mem_reload = "_md = M0.data; _ms = M0.size" + "".join(
            f"; _ms{n} = _ms - {n}" for n in sizes
        )
        self._indent = 1
        params = ", ".join(f"l{i}" for i in range(nparams))
        header = [f"def f{self.fidx}({params}):"]
        prologue: list[str] = []
        k = nparams
        for count, t in self.func.locals:
            init = {"f32": "0.0", "f64": "0.0", "funcref": "None", "externref": "None"}.get(t, "0")
            for _ in range(count):
                prologue.append(f"    l{k} = {init}")
                k += 1
        if mem_ops:
            prologue.append("    " + self.mem_reload)
        self.ctls.append(_Ctl("func", -1, 0, 0, len(ft.results), False, [], 1))
        self.checks()
        if self.flat:
            self.emit("_pc = 0")
            self.emit("while True:")
            self.seg_starts.append((0, len(self.lines)))
            self.emit("    if _pc == 0:")
            self._indent = 3
            self.seg_mark = len(self.lines)
        for n, ins in enumerate(body):
            self.cur_instr = n
            self.step(ins)
            if not self.ctls:
                break
        if self.flat and len(self.lines) == self.seg_mark:
            self.emit("pass")
        if self.flat:  # jumps test O(log segments) labels, not all before the target
            self.lines, self.line_instrs = tree_dispatch(
                self.lines, self.line_instrs, self.seg_starts
            )
        if self.uses_br:
            prologue.insert(0, "    _br = 0")
        out = header + prologue + self.lines
        if len(out) == 1:
            out.append("    pass")
        self.lines_before_body = len(header) + len(prologue)
        return out

    # ------------------------------------------------------------ control
    def _arity(self, c: _Ctl) -> int:
        return c.nparams if c.kind == "loop" else c.nresults

    def _ret_expr(self, n: int) -> str:
        vals = [self.val(e) for e in self.stack[len(self.stack) - n :]]
        if n == 0:
            return "return"
        if n == 1:
            return f"return {vals[0]}"
        return f"return ({', '.join(vals)})"

    def branch(self, depth: int) -> None:
        """Emit the jump (copies + control transfer) for ``br depth`` at the current point."""
        tgt = self.ctls[len(self.ctls) - 1 - depth]
        n = self._arity(tgt)
        if tgt.kind == "func":
            if self.fuel:
                self.fuel_acc += 1
            self.fuel_flush()
            self.emit(self._ret_expr(n))
            return
        if n:
            srcs = [self.val(e) for e in self.stack[len(self.stack) - n :]]
            dsts = [f"s{tgt.height + i}" for i in range(n)]
            if srcs != dsts:
                self.emit(f"{', '.join(dsts)} = {', '.join(srcs)}")
        if self.flat:
            self.emit(f"_pc = {tgt.lab_start if tgt.kind == 'loop' else tgt.lab_end}")
            self.emit("continue")
            return
        x = None
        for c in reversed(self.ctls[len(self.ctls) - depth :]):
            if c.pyloop:
                x = c
                break
        if tgt.kind != "loop":
            tgt.targeted = True
        if x is None:
            assert tgt.pyloop, "branch target without a Python loop"
            self.emit("continue" if tgt.kind == "loop" else "break")
        elif tgt.kind != "loop" and _tail_chain(self.infos, x.idx, tgt.idx):
            x.break_lands = True
            self.emit("break")
        else:
            assert tgt.pyloop
            self.uses_br = True
            self.emit(f"_br = {tgt.idx + 1}")
            self.emit("break")
            for c in self.ctls[len(self.ctls) - depth :]:
                if c.pyloop:
                    c.br_out.add(tgt.idx)

    def open_block(self, kind: str, bt: object) -> None:
        info = self.infos[self.cidx]
        idx = self.cidx
        self.cidx += 1
        np_, nr = _blocktype(self.m, bt)
        height = len(self.stack) - np_
        c = _Ctl(kind, idx, height, np_, nr, info.pyloop, [], self._indent)
        c.saved = list(self.stack)
        self.ctls.append(c)
        if self.flat:
            c.lab_end = self.new_label()
            if kind == "loop":
                c.lab_start = self.new_label()
                self.start_segment(c.lab_start, fall=True)
                self.checks()
            return
        if info.pyloop:
            self.emit("while True:")
            self._indent += 1
            if kind == "loop":
                self.checks()
        elif kind == "loop":
            self.checks()

    def new_label(self) -> int:
        self.nseg += 1
        return self.nseg - 1

    def start_segment(self, label: int, fall: bool) -> None:
        """Flat mode: close the current segment (falling through if ``fall``) and open ``label``."""
        if fall:
            self.emit(f"_pc = {label}")
        elif len(self.lines) == self.seg_mark:
            self.emit("pass")
        self._indent = 2
        self.seg_starts.append((label, len(self.lines)))
        self.emit(f"if _pc == {label}:")
        self._indent = 3
        self.seg_mark = len(self.lines)

    def step(self, ins: ir.Instr) -> None:
        op = ins.op
        top = self.ctls[-1]
        if top.unreachable:
            if op in ("block", "loop", "if"):
                self.dead_depth += 1
                return
            if op == "end" or op == "else":
                if self.dead_depth:
                    if op == "end":
                        self.dead_depth -= 1
                    return
            else:
                return
            # fall through: structural instruction of the current construct
        if self.fuel and op not in _ZERO_COST:
            self.fuel_acc += 1
        h = _HANDLERS.get(op)
        if h is not None:
            h(self, ins)
            return
        raise NotImplementedError(op)

    dead_depth = 0

    def kill(self) -> None:
        self.ctls[-1].unreachable = True
        self.dead_depth = 0

    def op_unreachable(self, ins: ir.Instr) -> None:
        self.fuel_flush()
        self.emit("_unreachable()")
        self.kill()

    # ------------------------------------------------------------ SIMD
    def simd(self, ins: ir.Instr) -> None:
        """A non-memory 0xFD instruction: a pure call of its ``SIMD_OPS`` function."""
        op = ins.op
        info = BY_NAME[op]
        assert info.sig is not None
        if op == "v128.const":
            self.push(str(SIMD_OPS[op](ins.imm[0])))
            return
        n = len(info.sig[0])
        inline = SIMD_INLINE.get(op)
        if inline is not None:
            for pos in inline[0]:
                self.make_simple(n - 1 - pos)
        ents = self.stack[len(self.stack) - n :]
        del self.stack[len(self.stack) - n :]
        args = [self.val(e) for e in ents]
        refs: frozenset[str] = frozenset().union(*(e.refs for e in ents))
        depth = max((e.depth for e in ents), default=0) + 1
        if inline is not None:
            imm = [ins.imm[0]] if info.imm == "lane" else []
            if info.imm == "shuffle":
                imm = [bytes(ins.imm[0])]
            text = inline[1](*args, *imm)
            if text is not None:
                self.push(text, refs, depth=depth)
                return
        if info.imm == "lane":
            args.append(str(ins.imm[0]))
        elif info.imm == "shuffle":
            args.append(repr(bytes(ins.imm[0])))
        self.push(f"{simd_global(op)}({', '.join(args)})", refs, depth=depth)

    def simd_memory(self, ins: ir.Instr) -> None:
        """A 0xFD load/store: exact bounds check, then its ``SIMD_MEMORY_OPS`` function."""
        op = ins.op
        info = BY_NAME[op]
        assert info.sig is not None
        n = len(info.sig[0]) - 1  # operands above the address
        ops = [self.val(self.pop()) for _ in range(n)][::-1]
        a, cond = self._addr(ins.imm[1], SIMD_MEMORY_SIZES[op])
        if info.imm == "memarg_lane":
            ops.append(str(ins.imm[2]))
        call = f"{simd_global(op)}(_md, {', '.join([a, *ops])})"
        if op == "v128.load":  # the whole of ``v128_load``, without the call
            call = f"_ifb(_md[{a}:{a} + 16], 'little')"
        elif op == "v128.store":
            call = f"_md[{a}:{a} + 16] = ({ops[0]}).to_bytes(16, 'little')"
        if info.sig[1]:
            self.set_slot(len(self.stack), f"{call} if {cond} else _oob()")
        else:
            self.emit(f"if not ({cond}): _oob()")
            self.emit(call)

    def op_nop(self, ins: ir.Instr) -> None:
        pass

    def op_block(self, ins: ir.Instr) -> None:
        self.flush_all()
        self.fuel_flush()
        self.open_block("block", ins.imm[0])

    def op_loop(self, ins: ir.Instr) -> None:
        self.flush_all()
        self.fuel_flush()
        self.open_block("loop", ins.imm[0])

    def op_if(self, ins: ir.Instr) -> None:
        c = self.pop()
        self.flush_all()
        self.fuel_flush()
        cond = c.cond if c.cond is not None else c.expr
        self.open_block("if", ins.imm[0])
        if self.flat:
            c2 = self.ctls[-1]
            c2.lab_else = self.new_label()
            self.emit(f"if not ({cond}):")
            self.emit(f"    _pc = {c2.lab_else}")
            self.emit("    continue")
            return
        self.emit(f"if {cond}:")
        self._indent += 1
        self.ctls[-1].mark = len(self.lines)

    def _close_suite(self, c: _Ctl) -> None:
        if not c.unreachable:
            for p in range(c.height, len(self.stack)):
                self.materialize(p)
            self.fuel_flush()
        if len(self.lines) == c.mark:
            self.emit("pass")

    def op_else(self, ins: ir.Instr) -> None:
        c = self.ctls[-1]
        if self.flat:
            if not c.unreachable:
                for p in range(c.height, len(self.stack)):
                    self.materialize(p)
                self.fuel_flush()
                self.emit(f"_pc = {c.lab_end}")
                self.emit("continue")
            c.then_reach = not c.unreachable
            self.fuel_acc = 0
            self.start_segment(c.lab_else, fall=False)
            c.lab_else = -1
            c.else_seen = True
            c.unreachable = False
            self.stack = list(c.saved)
            return
        c.then_reach = not c.unreachable
        self._close_suite(c)
        self.fuel_acc = 0
        self._indent -= 1
        self.emit("else:")
        self._indent += 1
        c.mark = len(self.lines)
        c.else_seen = True
        c.unreachable = False
        self.stack = list(c.saved)

    def op_end(self, ins: ir.Instr) -> None:
        c = self.ctls[-1]
        if c.kind == "func":
            if not c.unreachable:
                if self.fuel:
                    self.fuel_acc += 1
                self.fuel_flush()
                self.emit(self._ret_expr(c.nresults))
            self.ctls.pop()
            return
        fall = not c.unreachable
        if self.flat:
            if fall:
                for p in range(c.height, len(self.stack)):
                    self.materialize(p)
                self.fuel_flush()
            self.fuel_acc = 0
            if c.lab_else >= 0:  # an if without else: the false edge lands here
                if fall:
                    self.emit(f"_pc = {c.lab_end}")
                self.start_segment(c.lab_else, fall=False)
                self.start_segment(c.lab_end, fall=True)
            else:
                self.start_segment(c.lab_end, fall=fall)
            self.ctls.pop()
            self.ctls[-1].unreachable = False
            self.dead_depth = 0
            self.stack = c.saved[: c.height] + [
                _Entry(f"s{p}", frozenset((f"s{p}",)))
                for p in range(c.height, c.height + c.nresults)
            ]
            return
        if c.kind == "if":
            self._close_suite(c)
            if c.else_seen:
                fall = fall or c.then_reach
            else:
                fall = True
            self._indent -= 1
        else:
            if fall:
                for p in range(c.height, len(self.stack)):
                    self.materialize(p)
                self.fuel_flush()
        self.fuel_acc = 0
        if c.pyloop:
            self.emit("break")
            self._indent -= 1
        self.ctls.pop()
        if c.br_out:
            parent_loop = next((p for p in reversed(self.ctls) if p.pyloop), None)
            assert parent_loop is not None
            self.emit("if _br:")
            own = parent_loop.idx in c.br_out
            others = bool(c.br_out - {parent_loop.idx})
            jump = "continue" if parent_loop.kind == "loop" else "break"
            if own and others:
                self.emit(f"    if _br == {parent_loop.idx + 1}:")
                self.emit("        _br = 0")
                self.emit(f"        {jump}")
                self.emit("    break")
            elif own:
                self.emit("    _br = 0")
                self.emit(f"    {jump}")
            else:
                self.emit("    break")
        reach = fall or c.break_lands or (c.kind != "loop" and c.targeted)
        self.ctls[-1].unreachable = not reach
        self.dead_depth = 0
        self.stack = c.saved[: c.height] + [
            _Entry(f"s{p}", frozenset((f"s{p}",))) for p in range(c.height, c.height + c.nresults)
        ]

    def op_br(self, ins: ir.Instr) -> None:
        self.fuel_flush()
        self.branch(ins.imm[0])
        self.kill()

    def op_br_if(self, ins: ir.Instr) -> None:
        c = self.pop()
        cond = c.cond if c.cond is not None else c.expr
        depth = ins.imm[0]
        tgt = self.ctls[len(self.ctls) - 1 - depth]
        n = self._arity(tgt)
        for p in range(len(self.stack) - n, len(self.stack)):
            self.materialize(p)
        self.fuel_flush()
        self.emit(f"if {cond}:")
        self._indent += 1
        self.branch(depth)
        self._indent -= 1

    def op_br_table(self, ins: ir.Instr) -> None:
        labels, default = ins.imm
        self.make_simple(0)
        idx = self.val(self.pop())
        n = self._arity(self.ctls[len(self.ctls) - 1 - default])
        for p in range(len(self.stack) - n, len(self.stack)):
            self.materialize(p)
        self.fuel_flush()
        groups: dict[int, list[int]] = {}
        for i, lab in enumerate(labels):
            if lab != default:
                groups.setdefault(lab, []).append(i)
        first = True
        if len(labels) > 16 and groups:
            # A tuple of ints is one constant of the code object: nothing to build per call.
            table = repr(tuple(labels))
            self.emit(f"_bt = {table}[{idx}] if {idx} < {len(labels)} else {default}")
            for lab in groups:
                self.emit(f"{'if' if first else 'elif'} _bt == {lab}:")
                first = False
                self._indent += 1
                self.branch(lab)
                self._indent -= 1
        else:
            for lab, idxs in groups.items():
                test = f"{idx} == {idxs[0]}" if len(idxs) == 1 else f"{idx} in {tuple(idxs)!r}"
                self.emit(f"{'if' if first else 'elif'} {test}:")
                first = False
                self._indent += 1
                self.branch(lab)
                self._indent -= 1
        if first:
            self.branch(default)
        else:
            self.emit("else:")
            self._indent += 1
            self.branch(default)
            self._indent -= 1
        self.kill()

    def op_return(self, ins: ir.Instr) -> None:
        self.fuel_flush()
        self.emit(self._ret_expr(self.ctls[0].nresults))
        self.kill()

    # ------------------------------------------------------------ calls
    def _call(self, target: str, ft: ir.FuncType) -> None:
        n = len(ft.params)
        args = [self.val(e) for e in self.stack[len(self.stack) - n :]] if n else []
        del self.stack[len(self.stack) - n :]
        self.fuel_flush()
        call = f"{target}({', '.join(args)})"
        nr = len(ft.results)
        p = len(self.stack)
        names = [f"s{p + i}" for i in range(nr)]
        for nm in names:
            self.flush_readers(nm)
        if nr == 0:
            self.emit(call)
        else:
            self.emit(f"{', '.join(names)} = {call}")
        for nm in names:
            self.stack.append(_Entry(nm, frozenset((nm,))))
        self.reload_mem()

    def op_call(self, ins: ir.Instr) -> None:
        k = ins.imm[0]
        ft = self.mc.func_types[k]
        if k < self.mc.n_imported_funcs:
            self._call(f"_c{k}", ft)
        else:
            self._call(f"f{k}", ft)

    def op_call_indirect(self, ins: ir.Instr) -> None:
        tyidx, tab = ins.imm
        ft = self.m.types[tyidx]
        self.make_simple(0)
        i = self.val(self.pop())
        t = f"_t{tab}"
        ty = f"_ty{tyidx}"
        self.fuel_flush()
        self.emit(
            f"if not ({i} < len({t}) and (_f := {t}[{i}]) is not None"
            f" and (_f.type is {ty} or _f.type == {ty})): _f = _cifail(T{tab}, {i}, {ty})"
        )
        self._call("_f.call", ft)

    # ------------------------------------------------------------ parametric
    def op_drop(self, ins: ir.Instr) -> None:
        self.pop()

    def op_select(self, ins: ir.Instr) -> None:
        c = self.pop()
        b = self.pop()
        a = self.pop()
        cond = c.cond if c.cond is not None else c.expr
        self.push(
            f"({self.val(a)} if {cond} else {self.val(b)})",
            a.refs | b.refs | c.refs,
            depth=max(a.depth, b.depth, c.depth) + 1,
        )

    op_select_t = op_select

    # ------------------------------------------------------------ variables
    def op_local_get(self, ins: ir.Instr) -> None:
        n = f"l{ins.imm[0]}"
        self.push(n, frozenset((n,)))

    def op_local_set(self, ins: ir.Instr) -> None:
        n = f"l{ins.imm[0]}"
        e = self.pop()
        v = self.val(e)
        self.flush_readers(n)
        if v != n:
            self.emit(f"{n} = {v}")

    def op_local_tee(self, ins: ir.Instr) -> None:
        n = f"l{ins.imm[0]}"
        e = self.pop()
        v = self.val(e)
        self.flush_readers(n)
        if v != n:
            self.emit(f"{n} = {v}")
        self.push(n, frozenset((n,)))

    def op_global_get(self, ins: ir.Instr) -> None:
        k = ins.imm[0]
        if self.mc.global_types[k].mutable:
            self.set_slot(len(self.stack), f"G{k}.value")
        else:
            self.push(f"_gv{k}")

    def op_global_set(self, ins: ir.Instr) -> None:
        k = ins.imm[0]
        self.emit(f"G{k}.value = {self.val(self.pop())}")

    # ------------------------------------------------------------ tables / refs
    def op_ref_null(self, ins: ir.Instr) -> None:
        self.push("None")

    def op_ref_is_null(self, ins: ir.Instr) -> None:
        e = self.pop()
        self.push("", e.refs, cond=f"{self.val(e)} is None", depth=e.depth + 1)

    def op_ref_func(self, ins: ir.Instr) -> None:
        self.push(f"F{ins.imm[0]}")

    def op_table_get(self, ins: ir.Instr) -> None:
        t = ins.imm[0]
        self.make_simple(0)
        i = self.val(self.pop())
        self.set_slot(len(self.stack), f"_r{t}[{i}] if {i} < len(_r{t}) else _toob()")

    def op_table_set(self, ins: ir.Instr) -> None:
        t = ins.imm[0]
        v = self.val(self.pop())
        self.make_simple(0)
        i = self.val(self.pop())
        self.emit(f"if {i} >= len(_t{t}): _toob()")
        self.emit(f"_t{t}[{i}] = {v}")

    def op_table_size(self, ins: ir.Instr) -> None:
        t = ins.imm[0]
        self.set_slot(len(self.stack), f"len(_t{t})")

    def _bulk_fuel(self, n: str) -> None:
        if self.fuel:
            self.fuel_flush()
            self.emit(f"_S.fuel_counter += {n}")

    def op_table_grow(self, ins: ir.Instr) -> None:
        t = ins.imm[0]
        self.make_simple(0)
        n = self.val(self.pop())
        init = self.val(self.pop())
        self._bulk_fuel(n)
        self.set_slot(len(self.stack), f"_grow_table(T{t}, {n}, {init}, True) & {M32}")

    def op_table_fill(self, ins: ir.Instr) -> None:
        t = ins.imm[0]
        self.make_simple(0)
        n = self.val(self.pop())
        v = self.val(self.pop())
        i = self.val(self.pop())
        self._bulk_fuel(n)
        self.emit(f"_tfill(_t{t}, {i}, {v}, {n})")

    def op_table_copy(self, ins: ir.Instr) -> None:
        d_t, s_t = ins.imm
        self.make_simple(0)
        n = self.val(self.pop())
        s = self.val(self.pop())
        d = self.val(self.pop())
        self._bulk_fuel(n)
        self.emit(f"_tcopy(_t{d_t}, _r{s_t}, {d}, {s}, {n})")

    def op_table_init(self, ins: ir.Instr) -> None:
        e, t = ins.imm
        self.make_simple(0)
        n = self.val(self.pop())
        s = self.val(self.pop())
        d = self.val(self.pop())
        self._bulk_fuel(n)
        self.emit(f"_tinit(_t{t}, _I.elems[{e}], {d}, {s}, {n})")

    def op_elem_drop(self, ins: ir.Instr) -> None:
        self.emit(f"_I.elems[{ins.imm[0]}] = ()")

    # ------------------------------------------------------------ memory
    def _addr(self, offset: int, size: int) -> tuple[str, str]:
        """Pop an address; return (effective-address name, in-bounds condition)."""
        a = self.pop()
        if a.raw is not None:
            return "_a", _unmasked_addr(a.raw, a.mask, a.nonneg, offset, size)
        av = self.val(a)
        if offset == 0 and _SIMPLE.match(av):
            return av, f"{av} <= _ms{size}"
        if offset == 0:
            return "_a", f"(_a := {av}) <= _ms{size}"
        return "_a", f"(_a := {av} + {offset}) <= _ms{size}"

    _LOADS = {
        "i32.load": (4, "_u32(_md, {a})[0]"),
        "i64.load": (8, "_u64(_md, {a})[0]"),
        "f32.load": (4, "_ldf32(_md, {a})"),
        "f64.load": (8, "_f64u(_md, {a})[0]"),
        "i32.load8_s": (1, "(_i8(_md, {a})[0] & 4294967295)"),
        "i32.load8_u": (1, "_md[{a}]"),
        "i32.load16_s": (2, "(_i16(_md, {a})[0] & 4294967295)"),
        "i32.load16_u": (2, "_u16(_md, {a})[0]"),
        "i64.load8_s": (1, "(_i8(_md, {a})[0] & 18446744073709551615)"),
        "i64.load8_u": (1, "_md[{a}]"),
        "i64.load16_s": (2, "(_i16(_md, {a})[0] & 18446744073709551615)"),
        "i64.load16_u": (2, "_u16(_md, {a})[0]"),
        "i64.load32_s": (4, "(_i32(_md, {a})[0] & 18446744073709551615)"),
        "i64.load32_u": (4, "_u32(_md, {a})[0]"),
    }
    _STORES = {
        "i32.store": (4, "_pu32(_md, {a}, {v})"),
        "i64.store": (8, "_pu64(_md, {a}, {v})"),
        "f32.store": (4, "_pu32(_md, {a}, _f32bits({v}))"),
        "f64.store": (8, "_pf64(_md, {a}, {v})"),
        "i32.store8": (1, "_md[{a}] = {v} & 255"),
        "i32.store16": (2, "_pu16(_md, {a}, {v} & 65535)"),
        "i64.store8": (1, "_md[{a}] = {v} & 255"),
        "i64.store16": (2, "_pu16(_md, {a}, {v} & 65535)"),
        "i64.store32": (4, "_pu32(_md, {a}, {v} & 4294967295)"),
    }

    def load(self, ins: ir.Instr) -> None:
        size, tmpl = self._LOADS[ins.op]
        a, cond = self._addr(ins.imm[1], size)
        self.set_slot(len(self.stack), f"{tmpl.format(a=a)} if {cond} else _oob()")

    def store(self, ins: ir.Instr) -> None:
        size, tmpl = self._STORES[ins.op]
        v = self.val(self.pop())
        a, cond = self._addr(ins.imm[1], size)
        self.emit(f"if not ({cond}): _oob()")
        self.emit(tmpl.format(a=a, v=v))

    def op_memory_size(self, ins: ir.Instr) -> None:
        self.set_slot(len(self.stack), "_ms >> 16")

    def op_memory_grow(self, ins: ir.Instr) -> None:
        n = self.val(self.pop())
        self.set_slot(len(self.stack), f"_grow_memory(M0, {n}, True) & {M32}")
        self.reload_mem()

    def op_memory_fill(self, ins: ir.Instr) -> None:
        self.make_simple(0)
        n = self.val(self.pop())
        v = self.val(self.pop())
        d = self.val(self.pop())
        self._bulk_fuel(n)
        self.emit(f"_mfill(_md, _ms, {d}, {v}, {n})")

    def op_memory_copy(self, ins: ir.Instr) -> None:
        self.make_simple(0)
        n = self.val(self.pop())
        s = self.val(self.pop())
        d = self.val(self.pop())
        self._bulk_fuel(n)
        self.emit(f"_mcopy(_md, _ms, {d}, {s}, {n})")

    def op_memory_init(self, ins: ir.Instr) -> None:
        self.make_simple(0)
        n = self.val(self.pop())
        s = self.val(self.pop())
        d = self.val(self.pop())
        self._bulk_fuel(n)
        self.emit(f"_minit(_md, _ms, _I.datas[{ins.imm[0]}], {d}, {s}, {n})")

    def op_data_drop(self, ins: ir.Instr) -> None:
        self.emit(f"_I.datas[{ins.imm[0]}] = b''")

    # ------------------------------------------------------------ constants
    def op_i32_const(self, ins: ir.Instr) -> None:
        self.push(str(ins.imm[0] & M32))

    def op_i64_const(self, ins: ir.Instr) -> None:
        self.push(str(ins.imm[0] & M64))

    def op_f32_const(self, ins: ir.Instr) -> None:
        bits = ins.imm[0]
        self.push(_float_literal(f32_from_bits(bits), self.consts, "f32", bits))

    def op_f64_const(self, ins: ir.Instr) -> None:
        bits = ins.imm[0]
        self.push(_float_literal(f64_from_bits(bits), self.consts, "f64", bits))

    # ------------------------------------------------------------ numeric
    def wrapping(self, op: str) -> None:
        b = self.pop()
        a = self.pop()
        text, raw, nonneg = wrapping_text(op, a, b, self.val)
        mask = M32 if _WRAPPING[op][1] == 32 else M64
        depth = max(a.depth, b.depth) + 1
        self.push(text, a.refs | b.refs, depth=depth, raw=raw, mask=mask, nonneg=nonneg)

    def signed_compare(self, op: str) -> None:
        """``lt_s``/``gt_s``/``le_s``/``ge_s`` without flipping the sign bits of both sides
        (each ``^ 2**(w-1)`` builds a new int) when the operands are names or constants."""
        rel, w = _SIGNED_CMP[op]
        ent_b, ent_a = self.stack[-1], self.stack[-2]
        if not self.val(ent_a).isdigit() and not self.val(ent_b).isdigit():
            self.make_simple(1)
            self.make_simple(0)
        elif not self.val(ent_a).isdigit():
            self.make_simple(1)
        elif not self.val(ent_b).isdigit():
            self.make_simple(0)
        b = self.pop()
        a = self.pop()
        self.push(
            "",
            a.refs | b.refs,
            cond=signed_compare_text(rel, w, self.val(a), self.val(b)),
            depth=max(a.depth, b.depth) + 1,
        )

    def numeric(self, op: str) -> bool:
        spec = _NUMERIC.get(op)
        if spec is None:
            return False
        kind, tmpl = spec
        if kind == "trap1" or kind == "pure1" or kind == "cond1":
            a = self.pop()
            if op.endswith(".eqz") and a.cond is not None:
                self.push("", a.refs, cond=f"not ({a.cond})", depth=a.depth + 1)
                return True
            text = tmpl.format(a=self.val(a))
            if kind == "trap1":
                self.set_slot(len(self.stack), text)
            elif kind == "cond1":
                self.push("", a.refs, cond=text, depth=a.depth + 1)
            else:
                self.push(text, a.refs, depth=a.depth + 1)
            return True
        if op in _WRAPPING:
            self.wrapping(op)
            return True
        if op in _SIGNED_CMP:
            self.signed_compare(op)
            return True
        divisor = self.stack[-1].expr
        if kind == "trap2" and divisor.isdigit() and op.endswith("_s"):
            self.make_simple(1)  # the signed forms read the dividend twice
        b = self.pop()
        a = self.pop()
        refs = a.refs | b.refs
        depth = max(a.depth, b.depth) + 1
        if kind == "trap2" and divisor.isdigit():
            pure = const_divisor_text(op, self.val(a), int(divisor))
            if pure is not None:  # cannot trap: pending like any pure op
                self.push(pure, refs, depth=depth)
                return True
        mask = _AND_MASK.get(op)
        if mask is not None:  # ``(x & M) & c`` is ``x & c`` when ``c`` fits in ``M``
            if b.raw is not None and _fits(a.expr, mask):
                a, b = b, a
            if a.raw is not None and _fits(b.expr, mask):
                self.push(f"({a.raw} & {b.expr})", refs, depth=depth)
                return True
        text = tmpl.format(a=self.val(a), b=self.val(b))
        if kind == "trap2":
            self.set_slot(len(self.stack), text)
        elif kind == "cond2":
            self.push("", refs, cond=text, depth=depth)
        else:
            self.push(text, refs, depth=depth)
        return True


def wrapping_text(
    op: str, a: _Entry, b: _Entry, val: Callable[[_Entry], str]
) -> tuple[str, str, bool]:
    """(masked, unmasked, unmasked is never negative) text of integer ``op``
    (add/sub/mul/shl) on ``a``, ``b``.

    Arithmetic mod 2**w commutes with the mask, so add and sub read their
    operands' unmasked text when they have one: ``((x + y) & M) + z) & M`` is
    emitted as ``((x + y) + z) & M``. Only add/sub do (mul and shl read masked
    operands), so an unmasked value grows by at most a few bits per level.
    Adding a constant ``c >= 2**(w-1)`` (how clang writes ``x - k``) is emitted
    as ``x - (2**w - c)`` (and subtracting one as an addition): same value mod
    2**w, but the unmasked value stays near ``x`` (small ints are CPython's fast
    path, and ``_addr`` can use it unmasked).
    """
    sym, w = _WRAPPING[op]
    half = 1 << (w - 1)
    if sym in "+-":
        av = a.raw if a.raw is not None else val(a)
        bv = b.raw if b.raw is not None else val(b)
        nonneg = (a.raw is None or a.nonneg) and (b.raw is None or b.nonneg)
        if sym == "+" and av.isdigit() and int(av) >= half and not bv.isdigit():
            av, bv = bv, av
        if bv.isdigit() and int(bv) >= half:
            sym, bv = ("-" if sym == "+" else "+"), str((1 << w) - int(bv))
        nonneg = nonneg and sym == "+"
    else:
        av, bv = val(a), val(b)
        nonneg = True
    if sym == "<<":
        bv = str(int(bv) & (w - 1)) if bv.isdigit() else f"({bv} & {w - 1})"
    raw = f"({av} {sym} {bv})"
    if sym in "+-":
        # ``% 2**w`` equals ``& (2**w - 1)`` on every int; CPython returns a
        # dividend already below 2**w as it is, the common case of add/sub,
        # while ``&`` with a two-digit mask always builds a new int.
        return f"({raw} % {1 << w})", raw, nonneg
    return f"({raw} & {M32 if w == 32 else M64})", raw, nonneg


def _unmasked_addr(raw: str, mask: int, nonneg: bool, offset: int, size: int) -> str:
    """In-bounds condition binding ``_a`` for an address still pending as ``raw``.

    The memory size is at most ``mask + 1``, so a ``raw`` that is not negative
    and passes ``raw + offset + size <= _ms`` (``<= _ms<size>``) is below ``mask + 1``: it *is* the
    wrapped address, and the mask is skipped. Only when that test fails is the
    address wrapped (from ``_a``, which holds ``raw + offset`` then) and tested
    again: wrap-around or a trap, the slow path.
    """
    a = f"(_a := {raw} + {offset})" if offset else f"(_a := {raw})"
    fast = f"{a} <= _ms{size}" if nonneg else f"{a} >= {offset} and _a <= _ms{size}"
    wrapped = f"((_a - {offset}) & {mask}) + {offset}" if offset else f"_a & {mask}"
    return f"({fast} or (_a := {wrapped}) <= _ms{size})"


def const_divisor_text(op: str, a: str, c: int) -> str | None:
    """Text of integer div/rem ``op`` of ``a`` by the constant ``c`` when it cannot trap
    (``c`` nonzero; for the signed ops also below 2**(w-1), so never ``-1``), else None.

    Signed: a non-negative dividend divides as unsigned; a negative one as its
    magnitude, negated (wasm truncates toward zero; Python floors). A power of
    two divides by shifting and masking.
    """
    name = op.split(".")[1]
    w = 32 if op.startswith("i32") else 64
    half, full = 1 << (w - 1), 1 << w
    if c == 0 or (name.endswith("_s") and c >= half):
        return None
    k = c.bit_length() - 1
    pow2 = c == 1 << k
    if name == "div_u":
        return f"({a} >> {k})" if pow2 else f"({a} // {c})"
    if name == "rem_u":
        return f"({a} & {c - 1})" if pow2 else f"({a} % {c})"
    if name == "div_s":
        q = f"({a} >> {k})" if pow2 else f"({a} // {c})"
        return f"({q} if {a} < {half} else (-(({full} - {a}) // {c})) % {full})"
    r = f"({a} & {c - 1})" if pow2 else f"({a} % {c})"
    return f"({r} if {a} < {half} else (-(({full} - {a}) % {c})) % {full})"


def signed_compare_text(rel: str, w: int, x: str, y: str) -> str:
    """Condition text of ``x rel y`` on the signed readings of unsigned ``w``-bit
    ``x``, ``y`` (each a name or a decimal constant; a name may be read twice).

    Same sign bit: the unsigned order is the signed one; different sign bits:
    the operand with the bit set is the smaller. Against a constant ``c`` that is
    one or two range tests of ``x``, e.g. ``x <s c`` (``c >= 0``) is
    ``x < c or x >= 2**(w-1)``.
    """
    h = 1 << (w - 1)
    if x.isdigit() and y.isdigit():
        return f"({int(x) ^ h} {rel} {int(y) ^ h})"
    if x.isdigit():
        x, y, rel = y, x, _FLIP[rel]
    if not y.isdigit():
        return f"(({x} {rel} {y}) if ({x} ^ {y}) < {h} else ({y} {rel} {x}))"
    c = int(y)
    if rel[0] == "<":
        return f"({x} {rel} {c} or {x} >= {h})" if c < h else f"({h} <= {x} {rel} {c})"
    return f"({c} {_FLIP[rel]} {x} < {h})" if c < h else f"({x} {rel} {c} or {x} < {h})"


#: ``a rel b`` is ``b flip(rel) a``.
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
#: Signed comparisons: op -> (Python relation, bit width).
_SIGNED_CMP = {
    f"i{w}.{name}_s": (rel, w)
    for w in (32, 64)
    for name, rel in (("lt", "<"), ("gt", ">"), ("le", "<="), ("ge", ">="))
}


def _fits(text: str, mask: int) -> bool:
    return text.isdigit() and int(text) <= mask


#: Integer ops whose result is wrapped by a mask: op -> (Python operator, bit width).
_WRAPPING = {
    f"i{w}.{name}": (sym, w)
    for w in (32, 64)
    for name, sym in (("add", "+"), ("sub", "-"), ("mul", "*"), ("shl", "<<"))
}
#: ``and`` ops and their width's mask.
_AND_MASK = {"i32.and": M32, "i64.and": M64}


def _numeric_table() -> dict[str, tuple[str, str]]:
    t: dict[str, tuple[str, str]] = {}
    for w, m, h in ((32, M32, 1 << 31), (64, M64, 1 << 63)):
        p = f"i{w}"
        t[f"{p}.add"] = ("pure2", f"(({{a}} + {{b}}) & {m})")
        t[f"{p}.sub"] = ("pure2", f"(({{a}} - {{b}}) & {m})")
        t[f"{p}.mul"] = ("pure2", f"(({{a}} * {{b}}) & {m})")
        t[f"{p}.and"] = ("pure2", "({a} & {b})")
        t[f"{p}.or"] = ("pure2", "({a} | {b})")
        t[f"{p}.xor"] = ("pure2", "({a} ^ {b})")
        t[f"{p}.shl"] = ("pure2", f"(({{a}} << ({{b}} & {w - 1})) & {m})")
        t[f"{p}.shr_u"] = ("pure2", f"({{a}} >> ({{b}} & {w - 1}))")
        t[f"{p}.shr_s"] = ("pure2", f"(((({{a}} ^ {h}) - {h}) >> ({{b}} & {w - 1})) & {m})")
        t[f"{p}.rotl"] = ("pure2", f"_rotl{w}({{a}}, {{b}})")
        t[f"{p}.rotr"] = ("pure2", f"_rotr{w}({{a}}, {{b}})")
        t[f"{p}.div_s"] = ("trap2", f"_div_s{w}({{a}}, {{b}})")
        t[f"{p}.rem_s"] = ("trap2", f"_rem_s{w}({{a}}, {{b}})")
        t[f"{p}.div_u"] = ("trap2", "_divu({a}, {b})")
        t[f"{p}.rem_u"] = ("trap2", "_remu({a}, {b})")
        t[f"{p}.eq"] = ("cond2", "{a} == {b}")
        t[f"{p}.ne"] = ("cond2", "{a} != {b}")
        t[f"{p}.lt_u"] = ("cond2", "{a} < {b}")
        t[f"{p}.gt_u"] = ("cond2", "{a} > {b}")
        t[f"{p}.le_u"] = ("cond2", "{a} <= {b}")
        t[f"{p}.ge_u"] = ("cond2", "{a} >= {b}")
        for n, o in (("lt", "<"), ("gt", ">"), ("le", "<="), ("ge", ">=")):
            t[f"{p}.{n}_s"] = ("cond2", f"({{a}} ^ {h}) {o} ({{b}} ^ {h})")
        t[f"{p}.eqz"] = ("cond1", "{a} == 0")
        t[f"{p}.clz"] = ("pure1", f"({w} - ({{a}}).bit_length())")
        t[f"{p}.ctz"] = ("pure1", f"_ctz{w}({{a}})")
        t[f"{p}.popcnt"] = ("pure1", "({a}).bit_count()")
        t[f"{p}.extend8_s"] = ("pure1", f"(((({{a}} & 255) ^ 128) - 128) & {m})")
        t[f"{p}.extend16_s"] = ("pure1", f"(((({{a}} & 65535) ^ 32768) - 32768) & {m})")
    t["i64.extend32_s"] = ("pure1", f"(((({{a}} & {M32}) ^ 2147483648) - 2147483648) & {M64})")
    for p in ("f32", "f64"):
        r = "_f32r" if p == "f32" else ""
        t[f"{p}.add"] = ("pure2", f"{r}(({{a}} + {{b}}))")
        t[f"{p}.sub"] = ("pure2", f"{r}(({{a}} - {{b}}))")
        t[f"{p}.mul"] = ("pure2", f"{r}(({{a}} * {{b}}))")
        t[f"{p}.div"] = ("pure2", f"{r}(_fdiv({{a}}, {{b}}))")
        t[f"{p}.min"] = ("pure2", "_fmin({a}, {b})")
        t[f"{p}.max"] = ("pure2", "_fmax({a}, {b})")
        t[f"{p}.copysign"] = ("pure2", "_copysign({a}, {b})")
        t[f"{p}.abs"] = ("pure1", "abs({a})")
        t[f"{p}.neg"] = ("pure1", "(-{a})")
        t[f"{p}.ceil"] = ("pure1", "_fceil({a})")
        t[f"{p}.floor"] = ("pure1", "_ffloor({a})")
        t[f"{p}.trunc"] = ("pure1", "_ftrunc({a})")
        t[f"{p}.nearest"] = ("pure1", "_fnearest({a})")
        t[f"{p}.sqrt"] = ("pure1", f"{r}(_fsqrt({{a}}))")
        for n, o in (
            ("eq", "=="),
            ("ne", "!="),
            ("lt", "<"),
            ("gt", ">"),
            ("le", "<="),
            ("ge", ">="),
        ):
            t[f"{p}.{n}"] = ("cond2", f"{{a}} {o} {{b}}")
    s32 = "(({a} ^ 2147483648) - 2147483648)"
    s64 = "(({a} ^ 9223372036854775808) - 9223372036854775808)"
    t["i32.wrap_i64"] = ("pure1", f"({{a}} & {M32})")
    t["i64.extend_i32_s"] = ("pure1", f"({s32} & {M64})")
    t["i64.extend_i32_u"] = ("pure1", "{a}")
    for src in ("f32", "f64"):
        for sg in ("s", "u"):
            t[f"i32.trunc_{src}_{sg}"] = ("trap1", f"_trunc_{sg}32({{a}})")
            t[f"i64.trunc_{src}_{sg}"] = ("trap1", f"_trunc_{sg}64({{a}})")
            t[f"i32.trunc_sat_{src}_{sg}"] = ("pure1", f"_tsat_{sg}32({{a}})")
            t[f"i64.trunc_sat_{src}_{sg}"] = ("pure1", f"_tsat_{sg}64({{a}})")
    t["f32.convert_i32_s"] = ("pure1", f"_f32r(float({s32}))")
    t["f32.convert_i32_u"] = ("pure1", "_f32r(float({a}))")
    t["f32.convert_i64_s"] = ("pure1", f"_i2f32({s64})")
    t["f32.convert_i64_u"] = ("pure1", "_i2f32({a})")
    t["f32.demote_f64"] = ("pure1", "_f32r({a})")
    t["f64.convert_i32_s"] = ("pure1", f"float({s32})")
    t["f64.convert_i32_u"] = ("pure1", "float({a})")
    t["f64.convert_i64_s"] = ("pure1", f"float({s64})")
    t["f64.convert_i64_u"] = ("pure1", "float({a})")
    t["f64.promote_f32"] = ("pure1", "_promote({a})")
    t["i32.reinterpret_f32"] = ("pure1", "_f32bits({a})")
    t["i64.reinterpret_f64"] = ("pure1", "_f64bits({a})")
    t["f32.reinterpret_i32"] = ("pure1", "_f32from({a})")
    t["f64.reinterpret_i64"] = ("pure1", "_f64from({a})")
    return t


_NUMERIC = _numeric_table()


def _install_numeric() -> None:
    for name in _NUMERIC:
        attr = "op_" + name.replace(".", "_")

        def h(self: FunctionCompiler, ins: ir.Instr, _n: str = name) -> None:
            self.numeric(_n)

        setattr(FunctionCompiler, attr, h)
    for name in FunctionCompiler._LOADS:
        setattr(FunctionCompiler, "op_" + name.replace(".", "_"), FunctionCompiler.load)
    for name in FunctionCompiler._STORES:
        setattr(FunctionCompiler, "op_" + name.replace(".", "_"), FunctionCompiler.store)
    for name in SIMD_OPS:
        setattr(FunctionCompiler, "op_" + name.replace(".", "_"), FunctionCompiler.simd)
    for name in SIMD_MEMORY_OPS:
        setattr(FunctionCompiler, "op_" + name.replace(".", "_"), FunctionCompiler.simd_memory)


_install_numeric()

#: Instruction name -> its ``FunctionCompiler`` handler (one dict lookup per instruction).
_HANDLERS: dict[str, Callable[[FunctionCompiler, ir.Instr], None]] = {
    name: getattr(FunctionCompiler, "op_" + name.replace(".", "_"))
    for name in BY_NAME
    if hasattr(FunctionCompiler, "op_" + name.replace(".", "_"))
}
#: Loads and stores -> the bytes they access (bounds-checked against ``_ms<bytes>``).
_ACCESS_SIZE: dict[str, int] = {
    **{op: size for op, (size, _) in FunctionCompiler._LOADS.items()},
    **{op: size for op, (size, _) in FunctionCompiler._STORES.items()},
    **SIMD_MEMORY_SIZES,
}
#: Instructions that read or write linear memory (the function caches ``_md``/``_ms``).
_MEMORY_OPS = frozenset(
    name
    for name, info in BY_NAME.items()
    if info.imm in ("memarg", "memarg_lane", "mem", "mem2", "memory_init")
)


class ContentKey:
    """A tuple key whose hash is computed once (bodies can be long); ``weight`` is the
    number of instructions it holds on to."""

    __slots__ = ("_hash", "parts", "weight")

    def __init__(self, parts: tuple[object, ...], weight: int) -> None:
        self.parts = parts
        self.weight = weight
        self._hash = hash(parts)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ContentKey)
            and self._hash == other._hash
            and self.parts == other.parts
        )


@dataclass(frozen=True, slots=True)
class FunctionSource:
    """The generated source of one defined function, the namespace constants it reads,
    and its line map entry (``linemap.LineMap.add``): lines before the body and the
    wasm instruction of each body line."""

    text: str
    consts: dict[str, str]
    lines_before_body: int
    line_instrs: tuple[int, ...]


class ModuleCodegen:
    """Generates defined functions' sources for one option variant, one function at a time.

    Module-wide facts are computed once here (linear in the module); each
    ``function_source`` call costs time linear in that function's body.
    """

    def __init__(self, module: ir.Module, *, fuel: bool, epoch: bool) -> None:
        self.module = module
        self.fuel = fuel
        self.epoch = epoch
        self.n_imported_funcs = len(module.imported("func"))
        self.func_types = [module.types[t] for t in module.all_func_type_idxs()]
        self.force_flat = FORCE_FLAT
        self.global_types = module.all_globals()
        self._context: str | None = None

    @property
    def context(self) -> str:
        """Digest of everything besides a function's own body that its source depends on."""
        if self._context is None:
            facts = (
                self.fuel,
                self.epoch,
                self.force_flat,
                self.n_imported_funcs,
                self.module.types,
                self.module.all_func_type_idxs(),
                [g.mutable for g in self.global_types],
            )
            self._context = hashlib.sha256(repr(facts).encode()).hexdigest()
        return self._context

    def function_key(self, i: int) -> ContentKey | None:
        """Content key of defined function ``i``'s source (None if its body is not hashable)."""
        func = self.module.funcs[i]
        try:
            body = tuple(func.body)
            return ContentKey((self.context, func.type_idx, tuple(func.locals), body), len(body))
        except TypeError:
            return None

    def function_source(self, i: int) -> FunctionSource:
        """Source of defined function ``i`` (``def f<funcidx>(...)``), generated now."""
        func = self.module.funcs[i]
        fc = FunctionCompiler(
            self, self.n_imported_funcs + i, func, self.module.types[func.type_idx]
        )
        text = "\n".join(fc.compile())
        return FunctionSource(text, fc.consts, fc.lines_before_body, tuple(fc.line_instrs))

    def generate(self) -> list[FunctionSource]:
        """Every defined function's source, in order."""
        return [self.function_source(i) for i in range(len(self.module.funcs))]
