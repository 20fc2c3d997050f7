"""Decoder for the Wasm 2.0 binary format: ``decode_module(bytes) -> ir.Module``.

Invariants:
- Every malformation raises ``MalformedError(reason, offset, section)``; no
  IndexError, struct.error, UnicodeDecodeError or RecursionError escapes.
  Instructions are decoded iteratively, so nesting depth is unbounded.
- All reads are bounded by the current section (or function body) end.
- Before each vector built on the module's behalf the decoder calls
  ``try_alloc(approx_bytes, AllocKind.MODULE)``; a count is first checked
  against the remaining input, so a bogus count is malformed rather than a
  giant request. ``OutOfMemory`` from the hook propagates unchanged.
- Element segments are normalised (function-index lists become
  ``[ref.func x, end]`` expressions); the typed ``select`` decodes to
  ``Instr("select_t", (types,))``, the untyped one to ``Instr("select")``.
- Instr objects are immutable and may be shared between bodies and modules.
- Runs of small custom sections take a fast path (one tight loop, no per-section
  context); equal small ones share one ``CustomSection`` object, so a module
  of millions of identical custom sections costs a list slot for each.
  Custom sections are treated as read-only.
"""

from __future__ import annotations

from wasmrt import ir
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.binary.leb128 import read_signed, read_unsigned
from wasmrt.errors import MalformedError
from wasmrt.opcodes import BY_CODE, OpInfo

__all__ = ["SECTION_NAMES", "SECTION_ORDER", "decode_module"]

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

SECTION_NAMES = {
    0: "custom",
    1: "type",
    2: "import",
    3: "function",
    4: "table",
    5: "memory",
    6: "global",
    7: "export",
    8: "start",
    9: "element",
    10: "code",
    11: "data",
    12: "data count",
}
#: Non-custom section ids in their required order.
SECTION_ORDER = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11)
_RANK = {sid: i for i, sid in enumerate(SECTION_ORDER)}

VALTYPE_BY_BYTE = {
    0x7F: "i32",
    0x7E: "i64",
    0x7D: "f32",
    0x7C: "f64",
    0x7B: "v128",
    0x70: "funcref",
    0x6F: "externref",
}
REFTYPE_BY_BYTE = {0x70: "funcref", 0x6F: "externref"}
EXTERN_KINDS: tuple[ir.ExternKind, ...] = ("func", "table", "memory", "global")

_MODULE = AllocKind.MODULE
_MAX_U32 = 0xFFFFFFFF
#: Distinct small custom sections remembered for sharing (bounds the cache, not the module).
_CUSTOM_CACHE_LIMIT = 4096

# Immediate-kind codes for the dispatch in the instruction loop.
_K_ILLEGAL = -1
_K_NONE = 0
_K_MEMARG = 1
_K_BLOCK = 2
_K_U32 = 3  # label, func, local, global, table, data, elem
_K_I32 = 4
_K_I64 = 5
_K_F32 = 6
_K_F64 = 7
_K_OTHER = 8
_K_PREFIX = 9

_U32_KINDS = {"label", "func", "local", "global", "table", "data", "elem"}
_KIND_CODE = {
    "none": _K_NONE,
    "memarg": _K_MEMARG,
    "blocktype": _K_BLOCK,
    "i32": _K_I32,
    "i64": _K_I64,
    "f32": _K_F32,
    "f64": _K_F64,
}
for _k in _U32_KINDS:
    _KIND_CODE[_k] = _K_U32

END = ir.Instr("end")
_REF_FUNC = "ref.func"

_OPS0: list[OpInfo | None] = [BY_CODE.get((0, c)) for c in range(256)]
_KINDS0: list[int] = []
_SIMPLE0: list[ir.Instr | None] = []
#: For ops with one LEB immediate: instr for each single-byte encoding (byte < 0x80).
_FAST1: list[list[ir.Instr] | None] = []
for _c in range(256):
    _info = _OPS0[_c]
    if _c in (0xFC, 0xFD):
        _KINDS0.append(_K_PREFIX)
    elif _info is None:
        _KINDS0.append(_K_ILLEGAL)
    else:
        _KINDS0.append(_KIND_CODE.get(_info.imm, _K_OTHER))
    _SIMPLE0.append(ir.Instr(_info.name) if _info is not None and _info.imm == "none" else None)
    if _c == 0x0B:
        _SIMPLE0[_c] = END
    if _info is not None and _info.imm in _U32_KINDS:
        _FAST1.append([ir.Instr(_info.name, (b,)) for b in range(128)])
    elif _info is not None and _info.imm in ("i32", "i64"):
        _FAST1.append([ir.Instr(_info.name, (b - 128 if b & 0x40 else b,)) for b in range(128)])
    else:
        _FAST1.append(None)

