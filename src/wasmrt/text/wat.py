"""WAT (text module) -> ``wasmrt.ir.Module``.

Invariants:
- The result is the IR the binary decoder would produce for the module
  ``wasm-tools parse`` writes: index spaces count imports first; inline
  imports/exports/elem/data are desugared in place (so exports, element and
  data segments keep their order of appearance); implicit function types are
  appended after all explicit ``(type ...)`` definitions in order of first
  use (function and import type uses, then block types and
  ``call_indirect`` inside each body, field by field), reusing the first
  equal type; runs of equal local types are merged; ``data_count`` is set
  exactly when a body uses ``memory.init`` or ``data.drop``.
- ``$id`` names are resolved here (unknown or duplicate ids, label
  mismatches, malformed tokens and out-of-range constants raise
  ``WatParseError``); numeric indices are not range-checked -- typing and
  index bounds are left to ``wasmrt.validate``.
- Function, local and module names go to ``Module.names`` (``None`` when
  the module names nothing).
- Parsing asks ``try_alloc`` once per module, for the text's size
  (``AllocKind.TEXT``).
- Nothing recurses on the input's nesting: instructions (flat and folded)
  are parsed by ``_run`` over an explicit frame stack, ``module quote`` is
  unwrapped in a loop (at most ``MAX_QUOTE_DEPTH`` levels). Each module
  field's nodes are released once the field is parsed, and label and type
  lookups are O(1), so time and memory stay linear in the text.
"""

from __future__ import annotations

from typing import Any, Literal

from wasmrt import ir
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.binary import decode_module, encode_module
from wasmrt.errors import WatParseError
from wasmrt.opcodes import BY_NAME
from wasmrt.text.lexer import STRING, WORD, Atom, Node, SList, Source, read_sexprs
from wasmrt.text.numbers import parse_float, parse_int, parse_uint

__all__ = ["module_from_node", "module_from_fields", "parse_wat", "wat2wasm"]

_VALTYPES = frozenset(ir.VALTYPES)
_REFTYPES = {"funcref": "funcref", "externref": "externref"}
_HEAPTYPES = {"func": "funcref", "extern": "externref"}
_SPACE_NAMES = {
    "func": "function",
    "table": "table",
    "memory": "memory",
    "global": "global",
    "elem": "elem segment",
    "data": "data segment",
    "type": "type",
}
_SIMD_SHAPES = {
    "i8x16": (16, 8, False),
    "i16x8": (8, 16, False),
    "i32x4": (4, 32, False),
    "i64x2": (2, 64, False),
    "f32x4": (4, 32, True),
    "f64x2": (2, 64, True),
}
_BLOCK_OPS = frozenset(("block", "loop", "if"))
#: ``(module quote ...)`` levels accepted inside one another (each re-reads its text).
MAX_QUOTE_DEPTH = 32
# Tags of the instruction parser's frames (``_ModuleParser._run``): a sequence
# of instructions; a flat block's body; a folded block awaiting its end; a
# folded ``if`` reading conditions; a folded ``if`` in a ``then``/``else``
# body; a folded plain instruction reading its operands.
_SEQ, _FLAT, _F_END, _F_COND, _F_BODY, _F_OPS = range(6)
_CONST_BITS = {"i32": 32, "i64": 64}


