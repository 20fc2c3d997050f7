"""Differential tests of ``wasmrt.compile.simd`` against Wasmtime (the oracle).

One WAT module holds a function per (SIMD instruction, immediate): it loops
over ``n`` input slots, loads the operands from memory, applies the
instruction and stores the result. Each test writes edge + seeded random
inputs, runs the function in wasmtime once, and compares every result with
``SIMD_OPS`` / ``SIMD_MEMORY_OPS`` bit for bit. Float-arithmetic lanes accept
"both NaN" (the spec lets the NaN bits vary); our own NaNs must still follow
the spec's canonical/arithmetic rule.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wasmrt.compile.simd import SIMD_MEMORY_OPS, SIMD_MEMORY_SIZES, SIMD_OPS
from wasmrt.opcodes import ALL_OPS, OpInfo
from wasmrt.vm.values import f32_from_bits, f32_to_bits, f64_from_bits, f64_to_bits

wasmtime = pytest.importorskip("wasmtime")

SIMD_ROWS = [op for op in ALL_OPS if op.prefix == 0xFD]
PURE_ROWS = [op for op in SIMD_ROWS if op.align < 0]
MEM_ROWS = [op for op in SIMD_ROWS if op.align >= 0]

N = 512  # input slots per function call
SLOT = 16
IN = (0, N * SLOT, 2 * N * SLOT)  # operand arrays
OUT = 3 * N * SLOT
DATA = 4 * N * SLOT  # scratch region for the memory instructions
DATA_LEN = 4096
assert DATA + DATA_LEN <= 65536

LANES = {"i8x16": 16, "i16x8": 8, "i32x4": 4, "i64x2": 2, "f32x4": 4, "f64x2": 2}
WIDTH = {"i8x16": 8, "i16x8": 16, "i32x4": 32, "i64x2": 64, "f32x4": 32, "f64x2": 64}

#: ops whose float result lanes may carry any NaN (arithmetic NaN rules apply)
FLOAT_ARITH = {
    f"{s}.{n}"
    for s in ("f32x4", "f64x2")
    for n in ("add", "sub", "mul", "div", "min", "max", "sqrt", "ceil", "floor", "trunc", "nearest")
} | {"f32x4.demote_f64x2_zero", "f64x2.promote_low_f32x4"}


def _f32b(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


def _f64b(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


F32_EDGES = [
    0x00000000, 0x80000000, 0x7F800000, 0xFF800000,  # zeros, infinities
    0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FA00000, 0x7FC12345, 0xFFFFFFFF,  # NaNs
    0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF,
    0x3F800000, 0xBF800000, 0x3F000000, 0xBF000000, 0x3F000001, 0x3EFFFFFF, 0xBEFFFFFF,
    0x3FC00000, 0x40200000, 0xC0200000, 0x40600000,  # 1.5, 2.5, -2.5, 3.5
    0x4B000000, 0x4AFFFFFF, 0x4B7FFFFF, 0xCAFFFFFF,  # around 2**23
    0x4F000000, 0xCF000000, 0x4EFFFFFF, 0xCF000001, 0x4F800000, 0x4F7FFFFF, 0xBF7FFFFF,
]  # fmt: skip
F64_EDGES = [
    0, 1 << 63, 0x7FF0000000000000, 0xFFF0000000000000,
    0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0x7FF4000000000000,
    0x7FF8000000000001, 0xFFF0000000000005, 0x7FFFFFFFFFFFFFFF,
    1, 0x800FFFFFFFFFFFFF, 0x000FFFFFFFFFFFFF, 0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF,
] + [
    _f64b(x)
    for x in (
        1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 0.49999999999999994, -0.9, 0.9,
        2.0**31, -(2.0**31), 2.0**31 - 1, 2.0**31 - 0.5, -(2.0**31) - 1, -(2.0**31) - 0.5,
        2.0**32, 2.0**32 - 1, 2.0**32 - 0.5, 2.0**32 + 0.5, 2.0**52, 2.0**52 - 0.5, 2.0**53,
        3.4028234663852886e38, 3.4028235677973366e38, 3.4028235677973362e38, 1e39, -1e39,
        2.0**-149, 2.0**-150, -(2.0**-150), 1.5 * 2.0**-149, 2.0**-151, 1e-300, -1e-300, 1e300,
        float(0x1000001), float(0x1000003), 0.1, -0.1,
    )
]  # fmt: skip


def _int_edges(w: int) -> list[int]:
    m = (1 << w) - 1
    h = 1 << (w - 1)
    vals = [0, 1, 2, 3, m, m - 1, h, h - 1, h + 1, m // 3, (m // 3) * 2, 0x7F, 0x80, 0xFF, 0x100]
    vals += [0x7FFF, 0x8000, 0xFFFF, 0x4000, 0xC000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
    return sorted({v for v in vals if v <= m})


def _lane_value(rng: random.Random, kind: str) -> int:
    """One lane's bits for lane kind ``kind`` (a shape like 'f32x4' or 'i16x8')."""
    w = WIDTH[kind]
    r = rng.random()
    if kind == "f32x4":
        if r < 0.45:
            return rng.choice(F32_EDGES)
        if r < 0.7:
            return rng.getrandbits(32)
        if r < 0.85:
            return _f32b(rng.randint(-40, 40) / 2)
        x = rng.uniform(-1, 1) * 2.0 ** rng.randint(-30, 34)
        return _f32b(x)
    if kind == "f64x2":
        if r < 0.45:
            return rng.choice(F64_EDGES)
        if r < 0.7:
            return rng.getrandbits(64)
        if r < 0.85:
            return _f64b(rng.randint(-40, 40) / 2)
        return _f64b(rng.uniform(-1, 1) * 2.0 ** rng.randint(-30, 70))
    if r < 0.5:
        return rng.choice(_int_edges(w))
    if r < 0.6:
        return rng.randint(0, 4) if rng.random() < 0.5 else (1 << w) - rng.randint(1, 5)
    return rng.getrandbits(w)