_BLOCK_FAST: dict[tuple[int, int], ir.Instr] = {}
for _c in (0x02, 0x03, 0x04):
    _name = ("block", "loop", "if")[_c - 2]
    _BLOCK_FAST[(_c, 0x40)] = ir.Instr(_name, (None,))
    for _b, _t in VALTYPE_BY_BYTE.items():
        _BLOCK_FAST[(_c, _b)] = ir.Instr(_name, (_t,))

_PREFIXED: dict[tuple[int, int], OpInfo] = {k: v for k, v in BY_CODE.items() if k[0]}
_SIMPLE_PREFIXED: dict[tuple[int, int], ir.Instr] = {
    k: ir.Instr(v.name) for k, v in _PREFIXED.items() if v.imm == "none"
}
_MEM_INSTRS: dict[str, ir.Instr] = {
    v.name: ir.Instr(v.name) for v in BY_CODE.values() if v.imm in ("mem", "mem2")
}
del _c, _info, _k, _b, _t, _name


def decode_module(data: bytes | bytearray | memoryview) -> ir.Module:
    """Decode a binary module; raise ``MalformedError`` if it is not well formed."""
    if not isinstance(data, bytes):
        try_alloc(len(data), _MODULE)
        data = bytes(data)
    return _Decoder(data).module()


def _err(reason: str, pos: int) -> MalformedError:
    return MalformedError(reason, pos)