class _Space:
    __slots__ = ("count", "ids", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ids: dict[str, int] = {}
        self.count = 0

    def add(self, ident: Atom | None) -> int:
        idx = self.count
        if ident is not None:
            if ident.text in self.ids:
                raise ident.error(f"duplicate {self.kind}")
            self.ids[ident.text] = idx
        self.count += 1
        return idx


def _is_id(node: Node | None) -> bool:
    return isinstance(node, Atom) and node.kind == WORD and node.text.startswith("$")


def _kw(node: Node | None, word: str | None = None) -> bool:
    """Is ``node`` a keyword atom (equal to ``word`` when given)?"""
    if not isinstance(node, Atom) or node.kind != WORD:
        return False
    return node.text == word if word is not None else True


def _head(node: Node | None) -> str | None:
    return node.head() if isinstance(node, SList) else None


def _unexpected(node: Node | None, parent: SList, what: str = "") -> WatParseError:
    suffix = f", expected {what}" if what else ""
    if node is None:
        return parent.src.error(f"unexpected end{suffix}", parent.end - 1)
    if isinstance(node, Atom):
        return node.error(f"unexpected token {node.text!r}{suffix}")
    return node.error(f"unexpected token{suffix}")


def _u32(atom: Node | None, parent: SList, what: str = "a u32") -> int:
    if not isinstance(atom, Atom) or atom.kind != WORD:
        raise _unexpected(atom, parent, what)
    try:
        value = parse_uint(atom.text, 32)
    except ValueError as e:
        raise atom.error(str(e)) from None
    if value is None:
        raise atom.error(f"unexpected token {atom.text!r}, expected {what}")
    return value


def _name(atom: Node | None, parent: SList) -> str:
    if not isinstance(atom, Atom) or atom.kind != STRING:
        raise _unexpected(atom, parent, "a name string")
    try:
        return atom.string_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise atom.error("malformed UTF-8 encoding") from None


class _Func:
    """Per-body state: locals, the label stack and the output list.

    ``label_at`` maps each label name in scope to the stack positions where it
    is bound (innermost last), so resolving ``br $l`` costs O(1) at any depth.
    """

    __slots__ = ("label_at", "labels", "local_ids", "out")

    def __init__(self, local_ids: dict[str, int]) -> None:
        self.local_ids = local_ids
        self.labels: list[str | None] = []
        self.label_at: dict[str, list[int]] = {}
        self.out: list[ir.Instr] = []

    def push_label(self, label: str | None) -> None:
        if label is not None:
            self.label_at.setdefault(label, []).append(len(self.labels))
        self.labels.append(label)

    def pop_label(self) -> None:
        label = self.labels.pop()
        if label is not None:
            self.label_at[label].pop()


class _ModuleParser:
    def __init__(self, name: str | None) -> None:
        self.m = ir.Module()
        self.module_name = name
        self.type_ids: dict[str, int] = {}
        self.spaces = {k: _Space(k) for k in ("func", "table", "memory", "global", "elem", "data")}
        self.func_names: dict[int, str] = {}
        self.local_names: dict[int, dict[int, str]] = {}
        self.uses_data_count = False
        self._next = dict.fromkeys(self.spaces, 0)
        self.n_explicit_types = 0
        #: First index of each function type in ``m.types`` (reuse in O(1)).
        self.type_first: dict[ir.FuncType, int] = {}

    # ------------------------------------------------------------ pass 1

    def run(self, fields: list[Node], parent: SList) -> ir.Module:
        try_alloc(max(parent.end - parent.pos, 0), AllocKind.TEXT)
        kinds: list[str] = []
        first_def: str | None = None
        for f in fields:
            h = _head(f)
            if h is None or not isinstance(f, SList):
                raise _unexpected(f, parent, "a module field")
            kinds.append(h)
            if h == "type":
                self._type_def(f)
            elif h == "import":
                if first_def is not None:
                    raise f.error(f"import after {first_def}")
                desc = f.child(3)
                dk = _head(desc)
                if dk not in ("func", "table", "memory", "global") or not isinstance(desc, SList):
                    raise _unexpected(desc, f, "an import description")
                self.spaces[dk].add(desc.items[1] if _is_id(_at(desc, 1)) else None)  # type: ignore[arg-type]
            elif h in ("func", "table", "memory", "global"):
                rest = f.iter_items(1)
                nxt = next(rest, None)
                ident = nxt if _is_id(nxt) else None
                if ident is not None:
                    nxt = next(rest, None)
                while _head(nxt) == "export":
                    nxt = next(rest, None)
                if _head(nxt) == "import":
                    if first_def is not None:
                        raise f.error(f"import after {first_def}")
                elif first_def is None:
                    first_def = _SPACE_NAMES[h]
                self.spaces[h].add(ident)  # type: ignore[arg-type]
                if h == "table" and _head(f.items[-1]) == "elem":
                    self.spaces["elem"].add(None)
                elif h == "memory" and _head(f.items[-1]) == "data":
                    self.spaces["data"].add(None)
            elif h in ("elem", "data"):
                ident = f.child(1)
                self.spaces[h].add(ident if _is_id(ident) else None)  # type: ignore[arg-type]
            elif h not in ("export", "start"):
                raise f.items[0].error(f"unknown operator {h}, expected a module field")
            f.release()  # one field's nodes alive at a time (rebuilt in pass 2)
        self.n_explicit_types = len(self.m.types)
        # pass 2
        m = self.m
        for f, h in zip(fields, kinds, strict=True):
            assert isinstance(f, SList)
            if h == "import":
                self._import(f)
            elif h == "func":
                self._func(f)
            elif h == "table":
                self._table(f)
            elif h == "memory":
                self._memory(f)
            elif h == "global":
                self._global(f)
            elif h == "export":
                self._export(f)
            elif h == "start":
                if m.start is not None:
                    raise f.error("multiple start sections")
                m.start = self._index(_at(f, 1), "func", f)
                if len(f.items) > 2:
                    raise _unexpected(f.items[2], f)
            elif h == "elem":
                self._elem(f)
            elif h == "data":
                self._data(f)
            f.release()
        if self.uses_data_count:
            m.data_count = len(m.datas)
        if self.module_name is not None or self.func_names or self.local_names:
            m.names = ir.NameMap(self.module_name, self.func_names, self.local_names)
        return m

    # ------------------------------------------------------------ types

    def _type_def(self, f: SList) -> None:
        i = 1
        ident = f.items[1] if _is_id(_at(f, 1)) else None
        if ident is not None:
            i = 2
        fn = _at(f, i)
        if _head(fn) != "func" or not isinstance(fn, SList):
            raise _unexpected(fn, f, "(func ...)")
        if len(f.items) > i + 1:
            raise _unexpected(f.items[i + 1], f)
        params, results, j = self._sig(fn, 1, allow_names=True)
        if j < len(fn.items):
            raise _unexpected(fn.items[j], fn)
        if ident is not None:
            assert isinstance(ident, Atom)
            if ident.text in self.type_ids:
                raise ident.error("duplicate type")
            self.type_ids[ident.text] = len(self.m.types)
        ft = ir.FuncType(tuple(params), tuple(results))
        self.type_first.setdefault(ft, len(self.m.types))
        self.m.types.append(ft)

    def _valtype(self, node: Node | None, parent: SList) -> str:
        if isinstance(node, Atom) and node.kind == WORD and node.text in _VALTYPES:
            return node.text
        raise _unexpected(node, parent, "a value type")

    def _sig(
        self,
        items_of: SList,
        i: int,
        allow_names: bool,
        names: list[str | None] | None = None,
    ) -> tuple[list[str], list[str], int]:
        """``(param ...)* (result ...)*`` starting at ``items_of.items[i]``."""
        params: list[str] = []
        results: list[str] = []
        items = items_of.items
        n = len(items)
        while i < n and _head(items[i]) == "param":
            p = items[i]
            assert isinstance(p, SList)
            if _is_id(_at(p, 1)):
                if not allow_names:
                    raise p.items[1].error("unexpected token: named parameter")
                if len(p.items) != 3:
                    raise _unexpected(_at(p, 3), p, "one value type")
                params.append(self._valtype(p.items[2], p))
                if names is not None:
                    names.append(p.items[1].text)  # type: ignore[union-attr]
            else:
                for t in p.items[1:]:
                    params.append(self._valtype(t, p))
                    if names is not None:
                        names.append(None)
            i += 1
        while i < n and _head(items[i]) == "result":
            r = items[i]
            assert isinstance(r, SList)
            for t in r.items[1:]:
                results.append(self._valtype(t, r))
            i += 1
        return params, results, i

    def _type_use(
        self,
        parent: SList,
        i: int,
        allow_names: bool = True,
        names: list[str | None] | None = None,
        block: bool = False,
    ) -> tuple[int | None, ir.FuncType, int]:
        """Resolve a type use; returns (type index or None for a block shorthand, type, next i).

        For a block type without ``(type x)``, no params and at most one
        result, the index is None and no type is added.
        """
        items = parent.items
        idx: int | None = None
        node = _at(parent, i)
        if _head(node) == "type":
            assert isinstance(node, SList)
            idx = self._index(_at(node, 1), "type", node)
            if len(node.items) > 2:
                raise _unexpected(node.items[2], node)
            i += 1
        start = i
        params, results, i = self._sig(parent, i, allow_names, names)
        ft = ir.FuncType(tuple(params), tuple(results))
        types = self.m.types
        if idx is not None:
            if i > start:
                if idx >= self.n_explicit_types:
                    raise items[start - 1].error(f"unknown type {idx}")
                if types[idx] != ft:
                    raise items[start].error("inline function type does not match type use")
            elif idx < len(types):
                ft = types[idx]
                if names is not None:
                    names.extend([None] * len(ft.params))
            return idx, ft, i
        if block and not params and len(results) <= 1:
            return None, ft, i
        idx = self.type_first.get(ft)
        if idx is None:
            idx = self.type_first[ft] = len(types)
            types.append(ft)
        return idx, ft, i

    # ------------------------------------------------------------ indices

    def _index(self, node: Node | None, space: str, parent: SList) -> int:
        if isinstance(node, Atom) and node.kind == WORD:
            if node.text.startswith("$"):
                ids = self.type_ids if space == "type" else self.spaces[space].ids
                idx = ids.get(node.text)
                if idx is None:
                    raise node.error(f"unknown {_SPACE_NAMES[space]} {node.text}")
                return idx
            return _u32(node, parent, f"a {_SPACE_NAMES[space]} index")
        raise _unexpected(node, parent, f"a {_SPACE_NAMES[space]} index")

    def _exports(self, f: SList, i: int, kind: ir.ExternKind, idx: int) -> int:
        while _head(_at(f, i)) == "export":
            e = f.items[i]
            assert isinstance(e, SList)
            if len(e.items) != 2:
                raise _unexpected(_at(e, 2) if len(e.items) > 2 else None, e, "an export name")
            self.m.exports.append(ir.Export(_name(e.items[1], e), kind, idx))
            i += 1
        return i

    def _inline_import(self, f: SList, i: int) -> tuple[str, str, int] | None:
        node = _at(f, i)
        if _head(node) != "import":
            return None
        assert isinstance(node, SList)
        if len(node.items) != 3:
            raise _unexpected(_at(node, 3), node, "two name strings")
        return _name(node.items[1], node), _name(node.items[2], node), i + 1

    # ------------------------------------------------------------ fields

    def _import(self, f: SList) -> None:
        if len(f.items) != 4:
            raise _unexpected(_at(f, 4), f)
        module = _name(f.items[1], f)
        name = _name(f.items[2], f)
        desc = f.items[3]
        assert isinstance(desc, SList)
        kind = desc.head()
        assert kind is not None
        idx = self._next_index(kind)
        i = 2 if _is_id(_at(desc, 1)) else 1
        d: ir.ImportDesc
        if kind == "func":
            names: list[str | None] = []
            tidx, _, i = self._type_use(desc, i, names=names)
            assert tidx is not None
            d = tidx
            self._note_func_name(desc, idx)
        elif kind == "table":
            d, i = self._table_type(desc, i)
        elif kind == "memory":
            d, i = self._memory_type(desc, i)
        else:
            d, i = self._global_type(desc, i)
        if i < len(desc.items):
            raise _unexpected(desc.items[i], desc)
        self.m.imports.append(ir.Import(module, name, kind, d))  # type: ignore[arg-type]

    def _note_func_name(self, f: SList, funcidx: int) -> None:
        if _is_id(_at(f, 1)):
            self.func_names[funcidx] = f.items[1].text[1:]  # type: ignore[union-attr]

    def _limits(self, f: SList, i: int) -> tuple[ir.Limits, int]:
        lo = _u32(_at(f, i), f, "a limit")
        i += 1
        hi: int | None = None
        node = _at(f, i)
        if isinstance(node, Atom) and node.kind == WORD and node.text[:1].isdigit():
            hi = _u32(node, f, "a limit")
            i += 1
        return ir.Limits(lo, hi), i

    def _table_type(self, f: SList, i: int) -> tuple[ir.TableType, int]:
        limits, i = self._limits(f, i)
        rt = _at(f, i)
        if not (isinstance(rt, Atom) and rt.text in _REFTYPES):
            raise _unexpected(rt, f, "a reference type")
        return ir.TableType(rt.text, limits), i + 1

    def _memory_type(self, f: SList, i: int) -> tuple[ir.MemoryType, int]:
        limits, i = self._limits(f, i)
        return ir.MemoryType(limits), i

    def _global_type(self, f: SList, i: int) -> tuple[ir.GlobalType, int]:
        node = _at(f, i)
        if _head(node) == "mut":
            assert isinstance(node, SList)
            if len(node.items) != 2:
                raise _unexpected(_at(node, 2), node, "one value type")
            return ir.GlobalType(self._valtype(node.items[1], node), True), i + 1
        return ir.GlobalType(self._valtype(node, f), False), i + 1

    def _def_prefix(self, f: SList, kind: ir.ExternKind) -> tuple[int, int, tuple[str, str] | None]:
        """Skip the id and inline exports; returns (index, next i, inline import)."""
        idx = self._next_index(kind)
        i = 2 if _is_id(_at(f, 1)) else 1
        i = self._exports(f, i, kind, idx)
        imp = self._inline_import(f, i)
        if imp is None:
            return idx, i, None
        return idx, imp[2], (imp[0], imp[1])

    def _next_index(self, kind: str) -> int:
        idx = self._next[kind]
        self._next[kind] += 1
        return idx

    def _func(self, f: SList) -> None:
        idx, i, imp = self._def_prefix(f, "func")
        self._note_func_name(f, idx)
        names: list[str | None] = []
        tidx, ft, i = self._type_use(f, i, names=names)
        assert tidx is not None
        if imp is not None:
            if i < len(f.items):
                raise _unexpected(f.items[i], f)
            self.m.imports.append(ir.Import(imp[0], imp[1], "func", tidx))
            return
        items = f.items
        n = len(items)
        local_types: list[str] = []
        while i < n and _head(items[i]) == "local":
            loc = items[i]
            assert isinstance(loc, SList)
            if _is_id(_at(loc, 1)):
                if len(loc.items) != 3:
                    raise _unexpected(_at(loc, 3), loc, "one value type")
                local_types.append(self._valtype(loc.items[2], loc))
                names.append(loc.items[1].text)  # type: ignore[union-attr]
            else:
                for t in loc.items[1:]:
                    local_types.append(self._valtype(t, loc))
                    names.append(None)
            i += 1
        local_ids: dict[str, int] = {}
        for k, nm in enumerate(names):
            if nm is not None:
                if nm in local_ids:
                    raise f.error(f"duplicate local {nm}")
                local_ids[nm] = k
        if local_ids:
            self.local_names[idx] = {k: nm[1:] for nm, k in local_ids.items()}
        runs: list[tuple[int, str]] = []
        for lt in local_types:
            if runs and runs[-1][1] == lt:
                runs[-1] = (runs[-1][0] + 1, lt)
            else:
                runs.append((1, lt))
        ctx = _Func(local_ids)
        j = self._instrs(f, i, ctx)
        if j < n:
            raise _unexpected(items[j], f)
        ctx.out.append(ir.Instr("end"))
        self.m.funcs.append(ir.Function(tidx, runs, ctx.out))

    def _table(self, f: SList) -> None:
        idx, i, imp = self._def_prefix(f, "table")
        node = _at(f, i)
        if isinstance(node, Atom) and node.text in _REFTYPES and _head(_at(f, i + 1)) == "elem":
            rt = node.text
            elem = f.items[i + 1]
            assert isinstance(elem, SList)
            if len(f.items) > i + 2:
                raise _unexpected(f.items[i + 2], f)
            init = self._elem_list(elem, 1, rt, legacy=True)
            n = len(init)
            self.m.tables.append(ir.TableType(rt, ir.Limits(n, n)))
            self._next_index("elem")
            offset = [ir.Instr("i32.const", (0,)), ir.Instr("end")]
            self.m.elems.append(ir.Elem("active", rt, init, idx, offset))
            return
        tt, i = self._table_type(f, i)
        self._import_or_define(f, i, imp, "table", tt, self.m.tables)

    def _memory(self, f: SList) -> None:
        idx, i, imp = self._def_prefix(f, "memory")
        node = _at(f, i)
        if _head(node) == "data" and imp is None:
            assert isinstance(node, SList)
            if len(f.items) > i + 1:
                raise _unexpected(f.items[i + 1], f)
            data = b"".join(s.string_bytes() for s in node.items[1:] if isinstance(s, Atom))
            if any(not isinstance(s, Atom) for s in node.items[1:]):
                raise _unexpected(next(s for s in node.items[1:] if not isinstance(s, Atom)), node)
            pages = (len(data) + 0xFFFF) // 0x10000
            self.m.mems.append(ir.MemoryType(ir.Limits(pages, pages)))
            self._next_index("data")
            offset = [ir.Instr("i32.const", (0,)), ir.Instr("end")]
            self.m.datas.append(ir.Data("active", data, idx, offset))
            return
        mt, i = self._memory_type(f, i)
        self._import_or_define(f, i, imp, "memory", mt, self.m.mems)

    def _import_or_define(
        self,
        f: SList,
        i: int,
        imp: tuple[str, str] | None,
        kind: Literal["table", "memory"],
        ty: Any,
        defined: list[Any],
    ) -> None:
        """End of a table/memory field: nothing may follow its type; then import or define it."""
        if i < len(f.items):
            raise _unexpected(f.items[i], f)
        if imp is not None:
            self.m.imports.append(ir.Import(imp[0], imp[1], kind, ty))
        else:
            defined.append(ty)

    def _global(self, f: SList) -> None:
        _, i, imp = self._def_prefix(f, "global")
        gt, i = self._global_type(f, i)
        if imp is not None:
            if i < len(f.items):
                raise _unexpected(f.items[i], f)
            self.m.imports.append(ir.Import(imp[0], imp[1], "global", gt))
            return
        self.m.globals.append(ir.Global(gt, self._expr(f, i)))

    def _export(self, f: SList) -> None:
        if len(f.items) != 3:
            raise _unexpected(_at(f, 3), f)
        name = _name(f.items[1], f)
        desc = f.items[2]
        kind = _head(desc)
        if kind not in ("func", "table", "memory", "global") or not isinstance(desc, SList):
            raise _unexpected(desc, f, "an export description")
        if len(desc.items) != 2:
            raise _unexpected(_at(desc, 2), desc)
        idx = self._index(desc.items[1], kind, desc)
        self.m.exports.append(ir.Export(name, kind, idx))  # type: ignore[arg-type]

    def _expr(self, parent: SList, i: int) -> list[ir.Instr]:
        """Instructions from ``parent.items[i:]`` to the end of the list, plus ``end``."""
        ctx = _Func({})
        j = self._instrs(parent, i, ctx)
        if j < len(parent.items):
            raise _unexpected(parent.items[j], parent)
        ctx.out.append(ir.Instr("end"))
        return ctx.out

    def _offset(self, node: SList) -> list[ir.Instr]:
        if node.head() == "offset":
            return self._expr(node, 1)
        ctx = _Func({})
        self._folded(node, ctx)
        ctx.out.append(ir.Instr("end"))
        return ctx.out

    def _elem_list(self, f: SList, i: int, reftype: str | None, legacy: bool) -> list[ir.Expr]:
        """Element items from ``f.items[i:]``: ``func x*``, ``reftype item*`` or bare ``x*``."""
        items = f.items
        node = _at(f, i)
        out: list[ir.Expr] = []
        if _kw(node, "func") or (legacy and (node is None or isinstance(node, Atom)) and reftype):
            if _kw(node, "func"):
                i += 1
            for x in items[i:]:
                fi = self._index(x, "func", f)
                out.append([ir.Instr("ref.func", (fi,)), ir.Instr("end")])
            return out
        for x in items[i:]:
            if not isinstance(x, SList):
                raise _unexpected(x, f, "an element expression")
            if x.head() == "item":
                out.append(self._expr(x, 1))
            else:
                ctx = _Func({})
                self._folded(x, ctx)
                ctx.out.append(ir.Instr("end"))
                out.append(ctx.out)
        return out

    def _elem(self, f: SList) -> None:
        self._next_index("elem")
        i = 2 if _is_id(_at(f, 1)) else 1
        mode: str = "passive"
        table = 0
        offset: list[ir.Instr] | None = None
        node = _at(f, i)
        if _kw(node, "declare"):
            mode = "declarative"
            i += 1
        else:
            if _head(node) == "table":
                assert isinstance(node, SList)
                if len(node.items) != 2:
                    raise _unexpected(_at(node, 2), node)
                table = self._index(node.items[1], "table", node)
                i += 1
                node = _at(f, i)
                if not isinstance(node, SList):
                    raise _unexpected(node, f, "an offset expression")
            if isinstance(node, SList) and node.head() != "item":
                offset = self._offset(node)
                mode = "active"
                i += 1
        node = _at(f, i)
        if isinstance(node, Atom) and node.kind == WORD and node.text in _REFTYPES:
            rt = node.text
            init = self._elem_list(f, i + 1, rt, legacy=False)
        elif _kw(node, "func"):
            rt = "funcref"
            init = self._elem_list(f, i, rt, legacy=False)
        elif mode == "active":
            rt = "funcref"
            init = self._elem_list(f, i, rt, legacy=True)
        else:
            raise _unexpected(node, f, "an element list")
        self.m.elems.append(ir.Elem(mode, rt, init, table, offset))  # type: ignore[arg-type]

    def _data(self, f: SList) -> None:
        self._next_index("data")
        i = 2 if _is_id(_at(f, 1)) else 1
        node = _at(f, i)
        mem = 0
        offset: list[ir.Instr] | None = None
        if _head(node) == "memory":
            assert isinstance(node, SList)
            if len(node.items) != 2:
                raise _unexpected(_at(node, 2), node)
            mem = self._index(node.items[1], "memory", node)
            i += 1
            node = _at(f, i)
            if not isinstance(node, SList):
                raise _unexpected(node, f, "an offset expression")
        if isinstance(node, SList):
            offset = self._offset(node)
            i += 1
        chunks = []
        for s in f.items[i:]:
            if not isinstance(s, Atom) or s.kind != STRING:
                raise _unexpected(s, f, "a data string")
            chunks.append(s.string_bytes())
        data = b"".join(chunks)
        if offset is None:
            self.m.datas.append(ir.Data("passive", data))
        else:
            self.m.datas.append(ir.Data("active", data, mem, offset))

    # ------------------------------------------------------------ instructions

    def _instrs(self, parent: SList, i: int, ctx: _Func) -> int:
        """Parse instructions from ``parent.items[i:]``; stop at the end or at ``end``/``else``."""
        return self._run([[_SEQ, parent, i, None, None]], ctx)

    def _folded(self, node: SList, ctx: _Func) -> None:
        """Parse one folded instruction ``node`` (with everything nested in it)."""
        stack: list[list[Any]] = []
        self._enter_folded(node, ctx, stack)
        self._run(stack, ctx)

    def _run(self, stack: list[list[Any]], ctx: _Func) -> int:
        """Run the instruction frames on ``stack`` until it is empty.

        Nesting lives on this explicit stack, never on the Python stack, so
        depth is bounded by memory only. A frame is ``[tag, node, index, a, b]``
        (see ``_SEQ`` ...); a sequence frame that stops hands its position to
        the frame below it as ``ret``.
        """
        out = ctx.out
        ret = 0
        while stack:
            fr = stack[-1]
            tag = fr[0]
            if tag <= _FLAT:
                node = fr[1]
                items = node.items
                n = len(items)
                i = fr[2]
                descended = False
                while i < n:
                    it = items[i]
                    if isinstance(it, SList):
                        fr[2] = i + 1
                        self._enter_folded(it, ctx, stack)
                        descended = True
                        break
                    if it.kind != WORD:
                        raise it.error(f"unknown operator {it.text}")
                    op = it.text
                    if op in _BLOCK_OPS:
                        label, i = self._label_def(node, i + 1)
                        bt, i = self._blocktype(node, i)
                        ctx.push_label(label)
                        out.append(ir.Instr(op, (bt,)))
                        fr[2] = i
                        stack.append([_FLAT, node, i, op, False])
                        descended = True
                        break
                    if op == "end" or op == "else":
                        break
                    i = self._plain(node, i + 1, op, it, ctx)
                if descended:
                    continue
                if tag == _SEQ:
                    stack.pop()
                    ret = i
                    continue
                self._end_flat(fr, i, ctx, stack)
            elif tag == _F_END:
                node = fr[1]
                if ret < len(node.items):
                    raise _unexpected(node.items[ret], node)
                self._close(stack, ctx)
            elif tag == _F_COND:
                self._if_conditions(fr, ctx, stack)
            elif tag == _F_BODY:
                self._after_if_body(fr, ret, ctx, stack)
            else:  # _F_OPS: the operands of a folded plain instruction, then itself
                node = fr[1]
                items = node.items
                i = fr[2]
                if i < len(items):
                    sub = items[i]
                    if not isinstance(sub, SList):
                        raise _unexpected(sub, node, "a folded instruction")
                    fr[2] = i + 1
                    self._enter_folded(sub, ctx, stack)
                    continue
                if fr[3] is not None:
                    out.append(fr[3])
                stack.pop()
                node.release()
        return ret

    def _close(self, stack: list[list[Any]], ctx: _Func) -> None:
        """End the folded block of the top frame: its label goes, ``end`` is emitted."""
        ctx.pop_label()
        ctx.out.append(ir.Instr("end"))
        stack.pop()[1].release()

    def _end_flat(self, fr: list[Any], i: int, ctx: _Func, stack: list[list[Any]]) -> None:
        """The body of a flat block stopped at ``i``: ``else`` (of an ``if``) or ``end``."""
        node = fr[1]
        nxt = _at(node, i)
        if fr[3] == "if" and not fr[4] and _kw(nxt, "else"):
            ctx.out.append(ir.Instr("else"))
            fr[4] = True
            fr[2] = self._check_end_label(node, i + 1, ctx)
            return
        if not _kw(nxt, "end"):
            raise _unexpected(nxt, node, "end")
        i = self._check_end_label(node, i + 1, ctx)
        ctx.pop_label()
        ctx.out.append(ir.Instr("end"))
        stack.pop()
        stack[-1][2] = i  # the enclosing frame reads the same list

    def _enter_folded(self, node: SList, ctx: _Func, stack: list[list[Any]]) -> None:
        """Start folded instruction ``node``: emit what precedes its nested parts, push frames."""
        items = node.items
        first = items[0] if items else None
        if not isinstance(first, Atom) or first.kind != WORD:
            raise _unexpected(first, node, "an instruction")
        op = first.text
        out = ctx.out
        if op == "block" or op == "loop":
            label, i = self._label_def(node, 1)
            bt, i = self._blocktype(node, i)
            ctx.push_label(label)
            out.append(ir.Instr(op, (bt,)))
            stack.append([_F_END, node, 0, None, None])
            stack.append([_SEQ, node, i, None, None])
            return
        if op == "if":
            label, i = self._label_def(node, 1)
            bt, i = self._blocktype(node, i)
            stack.append([_F_COND, node, i, (label, bt), None])
            return
        if op in ("end", "else", "then"):
            raise first.error(f"unexpected token {op}")
        mark = len(out)
        i = self._plain(node, 1, op, first, ctx)
        instr = out.pop() if len(out) > mark else None
        if i < len(items):
            stack.append([_F_OPS, node, i, instr, None])
            return
        if instr is not None:
            out.append(instr)
        node.release()

    def _if_conditions(self, fr: list[Any], ctx: _Func, stack: list[list[Any]]) -> None:
        """Folded ``if``: its condition operands one by one, then ``(then ...)``."""
        node = fr[1]
        items = node.items
        n = len(items)
        i = fr[2]
        if i < n and isinstance(items[i], SList) and _head(items[i]) != "then":
            fr[2] = i + 1
            self._enter_folded(items[i], ctx, stack)  # type: ignore[arg-type]
            return
        label, bt = fr[3]
        ctx.push_label(label)
        then = _at(node, i)
        if _head(then) != "then":
            raise _unexpected(then, node, "(then ...)")
        assert isinstance(then, SList)
        ctx.out.append(ir.Instr("if", (bt,)))
        fr[0] = _F_BODY
        fr[2] = i + 1
        fr[3] = then
        fr[4] = False
        stack.append([_SEQ, then, 1, None, None])

    def _after_if_body(self, fr: list[Any], ret: int, ctx: _Func, stack: list[list[Any]]) -> None:
        """A folded ``if``'s ``(then ...)`` or ``(else ...)`` body stopped at ``ret``."""
        body = fr[3]
        if ret < len(body.items):
            raise _unexpected(body.items[ret], body)
        body.release()
        node = fr[1]
        i = fr[2]
        els = _at(node, i)
        if not fr[4] and _head(els) == "else":
            assert isinstance(els, SList)
            ctx.out.append(ir.Instr("else"))
            fr[2] = i + 1
            fr[3] = els
            fr[4] = True
            stack.append([_SEQ, els, 1, None, None])
            return
        if i < len(node.items):
            raise _unexpected(node.items[i], node)
        self._close(stack, ctx)

    def _label_def(self, parent: SList, i: int) -> tuple[str | None, int]:
        node = _at(parent, i)
        if _is_id(node):
            return node.text, i + 1  # type: ignore[union-attr]
        return None, i

    def _check_end_label(self, parent: SList, i: int, ctx: _Func) -> int:
        node = _at(parent, i)
        if _is_id(node):
            assert isinstance(node, Atom)
            if node.text != ctx.labels[-1]:
                raise node.error(f"mismatching label {node.text}")
            return i + 1
        return i

    def _blocktype(self, parent: SList, i: int) -> tuple[ir.BlockType, int]:
        tidx, ft, i = self._type_use(parent, i, allow_names=False, block=True)
        if tidx is not None:
            return tidx, i
        return (ft.results[0] if ft.results else None), i

    def _label_ref(self, node: Node | None, parent: SList, ctx: _Func) -> int:
        if _is_id(node):
            assert isinstance(node, Atom)
            at = ctx.label_at.get(node.text)
            if not at:
                raise node.error(f"unknown label {node.text}")
            return len(ctx.labels) - 1 - at[-1]
        return _u32(node, parent, "a label")

    def _local(self, node: Node | None, parent: SList, ctx: _Func) -> int:
        if _is_id(node):
            assert isinstance(node, Atom)
            idx = ctx.local_ids.get(node.text)
            if idx is None:
                raise node.error(f"unknown local {node.text}")
            return idx
        return _u32(node, parent, "a local index")

    def _plain(self, parent: SList, i: int, op: str, tok: Atom, ctx: _Func) -> int:
        """Parse the immediates of plain instruction ``op`` at ``parent.items[i:]``."""
        info = BY_NAME.get(op)
        if info is None or op == "select_t":
            raise tok.error(f"unknown operator {op}")
        kind = info.imm
        items = parent.items
        node = items[i] if i < len(items) else None
        imm: tuple
        if kind == "none":
            if op == "select" and _head(node) == "result":
                types: list[str] = []
                while _head(_at(parent, i)) == "result":
                    r = items[i]
                    assert isinstance(r, SList)
                    types.extend(self._valtype(t, r) for t in r.items[1:])
                    i += 1
                ctx.out.append(ir.Instr("select_t", (tuple(types),)))
                return i
            imm = ()
        elif kind == "i32" or kind == "i64":
            if not isinstance(node, Atom) or node.kind != WORD:
                raise _unexpected(node, parent, f"an {kind} literal")
            try:
                v = parse_int(node.text, _CONST_BITS[kind])
            except ValueError as e:
                raise node.error(str(e)) from None
            if v is None:
                raise node.error(f"unexpected token {node.text!r}, expected an {kind} literal")
            imm = (v,)
            i += 1
        elif kind == "f32" or kind == "f64":
            imm = (self._float(node, parent, 32 if kind == "f32" else 64),)
            i += 1
        elif kind == "local":
            imm = (self._local(node, parent, ctx),)
            i += 1
        elif kind == "memarg" or kind == "memarg_lane":
            align = info.align
            offset = 0
            if isinstance(node, Atom) and node.text.startswith("offset="):
                offset = self._memarg_num(node, 7, "offset")
                i += 1
                node = _at(parent, i)
            if isinstance(node, Atom) and node.text.startswith("align="):
                a = self._memarg_num(node, 6, "alignment")
                if a == 0 or a & (a - 1):
                    raise node.error("alignment must be a power of two")
                align = a.bit_length() - 1
                i += 1
            if kind == "memarg":
                imm = (align, offset)
            else:
                lane = self._lane(_at(parent, i), parent)
                imm = (align, offset, lane)
                i += 1
        elif kind == "label":
            imm = (self._label_ref(node, parent, ctx),)
            i += 1
        elif kind == "br_table":
            labels = []
            while _is_index(node):
                labels.append(self._label_ref(node, parent, ctx))
                i += 1
                node = _at(parent, i)
            if not labels:
                raise _unexpected(node, parent, "a label")
            imm = (tuple(labels[:-1]), labels[-1])
        elif kind == "func":
            imm = (self._index(node, "func", parent),)
            i += 1
        elif kind == "global":
            imm = (self._index(node, "global", parent),)
            i += 1
        elif kind == "table":
            if _is_index(node):
                imm = (self._index(node, "table", parent),)
                i += 1
            else:
                imm = (0,)
        elif kind == "call_indirect":
            table = 0
            if _is_index(node):
                table = self._index(node, "table", parent)
                i += 1
            tidx, _, i = self._type_use(parent, i, allow_names=False)
            assert tidx is not None
            imm = (tidx, table)
        elif kind == "blocktype":
            raise tok.error(f"unexpected token {op}")
        elif kind == "reftype":
            if not (isinstance(node, Atom) and node.text in _HEAPTYPES):
                raise _unexpected(node, parent, "a heap type")
            imm = (_HEAPTYPES[node.text],)
            i += 1
        elif kind in ("mem", "mem2"):
            imm = ()
        elif kind == "data" or kind == "memory_init":
            imm = (self._index(node, "data", parent),)
            self.uses_data_count = True
            i += 1
        elif kind == "elem":
            imm = (self._index(node, "elem", parent),)
            i += 1
        elif kind == "table_init":
            nxt = _at(parent, i + 1)
            if _is_index(nxt):
                t = self._index(node, "table", parent)
                imm = (self._index(nxt, "elem", parent), t)
                i += 2
            else:
                imm = (self._index(node, "elem", parent), 0)
                i += 1
        elif kind == "table_copy":
            if _is_index(node):
                dst = self._index(node, "table", parent)
                src = self._index(_at(parent, i + 1), "table", parent)
                imm = (dst, src)
                i += 2
            else:
                imm = (0, 0)
        elif kind == "v128":
            imm, i = self._v128(parent, i)
        elif kind == "shuffle":
            lanes = bytearray()
            while isinstance(node, Atom) and node.kind == WORD and len(lanes) < 16:
                lanes.append(self._lane(node, parent))
                i += 1
                node = _at(parent, i)
            if len(lanes) != 16 or _is_index(node):
                raise (node or parent).error("invalid lane length")
            imm = (bytes(lanes),)
        elif kind == "lane":
            imm = (self._lane(node, parent),)
            i += 1
        elif kind == "select_t":
            raise tok.error(f"unknown operator {op}")
        else:  # pragma: no cover - every kind of the table is handled above
            raise tok.error(f"unsupported immediate kind {kind}")
        ctx.out.append(ir.Instr(op, imm))
        return i

    def _memarg_num(self, node: Atom, skip: int, what: str) -> int:
        try:
            v = parse_uint(node.text[skip:], 32)
        except ValueError:
            raise node.error(f"i32 constant out of range ({what})") from None
        if v is None:
            raise node.error(f"unexpected token {node.text!r}, expected {what}")
        return v

    def _lane(self, node: Node | None, parent: SList) -> int:
        if not isinstance(node, Atom) or node.kind != WORD:
            raise _unexpected(node, parent, "a lane index")
        try:
            v = parse_uint(node.text, 8)
        except ValueError:
            raise node.error("malformed lane index") from None
        if v is None:
            raise node.error(f"unexpected token {node.text!r}, expected a lane index")
        return v

    def _float(self, node: Node | None, parent: SList, bits: int) -> int:
        if not isinstance(node, Atom) or node.kind != WORD:
            raise _unexpected(node, parent, f"an f{bits} literal")
        try:
            v = parse_float(node.text, bits)
        except ValueError as e:
            raise node.error(str(e)) from None
        if v is None:
            raise node.error(f"unexpected token {node.text!r}, expected an f{bits} literal")
        return v

    def _v128(self, parent: SList, i: int) -> tuple[tuple[bytes], int]:
        shape = _at(parent, i)
        if not isinstance(shape, Atom) or shape.text not in _SIMD_SHAPES:
            raise _unexpected(shape, parent, "a lane shape (i8x16 ... f64x2)")
        count, bits, is_float = _SIMD_SHAPES[shape.text]
        i += 1
        value = 0
        for lane in range(count):
            node = _at(parent, i + lane)
            if not isinstance(node, Atom) or node.kind != WORD:
                raise (node or parent).error("wrong number of lane literals")
            if is_float:
                v = self._float(node, parent, bits)
            else:
                try:
                    iv = parse_int(node.text, bits)
                except ValueError:
                    raise node.error("constant out of range") from None
                if iv is None:
                    raise node.error(f"unexpected token {node.text!r}, expected an integer")
                v = iv & ((1 << bits) - 1)
            value |= v << (lane * bits)
        i += count
        nxt = _at(parent, i)
        if (
            isinstance(nxt, Atom)
            and nxt.kind == WORD
            and (nxt.text[:1].isdigit() or nxt.text[:1] in "+-")
        ):
            raise nxt.error("wrong number of lane literals")
        return (value.to_bytes(16, "little"),), i


def _is_index(node: Node | None) -> bool:
    return (
        isinstance(node, Atom)
        and node.kind == WORD
        and (node.text.startswith("$") or node.text[:1].isdigit())
    )


def _at(lst: SList, i: int) -> Node | None:
    items = lst.items
    return items[i] if i < len(items) else None


def module_from_fields(fields: list[Node], parent: SList, name: str | None = None) -> ir.Module:
    """Build the IR from module fields (the items of ``(module ...)`` after its name)."""
    return _ModuleParser(name).run(fields, parent)


def module_from_node(node: SList) -> ir.Module:
    """Build the IR of a text ``(module $name? field*)`` node."""
    i = 1
    name = None
    if _is_id(_at(node, 1)):
        name = node.items[1].text[1:]  # type: ignore[union-attr]
        i = 2
    nxt = _at(node, i)
    if _kw(nxt, "binary") or _kw(nxt, "quote"):
        raise nxt.error("unexpected token: binary/quote module where a text module is required")  # type: ignore[union-attr]
    return module_from_fields(node.items[i:], node, name)


def _top(text: str | bytes, name: str = "") -> tuple[list[Node], Source]:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WatParseError("malformed UTF-8 encoding", 0, 0, name) from e
    src = Source(text, name)
    return read_sexprs(src, keyword_heads=True), src


def _module_node(nodes: list[Node], src: Source) -> SList | None:
    """The single ``(module ...)`` node, or None when ``nodes`` are bare fields."""
    if len(nodes) == 1 and _head(nodes[0]) == "module":
        node = nodes[0]
        assert isinstance(node, SList)
        return node
    for n in nodes:
        if _head(n) == "module":
            raise n.error("unexpected token: module inside module text")
    return None


def module_kind(node: SList) -> tuple[str | None, str, int]:
    """(name, 'text' | 'binary' | 'quote', index of the first payload item) of a module node."""
    i = 1
    name = None
    if _is_id(_at(node, 1)):
        name = node.items[1].text[1:]  # type: ignore[union-attr]
        i = 2
    nxt = _at(node, i)
    if _kw(nxt, "binary"):
        return name, "binary", i + 1
    if _kw(nxt, "quote"):
        return name, "quote", i + 1
    return name, "text", i


def strings_payload(node: SList, i: int) -> bytes:
    """Concatenated strings of a binary module, or quote strings joined by spaces."""
    out = []
    for s in node.items[i:]:
        if not isinstance(s, Atom) or s.kind != STRING:
            raise _unexpected(s, node, "a string")
        out.append(s.string_bytes())
    return b"".join(out)


def quote_text(node: SList, i: int) -> str:
    parts = []
    for s in node.items[i:]:
        if not isinstance(s, Atom) or s.kind != STRING:
            raise _unexpected(s, node, "a string")
        parts.append(s.string_bytes())
    raw = b" ".join(parts)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise node.error("malformed UTF-8 encoding") from None


def parse_module_text(text: str | bytes, name: str = "") -> ir.Module | bytes:
    """Parse a WAT text: an IR module, or the raw bytes of a ``(module binary ...)``.

    ``(module quote ...)`` is unwrapped in a loop (not recursion); each level
    re-reads its text, so at most ``MAX_QUOTE_DEPTH`` levels are accepted
    (keeping the work linear in the input). The innermost module name wins.
    """
    quote_names: list[str] = []
    depth = 0
    while True:
        nodes, src = _top(text, name)
        node = _module_node(nodes, src)
        if node is None:
            root = SList(0, src)
            root.items = nodes
            root.end = len(src.text)
            result: ir.Module | bytes = module_from_fields(nodes, root)
            break
        mname, kind, i = module_kind(node)
        if kind == "binary":
            return strings_payload(node, i)
        if kind != "quote":
            result = module_from_fields(node.items[i:], node, mname)
            break
        depth += 1
        if depth > MAX_QUOTE_DEPTH:
            raise node.error(f"module quote nested deeper than {MAX_QUOTE_DEPTH} levels")
        if mname is not None:
            quote_names.append(mname)
        text = quote_text(node, i)
    if quote_names and isinstance(result, ir.Module):
        result.names = result.names or ir.NameMap()
        result.names.module = result.names.module or quote_names[-1]
    return result


def parse_wat(text: str | bytes, name: str = "") -> ir.Module:
    """Parse a WAT module (``(module ...)`` or bare fields) into the IR."""
    result = parse_module_text(text, name)
    if isinstance(result, bytes):
        return decode_module(result)  # type: ignore[no-any-return]
    return result


def wat2wasm(text: str | bytes, name: str = "") -> bytes:
    """Parse a WAT module and encode it (a ``(module binary ...)`` is returned as given)."""
    result = parse_module_text(text, name)
    if isinstance(result, bytes):
        return result
    return encode_module(result)  # type: ignore[no-any-return]