def _vector(rng: random.Random, kind: str, like: int | None = None) -> int:
    """A v128 of ``kind`` lanes; with ``like``, some lanes repeat it (ties, equality)."""
    if kind == "v128":
        kind = rng.choice(list(LANES))
    w = WIDTH[kind]
    m = (1 << w) - 1
    v = 0
    for i in range(LANES[kind]):
        r = rng.random() if like is not None else 1.0
        if r < 0.3:
            lane = (like >> (w * i)) & m  # type: ignore[operator]
            if r < 0.1:
                lane ^= 1 << (w - 1)  # -0 vs +0, NaN vs -NaN, min_s vs max_s...
        else:
            lane = _lane_value(rng, kind)
        v |= lane << (w * i)
    return v


def _input_kind(name: str) -> str:
    shape, _, rest = name.partition(".")
    for s in LANES:
        if f"_{s}" in rest:
            return s
    return shape


def _scalar(rng: random.Random, ty: str) -> int:
    if ty == "i32":
        r = rng.random()
        if r < 0.4:
            return rng.randint(0, 140)
        if r < 0.6:
            return rng.choice(_int_edges(32))
        return rng.getrandbits(32)
    if ty == "i64":
        return rng.choice(_int_edges(64)) if rng.random() < 0.4 else rng.getrandbits(64)
    if ty == "f32":
        return _lane_value(rng, "f32x4")
    return _lane_value(rng, "f64x2")


def _make_inputs(op: OpInfo, rng: random.Random, n: int) -> list[list[int]]:
    """``n`` rows of operand bit patterns (v128 / integer bits), in stack order."""
    assert op.sig is not None
    kind = _input_kind(op.name)
    rows = []
    for _ in range(n):
        row: list[int] = []
        for ty in op.sig[0]:
            if ty == "v128":
                if op.name == "v128.bitselect" and len(row) == 2:
                    row.append(_vector(rng, "i32x4" if rng.random() < 0.5 else "i8x16"))
                else:
                    row.append(_vector(rng, kind, row[0] if row else None))
            else:
                row.append(_scalar(rng, ty))
        rows.append(row)
    return rows


