"""Encoder for the Wasm 2.0 binary format: ``encode_module(ir.Module) -> bytes``.

Invariants:
- ``decode_module(encode_module(m)) == m`` for every module ``decode_module``
  can produce: encodings are canonical (shortest LEB128, function-index
  element forms when every item is ``ref.func x``), a section is written when
  it is non-empty or when a custom section must follow it, the data count
  section is written iff ``m.data_count is not None``, and each custom
  section is written right after the section whose id is its ``after``.
- A module with ``names`` but no ``name`` custom section (one parsed from
  text) gets a ``name`` section written last (module, function and local
  names, by index), as ``wat2wasm`` tools emit it, so function names
  survive text -> binary -> module.
- Only IR values are read; the encoder never mutates its input. A value that
  cannot be encoded raises ``ValueError``.
"""

from __future__ import annotations

import struct

from wasmrt import ir
from wasmrt.binary.decode import MAGIC, SECTION_ORDER, VERSION
from wasmrt.binary.leb128 import write_signed, write_unsigned
from wasmrt.opcodes import BY_NAME, OpInfo

__all__ = ["encode_module", "encode_expr"]

_VALTYPE_BYTE = {
    "i32": 0x7F,
    "i64": 0x7E,
    "f32": 0x7D,
    "f64": 0x7C,
    "v128": 0x7B,
    "funcref": 0x70,
    "externref": 0x6F,
}
_KIND_BYTE = {"func": 0, "table": 1, "memory": 2, "global": 3}

_u = write_unsigned
_s = write_signed

#: op name -> (opcode bytes, immediate kind)
_OPS: dict[str, tuple[bytes, str]] = {}


def _opbytes(info: OpInfo) -> bytes:
    if info.prefix:
        return bytes((info.prefix,)) + _u(info.code)
    return bytes((info.code,))


for _opname, _info in BY_NAME.items():
    _OPS[_opname] = (_opbytes(_info), _info.imm)
del _opname, _info
_OPS["select_t"] = (b"\x1c", "select_t")


def _vec(items: list[bytes]) -> bytes:
    return _u(len(items)) + b"".join(items)


def _name(s: str) -> bytes:
    raw = s.encode("utf-8")
    return _u(len(raw)) + raw


def _bytes(b: bytes) -> bytes:
    return _u(len(b)) + bytes(b)


def _valtype(t: str) -> bytes:
    return bytes((_VALTYPE_BYTE[t],))


def _limits(lim: ir.Limits) -> bytes:
    if lim.max is None:
        return b"\x00" + _u(lim.min)
    return b"\x01" + _u(lim.min) + _u(lim.max)


def _tabletype(t: ir.TableType) -> bytes:
    return _valtype(t.elem) + _limits(t.limits)


def _globaltype(t: ir.GlobalType) -> bytes:
    return _valtype(t.valtype) + (b"\x01" if t.mutable else b"\x00")


def _instr(ins: ir.Instr, out: bytearray) -> None:
    op = ins.op
    imm = ins.imm
    if op == "select" and imm:
        op = "select_t"
    try:
        code, kind = _OPS[op]
    except KeyError:
        raise ValueError(f"unknown instruction {op!r}") from None
    out += code
    if kind == "none":
        return
    if kind in ("label", "func", "local", "global", "table", "data", "elem"):
        out += _u(imm[0])
    elif kind == "i32" or kind == "i64":
        out += _s(imm[0])
    elif kind == "memarg":
        out += _u(imm[0])
        out += _u(imm[1])
    elif kind == "blocktype":
        bt = imm[0]
        if bt is None:
            out.append(0x40)
        elif isinstance(bt, str):
            out.append(_VALTYPE_BYTE[bt])
        else:
            out += _s(bt)
    elif kind == "f32":
        out += struct.pack("<I", imm[0])
    elif kind == "f64":
        out += struct.pack("<Q", imm[0])
    elif kind == "mem":
        out.append(0)
    elif kind == "mem2":
        out += b"\x00\x00"
    elif kind == "br_table":
        labels, default = imm
        out += _u(len(labels))
        for lab in labels:
            out += _u(lab)
        out += _u(default)
    elif kind in ("call_indirect", "table_init", "table_copy"):
        out += _u(imm[0])
        out += _u(imm[1])
    elif kind == "memory_init":
        out += _u(imm[0])
        out.append(0)
    elif kind == "reftype":
        out.append(_VALTYPE_BYTE[imm[0]])
    elif kind == "select_t":
        types = imm[0]
        out += _u(len(types))
        for t in types:
            out.append(_VALTYPE_BYTE[t])
    elif kind == "v128" or kind == "shuffle":
        raw = bytes(imm[0])
        if len(raw) != 16:
            raise ValueError(f"{op} needs 16 immediate bytes")
        out += raw
    elif kind == "lane":
        out.append(imm[0])
    elif kind == "memarg_lane":
        out += _u(imm[0])
        out += _u(imm[1])
        out.append(imm[2])
    else:  # pragma: no cover - every kind of the table is handled above
        raise ValueError(f"unknown immediate kind {kind!r}")


def encode_expr(expr: ir.Expr) -> bytes:
    """Encode an instruction sequence (including its final ``end``)."""
    out = bytearray()
    for ins in expr:
        _instr(ins, out)
    return bytes(out)


