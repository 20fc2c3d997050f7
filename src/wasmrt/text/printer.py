"""``wasmrt.ir.Module`` -> WAT text.

Invariants:
- The output is accepted by ``parse_wat`` and by ``wasm-tools parse``, and
  ``parse_wat(print_module(m)) == m`` whenever ``m`` is in the parser's
  normal form: local runs merged, ``data_count`` set exactly when a body
  uses ``memory.init``/``data.drop``, every function body and constant
  expression ending with its ``end``, and names (if any) valid, unique
  ``$id``s. Names that are not are dropped from the output.
- Indices are printed numerically; floats as exact hex literals (``nan:0x``
  payloads kept), v128 constants as four unsigned i32 lanes.
- ``folded=True`` prints every instruction parenthesised and blocks nested
  (``(if (then ...) (else ...))``); operands stay flat, in stack order.
- The output is linear in the module: indentation stops growing at
  ``MAX_INDENT`` levels (wasmprinter's ``MAX_NESTING_TO_PRINT``), and the
  closing parentheses of a run of ``end``s are added to their line at once.
"""

from __future__ import annotations

import re

from wasmrt import ir
from wasmrt.opcodes import BY_NAME
from wasmrt.text.numbers import format_float

__all__ = ["print_expr", "print_module"]

_ID_RE = re.compile(r"[0-9A-Za-z!#$%&'*+\-./:<=>?@\\^_`|~]+")
_BLOCKS = ("block", "loop", "if")
#: Deepest indentation printed (levels of two spaces); deeper lines print at it.
MAX_INDENT = 50


def _pad(level: int) -> str:
    return "  " * min(level, MAX_INDENT)


def _string(data: bytes) -> str:
    out = ['"']
    for b in data:
        if 0x20 <= b < 0x7F and b not in (0x22, 0x5C):
            out.append(chr(b))
        else:
            out.append(f"\\{b:02x}")
    out.append('"')
    return "".join(out)


def _name_str(name: str) -> str:
    return _string(name.encode("utf-8", "surrogatepass"))


def _valid_ids(names: dict[int, str]) -> dict[int, str]:
    seen: set[str] = set()
    out: dict[int, str] = {}
    for k, v in names.items():
        if _ID_RE.fullmatch(v) and v not in seen:
            seen.add(v)
            out[k] = "$" + v
    return out


def _blocktype(bt: ir.BlockType) -> str:
    if bt is None:
        return ""
    if isinstance(bt, str):
        return f" (result {bt})"
    return f" (type {bt})"


def _v128(data: bytes) -> str:
    lanes = [int.from_bytes(data[k : k + 4], "little") for k in range(0, 16, 4)]
    return "i32x4 " + " ".join(f"0x{v:08x}" for v in lanes)


def _instr_text(ins: ir.Instr) -> str:
    """One instruction with its immediates (blocks: the opening line only)."""
    op = ins.op
    imm = ins.imm
    if op in _BLOCKS:
        return op + _blocktype(imm[0])
    if op == "select_t":
        return "select (result" + "".join(" " + t for t in imm[0]) + ")"
    info = BY_NAME.get(op)
    if info is None:
        raise ValueError(f"cannot print unknown instruction {op!r}")
    kind = info.imm
    if kind in ("none", "mem", "mem2"):
        return op
    if kind in ("label", "func", "local", "global", "table", "data", "memory_init", "elem", "lane"):
        return f"{op} {imm[0]}"
    if kind in ("i32", "i64"):
        return f"{op} {imm[0]}"
    if kind == "f32":
        return f"{op} {format_float(imm[0], 32)}"
    if kind == "f64":
        return f"{op} {format_float(imm[0], 64)}"
    if kind == "br_table":
        return " ".join([op, *map(str, imm[0]), str(imm[1])])
    if kind == "call_indirect":
        return f"{op} {imm[1]} (type {imm[0]})"
    if kind in ("memarg", "memarg_lane"):
        parts = [op]
        if imm[1]:
            parts.append(f"offset={imm[1]}")
        if imm[0] != info.align:
            parts.append(f"align={1 << imm[0]}")
        if kind == "memarg_lane":
            parts.append(str(imm[2]))
        return " ".join(parts)
    if kind == "reftype":
        return f"{op} {'func' if imm[0] == 'funcref' else 'extern'}"
    if kind == "table_init":
        return f"{op} {imm[1]} {imm[0]}"
    if kind == "table_copy":
        return f"{op} {imm[0]} {imm[1]}"
    if kind == "v128":
        return f"{op} {_v128(imm[0])}"
    if kind == "shuffle":
        return op + "".join(f" {b}" for b in imm[0])
    raise ValueError(f"cannot print immediate kind {kind!r}")  # pragma: no cover


def _strip_end(expr: ir.Expr) -> ir.Expr:
    return expr[:-1] if expr and expr[-1].op == "end" else expr


def _flat(expr: ir.Expr, indent: int, out: list[str]) -> None:
    depth = indent
    for ins in expr:
        if ins.op in ("end", "else"):
            depth -= 1
            out.append(_pad(depth) + ins.op)
            if ins.op == "else":
                depth += 1
            continue
        out.append(_pad(depth) + _instr_text(ins))
        if ins.op in _BLOCKS:
            depth += 1


def _close(out: list[str], owed: int) -> None:
    """Add ``owed`` closing parentheses to the last line (one string copy for a run)."""
    if owed:
        out[-1] += ")" * owed