class _Decoder:
    __slots__ = (
        "data",
        "pos",
        "end",
        "m",
        "uses_data_idx",
        "func_count",
        "code_count",
        "custom_cache",
    )

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.m = ir.Module()
        self.uses_data_idx = False
        self.func_count: int | None = None
        self.code_count: int | None = None
        self.custom_cache: dict[int, dict[bytes, ir.CustomSection]] = {}

    # -- primitive reads on self.pos / self.end ------------------------------

    def eof(self, pos: int) -> MalformedError:
        if self.end < len(self.data):
            return _err("unexpected end of section or function", pos)
        return _err("unexpected end", pos)

    def byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self.eof(pos)
        self.pos = pos + 1
        return self.data[pos]

    def u32(self) -> int:
        pos = self.pos
        if pos < self.end:
            b = self.data[pos]
            if b < 0x80:
                self.pos = pos + 1
                return b
        v, self.pos = read_unsigned(self.data, pos, self.end, 32)
        return v

    def count(self, min_size: int = 1) -> int:
        """A vector length, checked against the bytes left (each element >= min_size)."""
        start = self.pos
        n = self.u32()
        if n * min_size > self.end - self.pos:
            raise _err("length out of bounds", start)
        return n

    def raw(self, n: int) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise _err("length out of bounds", pos)
        self.pos = pos + n
        return self.data[pos : pos + n]

    def name(self) -> str:
        start = self.pos
        n = self.u32()
        raw = self.raw(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _err("malformed UTF-8 encoding", start) from None

    def valtype(self) -> str:
        b = self.byte()
        t = VALTYPE_BY_BYTE.get(b)
        if t is None:
            raise _err("malformed value type", self.pos - 1)
        return t

    def reftype(self) -> str:
        b = self.byte()
        t = REFTYPE_BY_BYTE.get(b)
        if t is None:
            raise _err("malformed reference type", self.pos - 1)
        return t

    def limits(self) -> ir.Limits:
        flag, self.pos = read_unsigned(self.data, self.pos, self.end, 1)
        lo = self.u32()
        if flag:
            return ir.Limits(lo, self.u32())
        return ir.Limits(lo)

    def tabletype(self) -> ir.TableType:
        t = self.reftype()
        return ir.TableType(t, self.limits())

    def globaltype(self) -> ir.GlobalType:
        t = self.valtype()
        b = self.byte()
        if b > 1:
            raise _err("malformed mutability", self.pos - 1)
        return ir.GlobalType(t, b == 1)

    def expr(self) -> ir.Expr:
        body, self.pos = self.instrs(self.pos, self.end)
        return body

    # -- module structure ------------------------------------------------------

    def module(self) -> ir.Module:
        data = self.data
        n = len(data)
        if n < 4:
            raise _err("unexpected end", n)
        if data[:4] != MAGIC:
            raise _err("magic header not detected", 0)
        if n < 8:
            raise _err("unexpected end", n)
        if data[4:8] != VERSION:
            raise _err("unknown binary version", 4)
        pos = 8
        last_rank = -1
        last_id = 0
        m = self.m
        while pos < n:
            sid = data[pos]
            if sid == 0:
                nxt = self.small_customs(pos, last_id)
                if nxt != pos:
                    pos = nxt
                    continue
            self.end = n
            self.pos = pos + 1
            if sid > 12:
                raise _err("malformed section id", pos)
            section = SECTION_NAMES[sid]
            try:
                size = self.u32()
                body_start = self.pos
                if size > n - body_start:
                    raise _err("length out of bounds", body_start)
                self.end = body_end = body_start + size
                if sid == 0:
                    self.custom(last_id)
                else:
                    rank = _RANK[sid]
                    if rank <= last_rank:
                        raise _err("unexpected content after last section", pos)
                    last_rank = rank
                    last_id = sid
                    self.section(sid)
                if self.pos != body_end:
                    raise _err("section size mismatch", self.pos)
            except MalformedError as e:
                if e.section is None:
                    raise MalformedError(e.reason, e.offset, section) from None
                raise
            pos = body_end
        self.end = n
        funcs = self.func_count or 0
        codes = self.code_count or 0
        if funcs != codes:
            raise _err("function and code section have inconsistent lengths", n)
        if m.data_count is not None and m.data_count != len(m.datas):
            raise _err("data count and data section have inconsistent lengths", n)
        return m

    def section(self, sid: int) -> None:
        m = self.m
        if sid == 1:
            n = self.count(3)
            try_alloc(n * 8, _MODULE)
            types = m.types
            for _ in range(n):
                b = self.byte()
                if b != 0x60:
                    why = (
                        "integer representation too long" if b & 0x80 else "malformed function type"
                    )
                    raise _err(why, self.pos - 1)
                params = self.valtypes()
                results = self.valtypes()
                types.append(ir.FuncType(params, results))
        elif sid == 2:
            n = self.count(4)
            try_alloc(n * 8, _MODULE)
            imports = m.imports
            for _ in range(n):
                mod = self.name()
                nm = self.name()
                kind = self.byte()
                desc: ir.ImportDesc
                if kind == 0:
                    desc = self.u32()
                elif kind == 1:
                    desc = self.tabletype()
                elif kind == 2:
                    desc = ir.MemoryType(self.limits())
                elif kind == 3:
                    desc = self.globaltype()
                else:
                    raise _err("malformed import kind", self.pos - 1)
                imports.append(ir.Import(mod, nm, EXTERN_KINDS[kind], desc))
        elif sid == 3:
            n = self.count(1)
            try_alloc(n * 8, _MODULE)
            funcs = m.funcs
            for _ in range(n):
                funcs.append(ir.Function(self.u32()))
            self.func_count = n
        elif sid == 4:
            n = self.count(3)
            try_alloc(n * 8, _MODULE)
            for _ in range(n):
                m.tables.append(self.tabletype())
        elif sid == 5:
            n = self.count(2)
            try_alloc(n * 8, _MODULE)
            for _ in range(n):
                m.mems.append(ir.MemoryType(self.limits()))
        elif sid == 6:
            n = self.count(3)
            try_alloc(n * 8, _MODULE)
            for _ in range(n):
                gt = self.globaltype()
                m.globals.append(ir.Global(gt, self.expr()))
        elif sid == 7:
            n = self.count(3)
            try_alloc(n * 8, _MODULE)
            for _ in range(n):
                nm = self.name()
                kind = self.byte()
                if kind > 3:
                    raise _err("malformed export kind", self.pos - 1)
                m.exports.append(ir.Export(nm, EXTERN_KINDS[kind], self.u32()))
        elif sid == 8:
            m.start = self.u32()
        elif sid == 9:
            n = self.count(2)
            try_alloc(n * 8, _MODULE)
            for _ in range(n):
                m.elems.append(self.elem())
        elif sid == 12:
            m.data_count = self.u32()
        elif sid == 10:
            self.code()
        elif sid == 11:
            n = self.count(2)
            try_alloc(n * 8, _MODULE)
            if m.data_count is not None and n != m.data_count:
                raise _err("data count and data section have inconsistent lengths", self.pos)
            for _ in range(n):
                m.datas.append(self.data_segment())

    def valtypes(self) -> tuple[str, ...]:
        n = self.count(1)
        if n == 0:
            return ()
        try_alloc(n * 8, _MODULE)
        return tuple([self.valtype() for _ in range(n)])

    def elem(self) -> ir.Elem:
        start = self.pos
        flags = self.u32()
        if flags > 7:
            raise _err("malformed elements segment kind", start)
        table = 0
        offset: ir.Expr | None = None
        if flags & 1:
            mode = "declarative" if flags & 2 else "passive"
        else:
            mode = "active"
            if flags & 2:
                table = self.u32()
            offset = self.expr()
        init: list[ir.Expr]
        if flags & 4:
            reftype = "funcref" if flags in (4,) else self.reftype()
            n = self.count(2)
            try_alloc(n * 8, _MODULE)
            init = [self.expr() for _ in range(n)]
        else:
            if flags & 3:
                if self.byte() != 0x00:
                    raise _err("malformed element kind", self.pos - 1)
            reftype = "funcref"
            n = self.count(1)
            try_alloc(n * 24, _MODULE)
            init = [[ir.Instr(_REF_FUNC, (self.u32(),)), END] for _ in range(n)]
        return ir.Elem(mode, reftype, init, table, offset)  # type: ignore[arg-type]

    def data_segment(self) -> ir.Data:
        start = self.pos
        flags = self.u32()
        if flags == 1:
            return ir.Data("passive", self.payload())
        if flags == 0:
            mem = 0
        elif flags == 2:
            mem = self.u32()
        else:
            raise _err("malformed data segment kind", start)
        offset = self.expr()
        return ir.Data("active", self.payload(), mem, offset)

    def payload(self) -> bytes:
        """A length-prefixed byte vector, length checked before the allocation request."""
        start = self.pos
        n = self.u32()
        if n > self.end - self.pos:
            raise _err("unexpected end of section or function", start)
        try_alloc(n, _MODULE)
        return self.raw(n)

    def code(self) -> None:
        n = self.count(2)
        self.code_count = n
        funcs = self.m.funcs
        if n != (self.func_count or 0):
            raise _err("function and code section have inconsistent lengths", self.pos)
        sec_end = self.end
        for i in range(n):
            size = self.u32()
            body_start = self.pos
            if size > sec_end - body_start:
                raise _err("length out of bounds", body_start)
            body_end = body_start + size
            self.end = body_end
            nl = self.count(2)
            locals_: list[tuple[int, str]] = []
            if nl:
                try_alloc(nl * 16, _MODULE)
                total = 0
                for _ in range(nl):
                    start = self.pos
                    c = self.u32()
                    total += c
                    if total > _MAX_U32:
                        raise _err("too many locals", start)
                    locals_.append((c, self.valtype()))
            try_alloc((body_end - self.pos) * 8, _MODULE)
            body, pos = self.instrs(self.pos, body_end)
            if pos != body_end:
                raise _err("END opcode expected", pos)
            self.pos = pos
            self.end = sec_end
            f = funcs[i]
            f.locals = locals_
            f.body = body
        if self.uses_data_idx and self.m.data_count is None:
            raise _err("data count section required", self.pos)

    def custom(self, after: int) -> None:
        nm = self.name()
        payload = self.raw(self.end - self.pos)
        try_alloc(len(payload) + 64, _MODULE)
        self.m.customs.append(ir.CustomSection(nm, payload, after))
        if nm == "name":
            self.m.names = _parse_names(payload)

    def small_customs(self, pos: int, after: int) -> int:
        """Decode the run of simple custom sections at ``pos``; return where it stops.

        Simple: size and name length one LEB byte each, a valid UTF-8 name
        other than ``name``. Anything else (including every malformation) is
        left to the general path, which decodes or reports it.
        """
        data = self.data
        n = len(data)
        customs = self.m.customs
        cache = self.custom_cache.setdefault(after, {})
        append = customs.append
        while pos + 2 < n and data[pos] == 0:
            size = data[pos + 1]
            end = pos + 2 + size
            key = data[pos + 1 : end]  # size, name length, name, payload
            sec = cache.get(key)
            if sec is None:
                name_len = data[pos + 2]
                if size >= 0x80 or name_len >= size or end > n:
                    break
                try:
                    nm = data[pos + 3 : pos + 3 + name_len].decode("utf-8")
                except UnicodeDecodeError:
                    break
                if nm == "name":
                    break
                sec = ir.CustomSection(nm, data[pos + 3 + name_len : end], after)
                if len(cache) < _CUSTOM_CACHE_LIMIT:
                    cache[key] = sec
            try_alloc(len(sec.data) + 64, _MODULE)
            append(sec)
            pos = end
        return pos

    # -- instructions ------------------------------------------------------------

    def instrs(self, pos: int, end: int) -> tuple[list[ir.Instr], int]:
        """Decode instructions from ``pos`` up to and including the matching final ``end``."""
        data = self.data
        out: list[ir.Instr] = []
        append = out.append
        depth = 1
        simple = _SIMPLE0
        fast1 = _FAST1
        kinds = _KINDS0
        ops = _OPS0
        while True:
            if pos >= end:
                if end < len(data):
                    raise _err("END opcode expected", pos)
                raise _err("unexpected end", pos)
            op = data[pos]
            pos += 1
            ins = simple[op]
            if ins is not None:
                append(ins)
                if op == 0x0B:
                    depth -= 1
                    if depth == 0:
                        return out, pos
                continue
            f = fast1[op]
            if f is not None and pos < end:
                b = data[pos]
                if b < 0x80:
                    append(f[b])
                    pos += 1
                    continue
            k = kinds[op]
            if k == _K_MEMARG:
                info = ops[op]
                assert info is not None
                imm, pos = self.memarg(pos, end)
                append(ir.Instr(info.name, imm))
            elif k == _K_BLOCK:
                depth += 1
                if pos < end:
                    fb = _BLOCK_FAST.get((op, data[pos]))
                    if fb is not None:
                        append(fb)
                        pos += 1
                        continue
                info = ops[op]
                assert info is not None
                start = pos
                bt, pos = read_signed(data, pos, end, 33)
                if bt < 0:
                    raise _err("malformed value type", start)
                append(ir.Instr(info.name, (bt,)))
            elif k == _K_U32:
                info = ops[op]
                assert info is not None
                v, pos = read_unsigned(data, pos, end, 32)
                append(ir.Instr(info.name, (v,)))
            elif k == _K_I32:
                v, pos = read_signed(data, pos, end, 32)
                append(ir.Instr("i32.const", (v,)))
            elif k == _K_I64:
                v, pos = read_signed(data, pos, end, 64)
                append(ir.Instr("i64.const", (v,)))
            elif k == _K_F32:
                if end - pos < 4:
                    raise self._eof_at(pos, end)
                append(ir.Instr("f32.const", (int.from_bytes(data[pos : pos + 4], "little"),)))
                pos += 4
            elif k == _K_F64:
                if end - pos < 8:
                    raise self._eof_at(pos, end)
                append(ir.Instr("f64.const", (int.from_bytes(data[pos : pos + 8], "little"),)))
                pos += 8
            elif k == _K_PREFIX:
                start = pos - 1
                sub, pos = read_unsigned(data, pos, end, 32)
                key = (op, sub)
                sins = _SIMPLE_PREFIXED.get(key)
                if sins is not None:
                    append(sins)
                    continue
                pinfo = _PREFIXED.get(key)
                if pinfo is None:
                    raise _err("illegal opcode", start)
                if op == 0xFC and sub in (8, 9):
                    self.uses_data_idx = True
                ins, pos = self.other(pinfo, pos, end)
                append(ins)
            elif k == _K_OTHER:
                info = ops[op]
                assert info is not None
                ins, pos = self.other(info, pos, end)
                append(ins)
            else:
                raise _err("illegal opcode", pos - 1)

    def _eof_at(self, pos: int, end: int) -> MalformedError:
        if end < len(self.data):
            return _err("unexpected end of section or function", pos)
        return _err("unexpected end", pos)

    def memarg(self, pos: int, end: int) -> tuple[tuple[int, int], int]:
        data = self.data
        start = pos
        align, pos = read_unsigned(data, pos, end, 32)
        if align >= 32:
            raise _err("malformed memop flags", start)
        if pos < end and data[pos] < 0x80:
            return (align, data[pos]), pos + 1
        offset, pos = read_unsigned(data, pos, end, 32)
        return (align, offset), pos

    def zero(self, pos: int, end: int) -> int:
        if pos >= end:
            raise self._eof_at(pos, end)
        if self.data[pos] != 0:
            raise _err("zero byte expected", pos)
        return pos + 1

    def other(self, info: OpInfo, pos: int, end: int) -> tuple[ir.Instr, int]:
        """Decode the immediate of any instruction (the slow, general path)."""
        data = self.data
        kind = info.imm
        imm: tuple
        if kind == "none":
            return ir.Instr(info.name), pos
        if kind in _U32_KINDS:
            v, pos = read_unsigned(data, pos, end, 32)
            imm = (v,)
        elif kind == "memarg":
            imm, pos = self.memarg(pos, end)
        elif kind == "mem":
            return _MEM_INSTRS[info.name], self.zero(pos, end)
        elif kind == "mem2":
            pos = self.zero(pos, end)
            return _MEM_INSTRS[info.name], self.zero(pos, end)
        elif kind == "br_table":
            start = pos
            n, pos = read_unsigned(data, pos, end, 32)
            if n >= end - pos:
                raise _err("length out of bounds", start)
            labels = []
            for _ in range(n):
                v, pos = read_unsigned(data, pos, end, 32)
                labels.append(v)
            d, pos = read_unsigned(data, pos, end, 32)
            imm = (tuple(labels), d)
        elif kind == "call_indirect" or kind == "table_init" or kind == "table_copy":
            a, pos = read_unsigned(data, pos, end, 32)
            b, pos = read_unsigned(data, pos, end, 32)
            imm = (a, b)
        elif kind == "memory_init":
            v, pos = read_unsigned(data, pos, end, 32)
            pos = self.zero(pos, end)
            imm = (v,)
        elif kind == "reftype":
            if pos >= end:
                raise self._eof_at(pos, end)
            t = REFTYPE_BY_BYTE.get(data[pos])
            if t is None:
                raise _err("malformed reference type", pos)
            pos += 1
            imm = (t,)
        elif kind == "select_t":
            start = pos
            n, pos = read_unsigned(data, pos, end, 32)
            if n > end - pos:
                raise _err("length out of bounds", start)
            types = []
            for _ in range(n):
                if pos >= end:
                    raise self._eof_at(pos, end)
                t = VALTYPE_BY_BYTE.get(data[pos])
                if t is None:
                    raise _err("malformed value type", pos)
                types.append(t)
                pos += 1
            return ir.Instr("select_t", (tuple(types),)), pos
        elif kind == "v128" or kind == "shuffle":
            if end - pos < 16:
                raise self._eof_at(pos, end)
            imm = (data[pos : pos + 16],)
            pos += 16
        elif kind == "lane":
            if pos >= end:
                raise self._eof_at(pos, end)
            imm = (data[pos],)
            pos += 1
        elif kind == "memarg_lane":
            (align, offset), pos = self.memarg(pos, end)
            if pos >= end:
                raise self._eof_at(pos, end)
            imm = (align, offset, data[pos])
            pos += 1
        elif kind == "blocktype" or kind == "i32" or kind == "i64":
            bits = {"blocktype": 33, "i32": 32, "i64": 64}[kind]
            v, pos = read_signed(data, pos, end, bits)
            imm = (v,)
        elif kind == "f32" or kind == "f64":
            w = 4 if kind == "f32" else 8
            if end - pos < w:
                raise self._eof_at(pos, end)
            imm = (int.from_bytes(data[pos : pos + w], "little"),)
            pos += w
        else:  # pragma: no cover - every kind of the table is handled above
            raise _err("illegal opcode", pos)
        return ir.Instr(info.name, imm), pos


def _parse_names(payload: bytes) -> ir.NameMap:
    """Best-effort parse of the ``name`` section: stop quietly at the first problem."""
    names = ir.NameMap()
    r = _Decoder(payload)
    try:
        last_id = -1
        while r.pos < len(payload):
            r.end = len(payload)
            sub = r.byte()
            size = r.u32()
            if size > r.end - r.pos:
                break
            sub_end = r.pos + size
            r.end = sub_end
            if sub <= last_id:
                break
            last_id = sub
            if sub == 0:
                names.module = r.name()
            elif sub == 1:
                n = r.count(2)
                try_alloc(n * 24, _MODULE)
                for _ in range(n):
                    idx = r.u32()
                    names.functions[idx] = r.name()
            elif sub == 2:
                n = r.count(2)
                try_alloc(n * 24, _MODULE)
                for _ in range(n):
                    fidx = r.u32()
                    k = r.count(2)
                    try_alloc(k * 24, _MODULE)
                    locs: dict[int, str] = {}
                    for _ in range(k):
                        li = r.u32()
                        locs[li] = r.name()
                    names.locals[fidx] = locs
            r.pos = sub_end
    except MalformedError:
        pass  # a broken name section never makes the module malformed
    return names
