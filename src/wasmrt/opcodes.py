"""The Wasm 2.0 instruction table: one row per instruction, shared by every layer.

Invariants:
- ``BY_NAME[name]`` and ``BY_CODE[(prefix, code)]`` describe the same ``OpInfo``;
  ``prefix`` is 0 for single-byte opcodes, 0xFC or 0xFD for prefixed ones.
- ``imm`` names the immediate kind; the IR value of each kind is documented in
  ``IMMEDIATE_KINDS`` and is what ``wasmrt.ir.Instr.imm`` holds.
- ``sig`` is ``(params, results)`` for instructions with a fixed operand type,
  or ``None`` for the ones the validator types by hand (control, parametric,
  variable, reference and table instructions).
- ``align`` is the natural alignment (log2 bytes) of memory instructions, else -1.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Immediate kind -> what ``Instr.imm`` holds for it.
IMMEDIATE_KINDS: dict[str, str] = {
    "none": "()",
    "blocktype": "(bt,) where bt is None (empty), a valtype str, or an int type index",
    "label": "(labelidx,)",
    "br_table": "(tuple_of_labelidx, default_labelidx)",
    "func": "(funcidx,)",
    "call_indirect": "(typeidx, tableidx)",
    "local": "(localidx,)",
    "global": "(globalidx,)",
    "table": "(tableidx,)",
    "memarg": "(align_log2, offset)",
    "mem": "() -- one reserved 0x00 byte in the binary",
    "mem2": "() -- two reserved 0x00 bytes in the binary (memory.copy)",
    "i32": "(value,) signed, -2**31 <= value < 2**31",
    "i64": "(value,) signed, -2**63 <= value < 2**63",
    "f32": "(bits,) raw IEEE bits as an unsigned int (NaN payloads kept)",
    "f64": "(bits,) raw IEEE bits as an unsigned int (NaN payloads kept)",
    "reftype": "(reftype,) 'funcref' or 'externref'",
    "select_t": "(tuple_of_valtypes,)",
    "data": "(dataidx,)",
    "memory_init": "(dataidx,) plus one reserved 0x00 byte in the binary",
    "elem": "(elemidx,)",
    "table_init": "(elemidx, tableidx)",
    "table_copy": "(dst_tableidx, src_tableidx)",
    "v128": "(bytes16,) little-endian lane bytes",
    "shuffle": "(bytes16,) lane indices, each < 32",
    "lane": "(laneidx,)",
    "memarg_lane": "(align_log2, offset, laneidx)",
}


@dataclass(frozen=True, slots=True)
class OpInfo:
    name: str
    prefix: int
    code: int
    imm: str
    sig: tuple[tuple[str, ...], tuple[str, ...]] | None
    align: int = -1


# Rows: CODE NAME IMM[:align] SIG   where SIG is "params>results" or "*".
_MVP = """
0x00 unreachable none *
0x01 nop none *
0x02 block blocktype *
0x03 loop blocktype *
0x04 if blocktype *
0x05 else none *
0x0B end none *
0x0C br label *
0x0D br_if label *
0x0E br_table br_table *
0x0F return none *
0x10 call func *
0x11 call_indirect call_indirect *
0x1A drop none *
0x1B select none *
0x1C select select_t *
0x20 local.get local *
0x21 local.set local *
0x22 local.tee local *
0x23 global.get global *
0x24 global.set global *
0x25 table.get table *
0x26 table.set table *
0x28 i32.load memarg:2 i32>i32
0x29 i64.load memarg:3 i32>i64
0x2A f32.load memarg:2 i32>f32
0x2B f64.load memarg:3 i32>f64
0x2C i32.load8_s memarg:0 i32>i32
0x2D i32.load8_u memarg:0 i32>i32
0x2E i32.load16_s memarg:1 i32>i32
0x2F i32.load16_u memarg:1 i32>i32
0x30 i64.load8_s memarg:0 i32>i64
0x31 i64.load8_u memarg:0 i32>i64
0x32 i64.load16_s memarg:1 i32>i64
0x33 i64.load16_u memarg:1 i32>i64
0x34 i64.load32_s memarg:2 i32>i64
0x35 i64.load32_u memarg:2 i32>i64
0x36 i32.store memarg:2 i32,i32>
0x37 i64.store memarg:3 i32,i64>
0x38 f32.store memarg:2 i32,f32>
0x39 f64.store memarg:3 i32,f64>
0x3A i32.store8 memarg:0 i32,i32>
0x3B i32.store16 memarg:1 i32,i32>
0x3C i64.store8 memarg:0 i32,i64>
0x3D i64.store16 memarg:1 i32,i64>
0x3E i64.store32 memarg:2 i32,i64>
0x3F memory.size mem >i32
0x40 memory.grow mem i32>i32
0x41 i32.const i32 >i32
0x42 i64.const i64 >i64
0x43 f32.const f32 >f32
0x44 f64.const f64 >f64
0xD0 ref.null reftype *
0xD1 ref.is_null none *
0xD2 ref.func func *
"""

_PREFIX_FC = """
0 i32.trunc_sat_f32_s none f32>i32
1 i32.trunc_sat_f32_u none f32>i32
2 i32.trunc_sat_f64_s none f64>i32
3 i32.trunc_sat_f64_u none f64>i32
4 i64.trunc_sat_f32_s none f32>i64
5 i64.trunc_sat_f32_u none f32>i64
6 i64.trunc_sat_f64_s none f64>i64
7 i64.trunc_sat_f64_u none f64>i64
8 memory.init memory_init i32,i32,i32>
9 data.drop data >
10 memory.copy mem2 i32,i32,i32>
11 memory.fill mem i32,i32,i32>
12 table.init table_init i32,i32,i32>
13 elem.drop elem >
14 table.copy table_copy i32,i32,i32>
15 table.grow table *
16 table.size table >i32
17 table.fill table *
"""

_V = "v128"
_SIMD = """
0 v128.load memarg:4 i32>v128
1 v128.load8x8_s memarg:3 i32>v128
2 v128.load8x8_u memarg:3 i32>v128
3 v128.load16x4_s memarg:3 i32>v128
4 v128.load16x4_u memarg:3 i32>v128
5 v128.load32x2_s memarg:3 i32>v128
6 v128.load32x2_u memarg:3 i32>v128
7 v128.load8_splat memarg:0 i32>v128
8 v128.load16_splat memarg:1 i32>v128
9 v128.load32_splat memarg:2 i32>v128
10 v128.load64_splat memarg:3 i32>v128
11 v128.store memarg:4 i32,v128>
12 v128.const v128 >v128
13 i8x16.shuffle shuffle v128,v128>v128
14 i8x16.swizzle none v128,v128>v128
15 i8x16.splat none i32>v128
16 i16x8.splat none i32>v128
17 i32x4.splat none i32>v128
18 i64x2.splat none i64>v128
19 f32x4.splat none f32>v128
20 f64x2.splat none f64>v128
21 i8x16.extract_lane_s lane v128>i32
22 i8x16.extract_lane_u lane v128>i32
23 i8x16.replace_lane lane v128,i32>v128
24 i16x8.extract_lane_s lane v128>i32
25 i16x8.extract_lane_u lane v128>i32
26 i16x8.replace_lane lane v128,i32>v128
27 i32x4.extract_lane lane v128>i32
28 i32x4.replace_lane lane v128,i32>v128
29 i64x2.extract_lane lane v128>i64
30 i64x2.replace_lane lane v128,i64>v128
31 f32x4.extract_lane lane v128>f32
32 f32x4.replace_lane lane v128,f32>v128
33 f64x2.extract_lane lane v128>f64
34 f64x2.replace_lane lane v128,f64>v128
77 v128.not none v128>v128
78 v128.and none v128,v128>v128
79 v128.andnot none v128,v128>v128
80 v128.or none v128,v128>v128
81 v128.xor none v128,v128>v128
82 v128.bitselect none v128,v128,v128>v128
83 v128.any_true none v128>i32
84 v128.load8_lane memarg_lane:0 i32,v128>v128
85 v128.load16_lane memarg_lane:1 i32,v128>v128
86 v128.load32_lane memarg_lane:2 i32,v128>v128
87 v128.load64_lane memarg_lane:3 i32,v128>v128
88 v128.store8_lane memarg_lane:0 i32,v128>
89 v128.store16_lane memarg_lane:1 i32,v128>
90 v128.store32_lane memarg_lane:2 i32,v128>
91 v128.store64_lane memarg_lane:3 i32,v128>
92 v128.load32_zero memarg:2 i32>v128
93 v128.load64_zero memarg:3 i32>v128
94 f32x4.demote_f64x2_zero none v128>v128
95 f64x2.promote_low_f32x4 none v128>v128
96 i8x16.abs none v128>v128
97 i8x16.neg none v128>v128
98 i8x16.popcnt none v128>v128
99 i8x16.all_true none v128>i32
100 i8x16.bitmask none v128>i32
101 i8x16.narrow_i16x8_s none v128,v128>v128
102 i8x16.narrow_i16x8_u none v128,v128>v128
103 f32x4.ceil none v128>v128
104 f32x4.floor none v128>v128
105 f32x4.trunc none v128>v128
106 f32x4.nearest none v128>v128
107 i8x16.shl none v128,i32>v128
108 i8x16.shr_s none v128,i32>v128
109 i8x16.shr_u none v128,i32>v128
110 i8x16.add none v128,v128>v128
111 i8x16.add_sat_s none v128,v128>v128
112 i8x16.add_sat_u none v128,v128>v128
113 i8x16.sub none v128,v128>v128
114 i8x16.sub_sat_s none v128,v128>v128
115 i8x16.sub_sat_u none v128,v128>v128
116 f64x2.ceil none v128>v128
117 f64x2.floor none v128>v128
118 i8x16.min_s none v128,v128>v128
119 i8x16.min_u none v128,v128>v128
120 i8x16.max_s none v128,v128>v128
121 i8x16.max_u none v128,v128>v128
122 f64x2.trunc none v128>v128
123 i8x16.avgr_u none v128,v128>v128
124 i16x8.extadd_pairwise_i8x16_s none v128>v128
125 i16x8.extadd_pairwise_i8x16_u none v128>v128
126 i32x4.extadd_pairwise_i16x8_s none v128>v128
127 i32x4.extadd_pairwise_i16x8_u none v128>v128
128 i16x8.abs none v128>v128
129 i16x8.neg none v128>v128
130 i16x8.q15mulr_sat_s none v128,v128>v128
131 i16x8.all_true none v128>i32
132 i16x8.bitmask none v128>i32
133 i16x8.narrow_i32x4_s none v128,v128>v128
134 i16x8.narrow_i32x4_u none v128,v128>v128
135 i16x8.extend_low_i8x16_s none v128>v128
136 i16x8.extend_high_i8x16_s none v128>v128
137 i16x8.extend_low_i8x16_u none v128>v128
138 i16x8.extend_high_i8x16_u none v128>v128
139 i16x8.shl none v128,i32>v128
140 i16x8.shr_s none v128,i32>v128
141 i16x8.shr_u none v128,i32>v128
142 i16x8.add none v128,v128>v128
143 i16x8.add_sat_s none v128,v128>v128
144 i16x8.add_sat_u none v128,v128>v128
145 i16x8.sub none v128,v128>v128
146 i16x8.sub_sat_s none v128,v128>v128
147 i16x8.sub_sat_u none v128,v128>v128
148 f64x2.nearest none v128>v128
149 i16x8.mul none v128,v128>v128
150 i16x8.min_s none v128,v128>v128
151 i16x8.min_u none v128,v128>v128
152 i16x8.max_s none v128,v128>v128
153 i16x8.max_u none v128,v128>v128
155 i16x8.avgr_u none v128,v128>v128
156 i16x8.extmul_low_i8x16_s none v128,v128>v128
157 i16x8.extmul_high_i8x16_s none v128,v128>v128
158 i16x8.extmul_low_i8x16_u none v128,v128>v128
159 i16x8.extmul_high_i8x16_u none v128,v128>v128
160 i32x4.abs none v128>v128
161 i32x4.neg none v128>v128
163 i32x4.all_true none v128>i32
164 i32x4.bitmask none v128>i32
167 i32x4.extend_low_i16x8_s none v128>v128
168 i32x4.extend_high_i16x8_s none v128>v128
169 i32x4.extend_low_i16x8_u none v128>v128
170 i32x4.extend_high_i16x8_u none v128>v128
171 i32x4.shl none v128,i32>v128
172 i32x4.shr_s none v128,i32>v128
173 i32x4.shr_u none v128,i32>v128
174 i32x4.add none v128,v128>v128
177 i32x4.sub none v128,v128>v128
181 i32x4.mul none v128,v128>v128
182 i32x4.min_s none v128,v128>v128
183 i32x4.min_u none v128,v128>v128
184 i32x4.max_s none v128,v128>v128
185 i32x4.max_u none v128,v128>v128
186 i32x4.dot_i16x8_s none v128,v128>v128
188 i32x4.extmul_low_i16x8_s none v128,v128>v128
189 i32x4.extmul_high_i16x8_s none v128,v128>v128
190 i32x4.extmul_low_i16x8_u none v128,v128>v128
191 i32x4.extmul_high_i16x8_u none v128,v128>v128
192 i64x2.abs none v128>v128
193 i64x2.neg none v128>v128
195 i64x2.all_true none v128>i32
196 i64x2.bitmask none v128>i32
199 i64x2.extend_low_i32x4_s none v128>v128
200 i64x2.extend_high_i32x4_s none v128>v128
201 i64x2.extend_low_i32x4_u none v128>v128
202 i64x2.extend_high_i32x4_u none v128>v128
203 i64x2.shl none v128,i32>v128
204 i64x2.shr_s none v128,i32>v128
205 i64x2.shr_u none v128,i32>v128
206 i64x2.add none v128,v128>v128
209 i64x2.sub none v128,v128>v128
213 i64x2.mul none v128,v128>v128
214 i64x2.eq none v128,v128>v128
215 i64x2.ne none v128,v128>v128
216 i64x2.lt_s none v128,v128>v128
217 i64x2.gt_s none v128,v128>v128
218 i64x2.le_s none v128,v128>v128
219 i64x2.ge_s none v128,v128>v128
220 i64x2.extmul_low_i32x4_s none v128,v128>v128
221 i64x2.extmul_high_i32x4_s none v128,v128>v128
222 i64x2.extmul_low_i32x4_u none v128,v128>v128
223 i64x2.extmul_high_i32x4_u none v128,v128>v128
224 f32x4.abs none v128>v128
225 f32x4.neg none v128>v128
227 f32x4.sqrt none v128>v128
228 f32x4.add none v128,v128>v128
229 f32x4.sub none v128,v128>v128
230 f32x4.mul none v128,v128>v128
231 f32x4.div none v128,v128>v128
232 f32x4.min none v128,v128>v128
233 f32x4.max none v128,v128>v128
234 f32x4.pmin none v128,v128>v128
235 f32x4.pmax none v128,v128>v128
236 f64x2.abs none v128>v128
237 f64x2.neg none v128>v128
239 f64x2.sqrt none v128>v128
240 f64x2.add none v128,v128>v128
241 f64x2.sub none v128,v128>v128
242 f64x2.mul none v128,v128>v128
243 f64x2.div none v128,v128>v128
244 f64x2.min none v128,v128>v128
245 f64x2.max none v128,v128>v128
246 f64x2.pmin none v128,v128>v128
247 f64x2.pmax none v128,v128>v128
248 i32x4.trunc_sat_f32x4_s none v128>v128
249 i32x4.trunc_sat_f32x4_u none v128>v128
250 f32x4.convert_i32x4_s none v128>v128
251 f32x4.convert_i32x4_u none v128>v128
252 i32x4.trunc_sat_f64x2_s_zero none v128>v128
253 i32x4.trunc_sat_f64x2_u_zero none v128>v128
254 f64x2.convert_low_i32x4_s none v128>v128
255 f64x2.convert_low_i32x4_u none v128>v128
"""


def _numeric_rows() -> list[tuple[int, str, str]]:
    """Rows for the regular numeric block 0x45..0xC4, generated from its pattern."""
    rows: list[tuple[int, str, str]] = []

    def add(start: int, names: list[str], sig: str) -> int:
        for i, name in enumerate(names):
            rows.append((start + i, name, sig))
        return start + len(names)

    icmp = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
    fcmp = ["eq", "ne", "lt", "gt", "le", "ge"]
    iun = ["clz", "ctz", "popcnt"]
    ibin = ["add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor"]
    ibin += ["shl", "shr_s", "shr_u", "rotl", "rotr"]
    fun = ["abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt"]
    fbin = ["add", "sub", "mul", "div", "min", "max", "copysign"]
    c = add(0x45, ["i32.eqz"], "i32>i32")
    c = add(c, [f"i32.{n}" for n in icmp], "i32,i32>i32")
    c = add(c, ["i64.eqz"], "i64>i32")
    c = add(c, [f"i64.{n}" for n in icmp], "i64,i64>i32")
    c = add(c, [f"f32.{n}" for n in fcmp], "f32,f32>i32")
    c = add(c, [f"f64.{n}" for n in fcmp], "f64,f64>i32")
    c = add(c, [f"i32.{n}" for n in iun], "i32>i32")
    c = add(c, [f"i32.{n}" for n in ibin], "i32,i32>i32")
    c = add(c, [f"i64.{n}" for n in iun], "i64>i64")
    c = add(c, [f"i64.{n}" for n in ibin], "i64,i64>i64")
    c = add(c, [f"f32.{n}" for n in fun], "f32>f32")
    c = add(c, [f"f32.{n}" for n in fbin], "f32,f32>f32")
    c = add(c, [f"f64.{n}" for n in fun], "f64>f64")
    c = add(c, [f"f64.{n}" for n in fbin], "f64,f64>f64")
    conversions = [
        ("i32.wrap_i64", "i64>i32"),
        ("i32.trunc_f32_s", "f32>i32"),
        ("i32.trunc_f32_u", "f32>i32"),
        ("i32.trunc_f64_s", "f64>i32"),
        ("i32.trunc_f64_u", "f64>i32"),
        ("i64.extend_i32_s", "i32>i64"),
        ("i64.extend_i32_u", "i32>i64"),
        ("i64.trunc_f32_s", "f32>i64"),
        ("i64.trunc_f32_u", "f32>i64"),
        ("i64.trunc_f64_s", "f64>i64"),
        ("i64.trunc_f64_u", "f64>i64"),
        ("f32.convert_i32_s", "i32>f32"),
        ("f32.convert_i32_u", "i32>f32"),
        ("f32.convert_i64_s", "i64>f32"),
        ("f32.convert_i64_u", "i64>f32"),
        ("f32.demote_f64", "f64>f32"),
        ("f64.convert_i32_s", "i32>f64"),
        ("f64.convert_i32_u", "i32>f64"),
        ("f64.convert_i64_s", "i64>f64"),
        ("f64.convert_i64_u", "i64>f64"),
        ("f64.promote_f32", "f32>f64"),
        ("i32.reinterpret_f32", "f32>i32"),
        ("i64.reinterpret_f64", "f64>i64"),
        ("f32.reinterpret_i32", "i32>f32"),
        ("f64.reinterpret_i64", "i64>f64"),
        ("i32.extend8_s", "i32>i32"),
        ("i32.extend16_s", "i32>i32"),
        ("i64.extend8_s", "i64>i64"),
        ("i64.extend16_s", "i64>i64"),
        ("i64.extend32_s", "i64>i64"),
    ]
    for name, sig in conversions:
        rows.append((c, name, sig))
        c += 1
    assert c == 0xC5, hex(c)
    return rows


def _simd_pattern_rows() -> list[tuple[int, str, str]]:
    """SIMD comparisons 35..76 follow a regular pattern."""
    rows: list[tuple[int, str, str]] = []
    c = 35
    icmp = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
    for shape in ("i8x16", "i16x8", "i32x4"):
        for n in icmp:
            rows.append((c, f"{shape}.{n}", "v128,v128>v128"))
            c += 1
    for shape in ("f32x4", "f64x2"):
        for n in ("eq", "ne", "lt", "gt", "le", "ge"):
            rows.append((c, f"{shape}.{n}", "v128,v128>v128"))
            c += 1
    assert c == 77
    return rows


def _parse_sig(text: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    if text == "*":
        return None
    params, results = text.split(">")
    return (
        tuple(p for p in params.split(",") if p),
        tuple(r for r in results.split(",") if r),
    )


def _make(prefix: int, code: int, name: str, imm: str, sig: str) -> OpInfo:
    align = -1
    if ":" in imm:
        imm, a = imm.split(":")
        align = int(a)
    return OpInfo(name, prefix, code, imm, _parse_sig(sig), align)


def _build() -> list[OpInfo]:
    ops: list[OpInfo] = []
    for line in _MVP.strip().splitlines():
        code, name, imm, sig = line.split()
        ops.append(_make(0, int(code, 16), name, imm, sig))
    for code_, name, sig in _numeric_rows():
        ops.append(_make(0, code_, name, "none", sig))
    for line in _PREFIX_FC.strip().splitlines():
        code, name, imm, sig = line.split()
        ops.append(_make(0xFC, int(code), name, imm, sig))
    for line in _SIMD.strip().splitlines():
        code, name, imm, sig = line.split()
        ops.append(_make(0xFD, int(code), name, imm, sig))
    for code_, name, sig in _simd_pattern_rows():
        ops.append(_make(0xFD, code_, name, "none", sig))
    return ops


ALL_OPS: tuple[OpInfo, ...] = tuple(_build())

#: name -> info. ``select`` maps to the untyped form; ``select_t`` names the typed one.
BY_NAME: dict[str, OpInfo] = {}
#: (prefix, code) -> info.
BY_CODE: dict[tuple[int, int], OpInfo] = {}
for _op in ALL_OPS:
    BY_CODE[(_op.prefix, _op.code)] = _op
    if _op.name == "select" and _op.imm == "select_t":
        BY_NAME["select_t"] = _op
    else:
        BY_NAME[_op.name] = _op
del _op

assert len(BY_CODE) == len(ALL_OPS), "duplicate opcode"