def _folded(expr: ir.Expr, indent: int, out: list[str]) -> None:
    stack: list[str] = []
    owed = 0  # closing parentheses the last line of ``out`` still needs
    for ins in expr:
        if ins.op == "end":
            if not stack:
                raise ValueError("unbalanced end")
            if stack[-1] in ("then", "else"):
                stack.pop()
                owed += 1
            stack.pop()
            owed += 1
            continue
        if ins.op == "else":
            if not stack or stack[-1] != "then":
                raise ValueError("else outside of if")
            _close(out, owed + 1)
            owed = 0
            out.append(_pad(indent + len(stack) - 1) + "(else")
            stack[-1] = "else"
            continue
        _close(out, owed)
        owed = 0
        if ins.op in _BLOCKS:
            out.append(_pad(indent + len(stack)) + "(" + _instr_text(ins))
            stack.append(ins.op)
            if ins.op == "if":
                out.append(_pad(indent + len(stack)) + "(then")
                stack.append("then")
        else:
            out.append(_pad(indent + len(stack)) + "(" + _instr_text(ins) + ")")
    _close(out, owed)
    if stack:
        raise ValueError("unterminated block")


def print_expr(expr: ir.Expr, indent: int = 0, folded: bool = False) -> list[str]:
    """Lines for an expression (its final ``end`` is implied, not printed)."""
    out: list[str] = []
    (_folded if folded else _flat)(_strip_end(expr), indent, out)
    return out


def _inline_expr(expr: ir.Expr, folded: bool) -> str:
    return " ".join(s.strip() for s in print_expr(expr, 0, folded))


def _limits(lim: ir.Limits) -> str:
    return f"{lim.min}" if lim.max is None else f"{lim.min} {lim.max}"


def _global_type(gt: ir.GlobalType) -> str:
    return f"(mut {gt.valtype})" if gt.mutable else gt.valtype


def _sig(ft: ir.FuncType, pnames: dict[int, str] | None = None) -> str:
    parts = []
    if pnames:
        for k, t in enumerate(ft.params):
            parts.append(f"(param {pnames[k]} {t})" if k in pnames else f"(param {t})")
    elif ft.params:
        parts.append("(param " + " ".join(ft.params) + ")")
    if ft.results:
        parts.append("(result " + " ".join(ft.results) + ")")
    return " ".join(parts)


def print_module(m: ir.Module, folded: bool = False) -> str:
    """WAT text for ``m`` (see the module docstring for the round-trip contract)."""
    names = m.names
    fnames = _valid_ids(names.functions) if names else {}
    lines: list[str] = []
    head = "(module"
    if names and names.module is not None and _ID_RE.fullmatch(names.module):
        head += " $" + names.module
    lines.append(head)
    for k, ft in enumerate(m.types):
        sig = _sig(ft)
        lines.append(f"  (type (;{k};) (func{' ' + sig if sig else ''}))")
    counts = {"func": 0, "table": 0, "memory": 0, "global": 0}
    for imp in m.imports:
        idx = counts[imp.kind]
        counts[imp.kind] += 1
        desc: str
        if imp.kind == "func":
            fid = fnames.get(idx)
            desc = f"(func{' ' + fid if fid else ''} (type {imp.desc}))"
        elif imp.kind == "table":
            assert isinstance(imp.desc, ir.TableType)
            desc = f"(table {_limits(imp.desc.limits)} {imp.desc.elem})"
        elif imp.kind == "memory":
            assert isinstance(imp.desc, ir.MemoryType)
            desc = f"(memory {_limits(imp.desc.limits)})"
        else:
            assert isinstance(imp.desc, ir.GlobalType)
            desc = f"(global {_global_type(imp.desc)})"
        lines.append(f"  (import {_name_str(imp.module)} {_name_str(imp.name)} {desc})")
    nimp = counts["func"]
    for k, fn in enumerate(m.funcs):
        fidx = nimp + k
        header = "  (func"
        if fidx in fnames:
            header += " " + fnames[fidx]
        header += f" (type {fn.type_idx})"
        lnames = _valid_ids(names.locals.get(fidx, {})) if names else {}
        nparams = 0
        if fn.type_idx < len(m.types):
            ft = m.types[fn.type_idx]
            nparams = len(ft.params)
            sig = _sig(ft, {i: n for i, n in lnames.items() if i < nparams})
            if sig:
                header += " " + sig
        elif lnames:
            lnames = {}
        idx = nparams
        for count, t in fn.locals:
            for _ in range(count):
                if idx in lnames:
                    header += f" (local {lnames[idx]} {t})"
                else:
                    header += f" (local {t})"
                idx += 1
        lines.append(header)
        lines.extend(print_expr(fn.body, 2, folded))
        lines[-1] += ")"
    for tt in m.tables:
        lines.append(f"  (table {_limits(tt.limits)} {tt.elem})")
    for mt in m.mems:
        lines.append(f"  (memory {_limits(mt.limits)})")
    for g in m.globals:
        lines.append(f"  (global {_global_type(g.type)} {_inline_expr(g.init, folded)})")
    for e in m.exports:
        lines.append(f"  (export {_name_str(e.name)} ({e.kind} {e.index}))")
    if m.start is not None:
        lines.append(f"  (start {m.start})")
    for el in m.elems:
        items = " ".join(f"(item {_inline_expr(x, folded)})" for x in el.init)
        if el.mode == "active":
            assert el.offset is not None
            prefix = f"(table {el.table}) (offset {_inline_expr(el.offset, folded)}) "
        elif el.mode == "declarative":
            prefix = "declare "
        else:
            prefix = ""
        lines.append(f"  (elem {prefix}{el.reftype}{' ' + items if items else ''})")
    for d in m.datas:
        if d.mode == "active":
            assert d.offset is not None
            prefix = f"(memory {d.memory}) (offset {_inline_expr(d.offset, folded)}) "
        else:
            prefix = ""
        lines.append(f"  (data {prefix}{_string(d.init)})")
    lines[-1] += ")"
    return "\n".join(lines) + "\n"