def _func_index_list(e: ir.Elem) -> list[int] | None:
    """The function indices if every item is exactly ``ref.func x; end``."""
    if e.reftype != "funcref":
        return None
    out = []
    for item in e.init:
        if len(item) != 2 or item[0].op != "ref.func" or item[1].op != "end" or item[1].imm:
            return None
        out.append(item[0].imm[0])
    return out


def _elem(e: ir.Elem) -> bytes:
    idxs = _func_index_list(e)
    if idxs is not None:
        items = _vec([_u(i) for i in idxs])
        if e.mode == "passive":
            return b"\x01\x00" + items
        if e.mode == "declarative":
            return b"\x03\x00" + items
        offset = encode_expr(e.offset or [])
        if e.table == 0:
            return b"\x00" + offset + items
        return b"\x02" + _u(e.table) + offset + b"\x00" + items
    exprs = _vec([encode_expr(x) for x in e.init])
    rt = _valtype(e.reftype)
    if e.mode == "passive":
        return b"\x05" + rt + exprs
    if e.mode == "declarative":
        return b"\x07" + rt + exprs
    offset = encode_expr(e.offset or [])
    if e.table == 0 and e.reftype == "funcref":
        return b"\x04" + offset + exprs
    return b"\x06" + _u(e.table) + offset + rt + exprs


def _data(d: ir.Data) -> bytes:
    if d.mode == "passive":
        return b"\x01" + _bytes(d.init)
    offset = encode_expr(d.offset or [])
    if d.memory == 0:
        return b"\x00" + offset + _bytes(d.init)
    return b"\x02" + _u(d.memory) + offset + _bytes(d.init)


def _code(f: ir.Function) -> bytes:
    body = _vec([_u(n) + _valtype(t) for n, t in f.locals]) + encode_expr(f.body)
    return _u(len(body)) + body


def _import(i: ir.Import) -> bytes:
    head = _name(i.module) + _name(i.name) + bytes((_KIND_BYTE[i.kind],))
    d = i.desc
    if isinstance(d, int):
        return head + _u(d)
    if isinstance(d, ir.TableType):
        return head + _tabletype(d)
    if isinstance(d, ir.MemoryType):
        return head + _limits(d.limits)
    return head + _globaltype(d)


def _section_payload(m: ir.Module, sid: int) -> bytes | None:
    """The payload of section ``sid``, or None when it has nothing to say."""
    if sid == 1:
        return _vec(
            [
                b"\x60"
                + _vec([_valtype(t) for t in ft.params])
                + _vec([_valtype(t) for t in ft.results])
                for ft in m.types
            ]
        )
    if sid == 2:
        return _vec([_import(i) for i in m.imports])
    if sid == 3:
        return _vec([_u(f.type_idx) for f in m.funcs])
    if sid == 4:
        return _vec([_tabletype(t) for t in m.tables])
    if sid == 5:
        return _vec([_limits(t.limits) for t in m.mems])
    if sid == 6:
        return _vec([_globaltype(g.type) + encode_expr(g.init) for g in m.globals])
    if sid == 7:
        return _vec([_name(e.name) + bytes((_KIND_BYTE[e.kind],)) + _u(e.index) for e in m.exports])
    if sid == 8:
        return None if m.start is None else _u(m.start)
    if sid == 9:
        return _vec([_elem(e) for e in m.elems])
    if sid == 12:
        return None if m.data_count is None else _u(m.data_count)
    if sid == 10:
        return _vec([_code(f) for f in m.funcs])
    if sid == 11:
        return _vec([_data(d) for d in m.datas])
    raise ValueError(f"bad section id {sid}")


def _has_content(m: ir.Module, sid: int) -> bool:
    return bool(
        {
            1: m.types,
            2: m.imports,
            3: m.funcs,
            4: m.tables,
            5: m.mems,
            6: m.globals,
            7: m.exports,
            8: m.start is not None,
            9: m.elems,
            12: m.data_count is not None,
            10: m.funcs,
            11: m.datas,
        }[sid]
    )


def _section(sid: int, payload: bytes) -> bytes:
    return bytes((sid,)) + _u(len(payload)) + payload


def encode_module(m: ir.Module) -> bytes:
    """Encode ``m`` in the canonical binary form."""
    out = bytearray(MAGIC + VERSION)
    customs_after: dict[int, list[ir.CustomSection]] = {}
    for c in m.customs:
        customs_after.setdefault(c.after, []).append(c)

    def write_customs(after: int) -> None:
        for c in customs_after.get(after, ()):
            out.extend(_section(0, _name(c.name) + bytes(c.data)))

    write_customs(0)
    for sid in SECTION_ORDER:
        if _has_content(m, sid) or sid in customs_after:
            payload = _section_payload(m, sid)
            if payload is not None:
                out += _section(sid, payload)
        write_customs(sid)
    names = m.names
    if names is not None and not any(c.name == "name" for c in m.customs):
        out += _section(0, _name("name") + _name_payload(names))
    return bytes(out)


def _name_payload(names: ir.NameMap) -> bytes:
    out = bytearray()

    def sub(sid: int, payload: bytes) -> None:
        out.extend(bytes((sid,)) + _u(len(payload)) + payload)

    if names.module is not None:
        sub(0, _name(names.module))
    if names.functions:
        items = sorted(names.functions.items())
        sub(1, _vec([_u(i) + _name(n) for i, n in items]))
    if names.locals:
        groups = []
        for f, locs in sorted(names.locals.items()):
            groups.append(_u(f) + _vec([_u(i) + _name(n) for i, n in sorted(locs.items())]))
        sub(2, _vec(groups))
    return bytes(out)