def _to_core(ty: str, bits: int) -> Any:
    if ty == "f32":
        return f32_from_bits(bits)
    if ty == "f64":
        return f64_from_bits(bits)
    return bits


def _from_core(ty: str, value: Any) -> int:
    if ty == "f32":
        return f32_to_bits(value)
    if ty == "f64":
        return f64_to_bits(value)
    assert isinstance(value, int), value
    return value


# ---------------------------------------------------------------- the oracle module


@dataclass(frozen=True)
class Case:
    export: str
    op: OpInfo
    imm: Any  # lane index, shuffle bytes, const bytes, or None


def _shuffles() -> list[bytes]:
    rng = random.Random(1234)
    pats = [bytes(range(16)), bytes(range(31, 15, -1)), bytes([0] * 16), bytes([31] * 16)]
    pats += [bytes(rng.randrange(32) for _ in range(16)) for _ in range(6)]
    return pats


def _consts() -> list[bytes]:
    rng = random.Random(99)
    return [bytes(16), b"\xff" * 16, bytes(range(16)), bytes.fromhex("0100807f" * 4)] + [
        rng.randbytes(16) for _ in range(4)
    ]


def _imm_variants(op: OpInfo) -> list[Any]:
    if op.imm in ("lane", "memarg_lane"):
        shape = op.name.split(".")[0]
        if shape == "v128":  # v128.loadN_lane / storeN_lane
            bits = int(op.name.split("_")[0].removeprefix("v128.load").removeprefix("v128.store"))
            return list(range(128 // bits))
        return list(range(LANES[shape]))
    if op.imm == "shuffle":
        return list(_shuffles())
    if op.imm == "v128":
        return list(_consts())
    return [None]


LOAD = {
    "v128": "v128.load",
    "i32": "i32.load",
    "i64": "i64.load",
    "f32": "f32.load",
    "f64": "f64.load",
}
STORE = {k: v.replace("load", "store") for k, v in LOAD.items()}


def _imm_text(op: OpInfo, imm: Any) -> str:
    if imm is None:
        return ""
    if op.imm == "v128":
        return "i8x16 " + " ".join(str(b) for b in imm)
    if op.imm == "shuffle":
        return " ".join(str(b) for b in imm)
    return str(imm)


def _body(op: OpInfo, imm: Any) -> str:
    p = "(local.get $p)"
    assert op.sig is not None
    params, results = op.sig
    if op.align < 0:
        args = " ".join(f"({LOAD[ty]} offset={IN[k]} {p})" for k, ty in enumerate(params))
        expr = f"({op.name} {_imm_text(op, imm)} {args})"
        return f"({STORE[results[0]]} offset={OUT} {p} {expr})"
    # memory ops: operand 0 is the effective address, operand 1 (if any) a v128
    args = f"(i32.load offset={IN[0]} {p})"
    if len(params) > 1:
        args += f" (v128.load offset={IN[1]} {p})"
    expr = f"({op.name} {_imm_text(op, imm)} {args})"
    return f"(v128.store offset={OUT} {p} {expr})" if results else expr


def _module_text(cases: list[Case]) -> str:
    funcs = []
    for c in cases:
        funcs.append(
            f"""  (func (export "{c.export}") (param $n i32) (local $i i32) (local $p i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $p (i32.shl (local.get $i) (i32.const 4)))
      {_body(c.op, c.imm)}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))"""
        )
    return '(module\n  (memory (export "mem") 1)\n' + "\n".join(funcs) + "\n)\n"


class Oracle:
    def __init__(self, wasm: bytes, cases: list[Case]) -> None:
        self.engine = wasmtime.Engine()
        self.store = wasmtime.Store(self.engine)
        module = wasmtime.Module(self.engine, wasm)
        self.instance = wasmtime.Instance(self.store, module, [])
        exports = self.instance.exports(self.store)
        self.mem = exports["mem"]
        self.funcs = {c.export: exports[c.export] for c in cases}

    def write(self, addr: int, data: bytes) -> None:
        self.mem.write(self.store, data, addr)

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.mem.read(self.store, addr, addr + n))

    def run(self, export: str, rows: list[list[int]]) -> list[int]:
        n = len(rows)
        for k in range(len(rows[0])):
            self.write(IN[k], b"".join(r[k].to_bytes(SLOT, "little") for r in rows))
        self.write(OUT, bytes(n * SLOT))
        self.funcs[export](self.store, n)
        out = self.read(OUT, n * SLOT)
        return [int.from_bytes(out[i * SLOT : (i + 1) * SLOT], "little") for i in range(n)]


def _all_cases() -> dict[str, list[Case]]:
    by_op: dict[str, list[Case]] = {}
    k = 0
    for op in SIMD_ROWS:
        for imm in _imm_variants(op):
            by_op.setdefault(op.name, []).append(Case(f"f{k}", op, imm))
            k += 1
    return by_op


CASES = _all_cases()


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    cases = [c for cs in CASES.values() for c in cs]
    d: Path = tmp_path_factory.mktemp("simd_oracle")
    (d / "simd.wat").write_text(_module_text(cases))
    tool = Path(sys.executable).with_name("wasm-tools")
    subprocess.run(
        [str(tool), "parse", str(d / "simd.wat"), "-o", str(d / "simd.wasm")],
        check=True,
        capture_output=True,
    )
    return Oracle((d / "simd.wasm").read_bytes(), cases)


# ---------------------------------------------------------------- comparison


def _is_nan(bits: int, w: int) -> bool:
    exp = ((1 << (8 if w == 32 else 11)) - 1) << (23 if w == 32 else 52)
    frac = (1 << (23 if w == 32 else 52)) - 1
    return bits & exp == exp and bits & frac != 0


def _is_canonical_nan(bits: int, w: int) -> bool:
    return bits & ~(1 << (w - 1)) == (0x7FC00000 if w == 32 else 0x7FF8000000000000)


def _nan_ok(ours: int, w: int, in_lanes: list[int], in_w: int) -> bool:
    """The spec's NaN rule: canonical if every NaN input is canonical, else arithmetic."""
    quiet = 1 << (22 if w == 32 else 51)
    if not ours & quiet:
        return False
    if all(_is_canonical_nan(x, in_w) for x in in_lanes if _is_nan(x, in_w)):
        return _is_canonical_nan(ours, w)
    return True


def _lanes(v: int, w: int) -> list[int]:
    m = (1 << w) - 1
    return [(v >> (w * i)) & m for i in range(128 // w)]


def _results_match(op: OpInfo, row: list[int], ours: int, theirs: int) -> bool:
    if ours == theirs and op.name not in FLOAT_ARITH:
        return True
    if op.name not in FLOAT_ARITH:
        return False
    w = WIDTH[op.name.split(".")[0]]
    in_w = WIDTH[_input_kind(op.name)]
    for i, (a, b) in enumerate(zip(_lanes(ours, w), _lanes(theirs, w), strict=True)):
        ins = [_lanes(x, in_w)[i] for x in row if i < 128 // in_w]
        if _is_nan(a, w):
            if not (_is_nan(b, w) and _nan_ok(a, w, ins, in_w)):
                return False
        elif a != b:
            return False
    return True


def _fail_report(name: str, bad: list[tuple[Any, ...]]) -> str:
    lines = [f"{name}: {len(bad)} mismatches; first ones (imm, operands, ours, wasmtime):"]
    for imm, row, ours, theirs in bad[:6]:
        ops = ", ".join(f"{x:#x}" for x in row)
        lines.append(f"  imm={imm!r} ({ops}) -> ours {ours:#034x} wasmtime {theirs:#034x}")
    return "\n".join(lines)


def _seeded(name: str) -> random.Random:
    return random.Random(zlib.crc32(name.encode()))


# ---------------------------------------------------------------- tests


def test_tables_cover_every_simd_instruction() -> None:
    assert len(SIMD_ROWS) == 236
    assert set(SIMD_OPS) == {op.name for op in PURE_ROWS}
    assert set(SIMD_MEMORY_OPS) == {op.name for op in MEM_ROWS}
    for op in MEM_ROWS:
        assert SIMD_MEMORY_SIZES[op.name] == 1 << op.align, op.name


def test_bit_exact_f32_paths_keep_signalling_nans() -> None:
    snan = f32_from_bits(0x7FA00001)
    v = SIMD_OPS["f32x4.splat"](snan)
    assert v == 0x7FA00001 * 0x00000001_00000001_00000001_00000001
    assert f32_to_bits(SIMD_OPS["f32x4.extract_lane"](v, 2)) == 0x7FA00001
    w = SIMD_OPS["f32x4.replace_lane"](0, f32_from_bits(0xFF800003), 3)
    assert w == 0xFF800003 << 96
    assert SIMD_OPS["f32x4.neg"](v) == v ^ (0x80000000 * 0x00000001_00000001_00000001_00000001)
    assert SIMD_OPS["f32x4.pmin"](v, 0) == v  # pmin(a, b) = b < a ? b : a keeps a's NaN bits
    assert SIMD_OPS["v128.const"](bytes(range(16))) == int.from_bytes(bytes(range(16)), "little")
    assert SIMD_OPS["v128.const"](5) == 5


@pytest.mark.parametrize("name", [op.name for op in PURE_ROWS])
def test_pure_op_matches_wasmtime(oracle: Oracle, name: str) -> None:
    fn: Callable[..., Any] = SIMD_OPS[name]
    cases = CASES[name]
    op = cases[0].op
    assert op.sig is not None
    params, results = op.sig
    rng = _seeded(name)
    per_case = max(64, N // len(cases)) if len(cases) > 1 else N
    bad: list[tuple[Any, ...]] = []
    checked = 0
    for case in cases:
        rows = _make_inputs(op, rng, per_case) if params else [[] for _ in range(per_case)]
        theirs = oracle.run(case.export, rows)
        for row, t in zip(rows, theirs, strict=True):
            args = [_to_core(ty, bits) for ty, bits in zip(params, row, strict=True)]
            if case.imm is not None:
                args.append(case.imm)
            ours = _from_core(results[0], fn(*args))
            if results[0] != "v128":
                t &= (1 << (32 if results[0] in ("i32", "f32") else 64)) - 1
            if not _results_match(op, row, ours, t):
                bad.append((case.imm, row, ours, t))
            checked += 1
    assert checked >= 64
    assert not bad, _fail_report(name, bad)


def _memory_image(rng: random.Random) -> bytes:
    return bytes(rng.choice((0, 0xFF, 0x80, 0x7F, rng.randrange(256))) for _ in range(DATA_LEN))


@pytest.mark.parametrize("name", [op.name for op in MEM_ROWS])
def test_memory_op_matches_wasmtime(oracle: Oracle, name: str) -> None:
    fn = SIMD_MEMORY_OPS[name]
    size = SIMD_MEMORY_SIZES[name]
    cases = CASES[name]
    op = cases[0].op
    assert op.sig is not None
    is_store = not op.sig[1]
    rng = _seeded(name)
    per_case = 64 if is_store else max(64, N // len(cases))
    bad: list[tuple[Any, ...]] = []
    for case in cases:
        image = _memory_image(rng)
        oracle.write(DATA, image)
        rows = []
        for _ in range(per_case):
            addr = DATA + rng.choice((0, DATA_LEN - size, rng.randrange(DATA_LEN - size + 1)))
            row = [addr]
            if len(op.sig[0]) > 1:
                row.append(_vector(rng, "v128"))
            rows.append(row)
        theirs = oracle.run(case.export, rows)
        mem = bytearray(64 * 1024)
        mem[DATA : DATA + DATA_LEN] = image
        for row, t in zip(rows, theirs, strict=True):
            args: list[Any] = [mem, *row]
            if case.imm is not None:
                args.append(case.imm)
            ours = fn(*args)
            if is_store:
                assert ours is None
            elif ours != t:
                bad.append((case.imm, row, ours, t))
        if is_store:
            got = oracle.read(DATA, DATA_LEN)
            want = bytes(mem[DATA : DATA + DATA_LEN])
            assert got == want, f"{name} lane={case.imm}: memory differs after {per_case} stores"
    assert not bad, _fail_report(name, bad)
