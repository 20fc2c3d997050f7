"""Exact semantics of the Wasm 2.0 SIMD (0xFD) instructions over the core representation.

The code generator emits calls to these functions; nothing here traps.

Values (docs/internals.md): a v128 is an unsigned int ``0 <= v < 2**128`` with
lane 0 in the low bits; i32/i64 are unsigned ints in range; an f32 is a
binary32-exact float whose NaN payload lives in the double's top mantissa bits
(convert only through ``wasmrt.vm.values.f32_from_bits/f32_to_bits``); an f64
is a float with exact bits.

Calling convention of ``SIMD_OPS[name]`` (every 0xFD instruction except the
loads/stores): the operands in stack order (deepest first) as positional
arguments, then the immediate, if any:

- ``lane`` (extract_lane / replace_lane): the lane index as a trailing ``int``,
  e.g. ``SIMD_OPS["i32x4.replace_lane"](vec, x, lane)``.
- ``shuffle`` (i8x16.shuffle): the 16 lane-index bytes (each < 32) as a
  trailing ``bytes``/``bytearray``: ``SIMD_OPS["i8x16.shuffle"](a, b, lanes16)``.
- ``v128`` (v128.const): no operands; the 16 little-endian bytes, or the
  already-decoded v128 ``int``: ``SIMD_OPS["v128.const"](bytes16)``.
- ``none``: operands only. Shift counts are the i32 operand, taken modulo the
  lane width.

Each call returns one core value (v128 int, unsigned i32/i64 int, f32/f64 float).

Calling convention of ``SIMD_MEMORY_OPS[name]``: ``(data, addr, *operands_after_the_address,
*immediates)`` where ``data`` is the memory's bytearray and ``addr`` the effective
address (base + memarg offset); the caller has already checked
``addr + SIMD_MEMORY_SIZES[name] <= memory size``. Loads return a v128 int:
``v128.load*(data, addr)``, ``v128.loadN_lane(data, addr, vec, lane)``. Stores
return ``None``: ``v128.store(data, addr, vec)``, ``v128.storeN_lane(data, addr, vec, lane)``.

Exactness invariants:
- Integer lanes wrap modulo 2**width; ``*_sat_*``, ``narrow_*``, ``q15mulr_sat_s``
  and ``trunc_sat_*`` saturate; extend/extmul/extadd/dot/avgr are exact.
- Bit-level operations (bitwise ops, abs/neg of float lanes, splat,
  extract/replace lane, shuffle, swizzle, pmin/pmax selection, const) never
  let a float conversion touch a NaN, so NaN payloads (signalling ones too)
  are preserved bit for bit.
- Float arithmetic is rounded to binary32 per lane for f32x4 (overflow gives
  inf; the double intermediate is innocuous for + - * / sqrt); a NaN result
  is a quiet NaN (canonical when the NaN inputs are canonical or there are none).
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Iterable
from typing import Any

from wasmrt.vm.values import f32_from_bits, f32_round, f32_to_bits, f64_from_bits, f64_to_bits

__all__ = ["SIMD_INLINE", "SIMD_MEMORY_OPS", "SIMD_MEMORY_SIZES", "SIMD_OPS"]

SimdFn = Callable[..., Any]

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
M128 = (1 << 128) - 1

_INF = math.inf
_NAN = math.nan
_copysign = math.copysign
_sqrt = math.sqrt
_ceil = math.ceil
_floor = math.floor
_from_bytes = int.from_bytes
_add = operator.add
_sub = operator.sub
_mul = operator.mul
_neg = operator.neg  # -True == -1: the all-ones lane
_eq, _ne, _lt, _gt, _le, _ge = (
    operator.eq,
    operator.ne,
    operator.lt,
    operator.gt,
    operator.le,
    operator.ge,
)
_TWO52 = 4503599627370496.0  # every float with |x| >= 2**52 (and inf) is integral

_WIDTHS = (8, 16, 32, 64)
_SHAPE = {8: "i8x16", 16: "i16x8", 32: "i32x4", 64: "i64x2"}
_LETTER = {8: "b", 16: "h", 32: "i", 64: "q"}
#: lane mask, replicated unit (1 in every lane), lane top bits, lanes without top bit
_LANE = {w: (1 << w) - 1 for w in _WIDTHS}
_REP = {w: sum(1 << (w * i) for i in range(128 // w)) for w in _WIDTHS}
_HIGH = {w: _REP[w] << (w - 1) for w in _WIDTHS}
_LOW = {w: _REP[w] * ((1 << (w - 1)) - 1) for w in _WIDTHS}

#: Structs for 128 bits of lanes: signed / unsigned per width, floats.
_SS = {w: struct.Struct(f"<{128 // w}{_LETTER[w]}") for w in _WIDTHS}
_SU = {w: struct.Struct(f"<{128 // w}{_LETTER[w].upper()}") for w in _WIDTHS}
_F4 = struct.Struct("<4f")
_D2 = struct.Struct("<2d")


def _bytes(v: int) -> bytes:
    return v.to_bytes(16, "little")


def _pack(st: struct.Struct, vals: Iterable[Any]) -> int:
    return _from_bytes(st.pack(*vals), "little")


def _f32_lanes(v: int) -> tuple[float, ...]:
    """The four f32 lanes as floats (a signalling NaN may come back quieted)."""
    return _F4.unpack(v.to_bytes(16, "little"))


def _f64_lanes(v: int) -> tuple[float, ...]:
    return _D2.unpack(v.to_bytes(16, "little"))


def _pack_f32(vals: list[float]) -> int:
    """Round each lane to binary32 (ties to even, overflow -> inf) and pack."""
    try:
        return _from_bytes(_F4.pack(*vals), "little")
    except OverflowError:
        return _from_bytes(_F4.pack(*[f32_round(x) for x in vals]), "little")


def _pack_f64(vals: Iterable[float]) -> int:
    return _from_bytes(_D2.pack(*vals), "little")


# ---------------------------------------------------------------- scalar lane helpers


def _fdiv(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:
        if x != x:
            return x + 0.0
        if x == 0.0:
            return _NAN
        return _copysign(_INF, x) * _copysign(1.0, y)


def _fsqrt(x: float) -> float:
    return _NAN if x < 0.0 else _sqrt(x)


def _fmin(x: float, y: float) -> float:
    if x < y:
        return x
    if y < x:
        return y
    if x == y:
        return -((-x) + (-y)) if x == 0.0 else x  # min(-0, +0) = -0
    return x + y  # at least one NaN: propagate it (quieted)


def _fmax(x: float, y: float) -> float:
    if x > y:
        return x
    if y > x:
        return y
    if x == y:
        return x + y if x == 0.0 else x  # max(-0, +0) = +0
    return x + y


def _fceil(x: float) -> float:
    if x != x:
        return x + 0.0
    if x == 0.0 or not -_TWO52 < x < _TWO52:
        return x
    return _copysign(float(_ceil(x)), x)


def _ffloor(x: float) -> float:
    if x != x:
        return x + 0.0
    if x == 0.0 or not -_TWO52 < x < _TWO52:
        return x
    return _copysign(float(_floor(x)), x)


def _ftrunc(x: float) -> float:
    if x != x:
        return x + 0.0
    if x == 0.0 or not -_TWO52 < x < _TWO52:
        return x
    return _copysign(float(int(x)), x)


def _fnearest(x: float) -> float:
    if x != x:
        return x + 0.0
    if x == 0.0 or not -_TWO52 < x < _TWO52:
        return x
    return _copysign(float(round(x)), x)  # round() is ties-to-even


def _sat_s32(x: float) -> int:
    if x != x:
        return 0
    if x >= 2147483647.0:
        return 0x7FFFFFFF
    if x <= -2147483648.0:
        return -0x80000000
    return int(x)


def _sat_u32(x: float) -> int:
    if x != x or x <= 0.0:
        return 0
    if x >= 4294967295.0:
        return M32
    return int(x)


# ---------------------------------------------------------------- constants, shuffles, lanes


def v128_const(imm: bytes | bytearray | int) -> int:
    if isinstance(imm, int):
        return imm & M128
    return _from_bytes(imm, "little")


_ZERO224 = bytes(224)
_ZERO240 = bytes(240)


def i8x16_shuffle(a: int, b: int, lanes: bytes | bytearray) -> int:
    table = a.to_bytes(16, "little") + b.to_bytes(16, "little") + _ZERO224
    return _from_bytes(bytes(lanes).translate(table), "little")


def i8x16_swizzle(a: int, s: int) -> int:
    # index bytes >= 16 hit the zero tail of the 256-byte translation table
    return _from_bytes(
        s.to_bytes(16, "little").translate(a.to_bytes(16, "little") + _ZERO240), "little"
    )


def _make_int_splat(w: int) -> SimdFn:
    mask, rep = _LANE[w], _REP[w]

    def splat(x: int) -> int:
        return (x & mask) * rep

    return splat


def f32x4_splat(x: float) -> int:
    return f32_to_bits(x) * _REP[32]


def f64x2_splat(x: float) -> int:
    return f64_to_bits(x) * _REP[64]


def _make_extract(w: int, signed: bool) -> SimdFn:
    mask = _LANE[w]
    top = 1 << (w - 1)
    out_mask = M64 if w == 64 else M32

    if not signed:

        def extract_u(v: int, lane: int) -> int:
            return (v >> (w * lane)) & mask

        return extract_u

    def extract_s(v: int, lane: int) -> int:
        x = (v >> (w * lane)) & mask
        return (x - (top << 1) if x & top else x) & out_mask

    return extract_s


def _make_replace(w: int) -> SimdFn:
    mask = _LANE[w]

    def replace(v: int, x: int, lane: int) -> int:
        sh = w * lane
        return (v & ~(mask << sh)) | ((x & mask) << sh)

    return replace


def f32x4_extract_lane(v: int, lane: int) -> float:
    return f32_from_bits((v >> (32 * lane)) & M32)


def f32x4_replace_lane(v: int, x: float, lane: int) -> int:
    sh = 32 * lane
    return (v & ~(M32 << sh)) | (f32_to_bits(x) << sh)


def f64x2_extract_lane(v: int, lane: int) -> float:
    return f64_from_bits((v >> (64 * lane)) & M64)


def f64x2_replace_lane(v: int, x: float, lane: int) -> int:
    sh = 64 * lane
    return (v & ~(M64 << sh)) | (f64_to_bits(x) << sh)


# ---------------------------------------------------------------- bitwise


def v128_not(a: int) -> int:
    return a ^ M128


def v128_and(a: int, b: int) -> int:
    return a & b


def v128_andnot(a: int, b: int) -> int:
    return a & ~b


def v128_or(a: int, b: int) -> int:
    return a | b


def v128_xor(a: int, b: int) -> int:
    return a ^ b


def v128_bitselect(a: int, b: int, c: int) -> int:
    return (a & c) | (b & ~c)


def v128_any_true(a: int) -> int:
    return 1 if a else 0


# ---------------------------------------------------------------- integer lanes


def _make_add(w: int) -> SimdFn:
    low, high = _LOW[w], _HIGH[w]

    def add(a: int, b: int) -> int:
        # add the low w-1 bits of every lane without carries crossing lanes,
        # then fix each lane's top bit with the carry-less sum
        return ((a & low) + (b & low)) ^ ((a ^ b) & high)

    return add


def _make_sub(w: int) -> SimdFn:
    low, high = _LOW[w], _HIGH[w]

    def sub(a: int, b: int) -> int:
        return ((a | high) - (b & low)) ^ ((a ^ ~b) & high)

    return sub


def _make_shl(w: int) -> SimdFn:
    lane, rep = _LANE[w], _REP[w]

    def shl(a: int, n: int) -> int:
        k = n % w
        return (a << k) & (rep * ((lane << k) & lane))

    return shl


def _make_shr_u(w: int) -> SimdFn:
    lane, rep = _LANE[w], _REP[w]

    def shr_u(a: int, n: int) -> int:
        k = n % w
        return (a >> k) & (rep * (lane >> k))

    return shr_u


def _make_shr_s(w: int) -> SimdFn:
    lane, rep, high = _LANE[w], _REP[w], _HIGH[w]

    def shr_s(a: int, n: int) -> int:
        k = n % w
        fill = (lane << (w - k)) & lane  # top k bits of a lane
        return ((a >> k) & (rep * (lane >> k))) | (((a & high) >> (w - 1)) * fill)

    return shr_s


def _make_lanewise2(w: int, signed: bool, fn: Callable[[int, int], int], wrap: bool) -> SimdFn:
    """Binary lane op; ``wrap`` masks results into the lane, else they must fit ``signed``."""
    unpack = (_SS if signed else _SU)[w].unpack
    if wrap:
        pack = _SU[w].pack
        mask = _LANE[w]

        def op_wrap(a: int, b: int) -> int:
            xs = unpack(a.to_bytes(16, "little"))
            ys = unpack(b.to_bytes(16, "little"))
            return _from_bytes(pack(*[r & mask for r in map(fn, xs, ys)]), "little")

        return op_wrap
    pack = (_SS if signed else _SU)[w].pack

    def op(a: int, b: int) -> int:
        xs = unpack(a.to_bytes(16, "little"))
        ys = unpack(b.to_bytes(16, "little"))
        return _from_bytes(pack(*map(fn, xs, ys)), "little")

    return op


def _make_unary(w: int, signed: bool, fn: Callable[[int], int]) -> SimdFn:
    unpack = (_SS if signed else _SU)[w].unpack
    pack = _SU[w].pack
    mask = _LANE[w]

    def op(a: int) -> int:
        return _from_bytes(
            pack(*[fn(x) & mask for x in unpack(a.to_bytes(16, "little"))]), "little"
        )

    return op


def _make_fcmp(
    unpack: Callable[[int], tuple[float, ...]], w: int, fn: Callable[[Any, Any], bool]
) -> SimdFn:
    pack = _SS[w].pack

    def cmp(a: int, b: int) -> int:
        return _from_bytes(pack(*map(_neg, map(fn, unpack(a), unpack(b)))), "little")

    return cmp


def _make_less_mask(w: int, signed: bool) -> Callable[[int, int], int]:
    """``(a, b) ->`` all ones in every lane where ``a < b``, zeros elsewhere.

    The top bit of each lane of ``a - b`` computed lane-wise (no borrow crosses
    lanes) tells, with the operands' top bits, whether that lane borrowed; a
    signed comparison is the unsigned one with the top bits flipped.
    """
    low, high, lane = _LOW[w], _HIGH[w], _LANE[w]
    flip = high if signed else 0
    sh = w - 1

    def less(a: int, b: int) -> int:
        a ^= flip
        b ^= flip
        d = ((a | high) - (b & low)) ^ ((a ^ ~b) & high)
        return ((((~a & b) | (~(a ^ b) & d)) & high) >> sh) * lane

    return less


def _make_swar_cmp(w: int, signed: bool, rel: str) -> SimdFn:
    less = _make_less_mask(w, signed)
    if rel == "lt":
        return less
    if rel == "gt":
        return lambda a, b: less(b, a)
    if rel == "le":
        return lambda a, b: M128 ^ less(b, a)
    return lambda a, b: M128 ^ less(a, b)


def _make_swar_minmax(w: int, signed: bool, want_min: bool) -> SimdFn:
    less = _make_less_mask(w, signed)
    if want_min:
        return lambda a, b: b ^ ((a ^ b) & less(a, b))
    return lambda a, b: a ^ ((a ^ b) & less(a, b))


def _make_sat(w: int, signed: bool, sub: bool) -> SimdFn:
    """Saturating add/sub of every lane at once: the wrapped lane-wise result, then
    the lanes that overflowed (from the top bits of operands and result) set to
    the bound they passed."""
    low, high, lane = _LOW[w], _HIGH[w], _LANE[w]
    sh = w - 1

    def add_sat_u(a: int, b: int) -> int:
        r = ((a & low) + (b & low)) ^ ((a ^ b) & high)
        carry = ((a & b) | ((a | b) & ~r)) & high
        return r | ((carry >> sh) * lane) if carry else r

    def sub_sat_u(a: int, b: int) -> int:
        r = ((a | high) - (b & low)) ^ ((a ^ ~b) & high)
        borrow = ((~a & b) | (~(a ^ b) & r)) & high
        return r & ~((borrow >> sh) * lane) if borrow else r

    def add_sat_s(a: int, b: int) -> int:
        r = ((a & low) + (b & low)) ^ ((a ^ b) & high)
        over = ~(a ^ b) & (a ^ r) & high
        if not over:
            return r
        m = (over >> sh) * lane
        return (r & ~m) | ((low ^ (((a & high) >> sh) * lane)) & m)

    def sub_sat_s(a: int, b: int) -> int:
        r = ((a | high) - (b & low)) ^ ((a ^ ~b) & high)
        over = (a ^ b) & (a ^ r) & high
        if not over:
            return r
        m = (over >> sh) * lane
        return (r & ~m) | ((low ^ (((a & high) >> sh) * lane)) & m)

    if signed:
        return sub_sat_s if sub else add_sat_s
    return sub_sat_u if sub else add_sat_u


def _make_avgr_u(w: int) -> SimdFn:
    half_lanes = _REP[w] * (_LANE[w] >> 1)

    def avgr_u(a: int, b: int) -> int:
        # (x + y + 1) >> 1 == (x | y) - ((x ^ y) >> 1), lane-wise without borrows
        return (a | b) - (((a ^ b) >> 1) & half_lanes)

    return avgr_u


def _make_eq(w: int, want_equal: bool) -> SimdFn:
    low, high, lane = _LOW[w], _HIGH[w], _LANE[w]

    def eq(a: int, b: int) -> int:
        x = a ^ b
        # a lane's top bit of t is set iff the lane of x is nonzero (no carry crosses lanes)
        t = ((x & low) + low) | x
        nonzero = t & high
        return (((high ^ nonzero) if want_equal else nonzero) >> (w - 1)) * lane

    return eq


def _make_all_true(w: int) -> SimdFn:
    unpack = _SU[w].unpack

    def all_true(a: int) -> int:
        return 1 if all(unpack(a.to_bytes(16, "little"))) else 0

    return all_true


def _make_bitmask(w: int) -> SimdFn:
    n = 128 // w

    def bitmask(a: int) -> int:
        r = 0
        sh = w - 1
        for i in range(n):
            r |= ((a >> sh) & 1) << i
            sh += w
        return r

    return bitmask


def _sat(lo: int, hi: int) -> Callable[[int], int]:
    def clamp(x: int) -> int:
        return lo if x < lo else hi if x > hi else x

    return clamp


def _make_narrow(w_in: int, signed_out: bool) -> SimdFn:
    """Narrow two vectors of signed ``w_in`` lanes to ``w_in // 2`` with saturation."""
    w_out = w_in // 2
    unpack = _SS[w_in].unpack
    if signed_out:
        clamp = _sat(-(1 << (w_out - 1)), (1 << (w_out - 1)) - 1)
        pack = _SS[w_out].pack
    else:
        clamp = _sat(0, (1 << w_out) - 1)
        pack = _SU[w_out].pack

    def narrow(a: int, b: int) -> int:
        lanes = unpack(a.to_bytes(16, "little")) + unpack(b.to_bytes(16, "little"))
        return _from_bytes(pack(*map(clamp, lanes)), "little")

    return narrow


def _make_extend(w_out: int, high: bool, signed: bool) -> SimdFn:
    w_in = w_out // 2
    unpack = (_SS if signed else _SU)[w_in].unpack
    pack = (_SS if signed else _SU)[w_out].pack
    n = 128 // w_out
    sl = slice(n, 2 * n) if high else slice(0, n)

    def extend(a: int) -> int:
        return _from_bytes(pack(*unpack(a.to_bytes(16, "little"))[sl]), "little")

    return extend


def _make_extmul(w_out: int, high: bool, signed: bool) -> SimdFn:
    w_in = w_out // 2
    unpack = (_SS if signed else _SU)[w_in].unpack
    pack = (_SS if signed else _SU)[w_out].pack  # products always fit
    n = 128 // w_out
    sl = slice(n, 2 * n) if high else slice(0, n)

    def extmul(a: int, b: int) -> int:
        xs = unpack(a.to_bytes(16, "little"))[sl]
        ys = unpack(b.to_bytes(16, "little"))[sl]
        return _from_bytes(pack(*[x * y for x, y in zip(xs, ys, strict=True)]), "little")

    return extmul


def _make_extadd_pairwise(w_out: int, signed: bool) -> SimdFn:
    w_in = w_out // 2
    unpack = (_SS if signed else _SU)[w_in].unpack
    pack = (_SS if signed else _SU)[w_out].pack

    def extadd(a: int) -> int:
        xs = unpack(a.to_bytes(16, "little"))
        return _from_bytes(
            pack(*[x + y for x, y in zip(xs[0::2], xs[1::2], strict=True)]), "little"
        )

    return extadd


_S16 = _SS[16].unpack
_S32P = _SS[32].pack
_U32P = _SU[32].pack


def i32x4_dot_i16x8_s(a: int, b: int) -> int:
    xs = _S16(a.to_bytes(16, "little"))
    ys = _S16(b.to_bytes(16, "little"))
    r = [
        (xs[i] * ys[i] + xs[i + 1] * ys[i + 1]) & M32  # only -32768**2 * 2 wraps
        for i in range(0, 8, 2)
    ]
    return _from_bytes(_U32P(*r), "little")


def i16x8_q15mulr_sat_s(a: int, b: int) -> int:
    xs = _S16(a.to_bytes(16, "little"))
    ys = _S16(b.to_bytes(16, "little"))
    r = [(x * y + 0x4000) >> 15 for x, y in zip(xs, ys, strict=True)]
    return _from_bytes(_SS[16].pack(*[0x7FFF if x > 0x7FFF else x for x in r]), "little")


_POPCNT8 = bytes(bin(i).count("1") for i in range(256))
_ABS8 = bytes((256 - i) & 0xFF if i >= 128 else i for i in range(256))
_NEG8 = bytes((256 - i) & 0xFF for i in range(256))


def _make_translate(table: bytes) -> SimdFn:
    def op(a: int) -> int:
        return _from_bytes(a.to_bytes(16, "little").translate(table), "little")

    return op


# ---------------------------------------------------------------- float lanes


_F32_SIGN = _REP[32] << 31
_F64_SIGN = _REP[64] << 63


def f32x4_abs(a: int) -> int:
    return a & ~_F32_SIGN


def f32x4_neg(a: int) -> int:
    return a ^ _F32_SIGN


def f64x2_abs(a: int) -> int:
    return a & ~_F64_SIGN


def f64x2_neg(a: int) -> int:
    return a ^ _F64_SIGN


def _make_f32_unary(fn: Callable[[float], float]) -> SimdFn:
    def op(a: int) -> int:
        return _pack_f32([fn(x) for x in _F4.unpack(a.to_bytes(16, "little"))])

    return op


def _make_f32_binary(fn: Callable[[float, float], float]) -> SimdFn:
    def op(a: int, b: int) -> int:
        xs = _F4.unpack(a.to_bytes(16, "little"))
        ys = _F4.unpack(b.to_bytes(16, "little"))
        return _pack_f32(list(map(fn, xs, ys)))

    return op


def _make_f64_unary(fn: Callable[[float], float]) -> SimdFn:
    def op(a: int) -> int:
        return _from_bytes(_D2.pack(*map(fn, _D2.unpack(a.to_bytes(16, "little")))), "little")

    return op


def _make_f64_binary(fn: Callable[[float, float], float]) -> SimdFn:
    def op(a: int, b: int) -> int:
        xs = _D2.unpack(a.to_bytes(16, "little"))
        ys = _D2.unpack(b.to_bytes(16, "little"))
        return _from_bytes(_D2.pack(*map(fn, xs, ys)), "little")

    return op


def _make_pminmax(w: int, floats: struct.Struct, want_min: bool) -> SimdFn:
    """pmin = ``b < a ? b : a``, pmax = ``a < b ? b : a``; the chosen lane's bits are kept."""
    bits = _SU[w]
    unpack_bits, pack_bits, unpack_f = bits.unpack, bits.pack, floats.unpack

    def op(a: int, b: int) -> int:
        ab, bb = a.to_bytes(16, "little"), b.to_bytes(16, "little")
        fa, fb = unpack_f(ab), unpack_f(bb)
        ia, ib = unpack_bits(ab), unpack_bits(bb)
        if want_min:
            r = [ib[i] if fb[i] < fa[i] else ia[i] for i in range(len(ia))]
        else:
            r = [ib[i] if fa[i] < fb[i] else ia[i] for i in range(len(ia))]
        return _from_bytes(pack_bits(*r), "little")

    return op


# ---------------------------------------------------------------- conversions


def i32x4_trunc_sat_f32x4_s(a: int) -> int:
    return _from_bytes(_S32P(*map(_sat_s32, _F4.unpack(a.to_bytes(16, "little")))), "little")


def i32x4_trunc_sat_f32x4_u(a: int) -> int:
    return _from_bytes(_U32P(*map(_sat_u32, _F4.unpack(a.to_bytes(16, "little")))), "little")


def i32x4_trunc_sat_f64x2_s_zero(a: int) -> int:
    x, y = _D2.unpack(a.to_bytes(16, "little"))
    return (_sat_s32(x) & M32) | ((_sat_s32(y) & M32) << 32)


def i32x4_trunc_sat_f64x2_u_zero(a: int) -> int:
    x, y = _D2.unpack(a.to_bytes(16, "little"))
    return _sat_u32(x) | (_sat_u32(y) << 32)


def f32x4_convert_i32x4_s(a: int) -> int:
    # an i32 is exact in a double, so packing rounds once (ties to even)
    return _from_bytes(_F4.pack(*_SS[32].unpack(a.to_bytes(16, "little"))), "little")


def f32x4_convert_i32x4_u(a: int) -> int:
    return _from_bytes(_F4.pack(*_SU[32].unpack(a.to_bytes(16, "little"))), "little")


def f64x2_convert_low_i32x4_s(a: int) -> int:
    return _from_bytes(_D2.pack(*_SS[32].unpack(a.to_bytes(16, "little"))[:2]), "little")


def f64x2_convert_low_i32x4_u(a: int) -> int:
    return _from_bytes(_D2.pack(*_SU[32].unpack(a.to_bytes(16, "little"))[:2]), "little")


def f32x4_demote_f64x2_zero(a: int) -> int:
    return _pack_f32(list(_D2.unpack(a.to_bytes(16, "little"))) + [0.0, 0.0])


def f64x2_promote_low_f32x4(a: int) -> int:
    return _from_bytes(_D2.pack(*_F4.unpack(a.to_bytes(16, "little"))[:2]), "little")


# ---------------------------------------------------------------- the table


def _build_ops() -> dict[str, SimdFn]:
    ops: dict[str, SimdFn] = {
        "v128.const": v128_const,
        "i8x16.shuffle": i8x16_shuffle,
        "i8x16.swizzle": i8x16_swizzle,
        "f32x4.splat": f32x4_splat,
        "f64x2.splat": f64x2_splat,
        "f32x4.extract_lane": f32x4_extract_lane,
        "f32x4.replace_lane": f32x4_replace_lane,
        "f64x2.extract_lane": f64x2_extract_lane,
        "f64x2.replace_lane": f64x2_replace_lane,
        "v128.not": v128_not,
        "v128.and": v128_and,
        "v128.andnot": v128_andnot,
        "v128.or": v128_or,
        "v128.xor": v128_xor,
        "v128.bitselect": v128_bitselect,
        "v128.any_true": v128_any_true,
        "i8x16.popcnt": _make_translate(_POPCNT8),
        "i8x16.abs": _make_translate(_ABS8),
        "i8x16.neg": _make_translate(_NEG8),
        "i32x4.dot_i16x8_s": i32x4_dot_i16x8_s,
        "i16x8.q15mulr_sat_s": i16x8_q15mulr_sat_s,
        "f32x4.abs": f32x4_abs,
        "f32x4.neg": f32x4_neg,
        "f64x2.abs": f64x2_abs,
        "f64x2.neg": f64x2_neg,
        "i32x4.trunc_sat_f32x4_s": i32x4_trunc_sat_f32x4_s,
        "i32x4.trunc_sat_f32x4_u": i32x4_trunc_sat_f32x4_u,
        "i32x4.trunc_sat_f64x2_s_zero": i32x4_trunc_sat_f64x2_s_zero,
        "i32x4.trunc_sat_f64x2_u_zero": i32x4_trunc_sat_f64x2_u_zero,
        "f32x4.convert_i32x4_s": f32x4_convert_i32x4_s,
        "f32x4.convert_i32x4_u": f32x4_convert_i32x4_u,
        "f64x2.convert_low_i32x4_s": f64x2_convert_low_i32x4_s,
        "f64x2.convert_low_i32x4_u": f64x2_convert_low_i32x4_u,
        "f32x4.demote_f64x2_zero": f32x4_demote_f64x2_zero,
        "f64x2.promote_low_f32x4": f64x2_promote_low_f32x4,
    }
    icmp = ("eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u")
    for w in _WIDTHS:
        s = _SHAPE[w]
        ops[f"{s}.splat"] = _make_int_splat(w)
        ops[f"{s}.replace_lane"] = _make_replace(w)
        if w <= 16:
            ops[f"{s}.extract_lane_s"] = _make_extract(w, True)
            ops[f"{s}.extract_lane_u"] = _make_extract(w, False)
        else:
            ops[f"{s}.extract_lane"] = _make_extract(w, False)
        ops[f"{s}.add"] = _make_add(w)
        ops[f"{s}.sub"] = _make_sub(w)
        ops[f"{s}.shl"] = _make_shl(w)
        ops[f"{s}.shr_u"] = _make_shr_u(w)
        ops[f"{s}.shr_s"] = _make_shr_s(w)
        ops[f"{s}.all_true"] = _make_all_true(w)
        ops[f"{s}.bitmask"] = _make_bitmask(w)
        for cname in icmp:
            if w == 64 and cname.endswith("_u"):
                continue
            if cname in ("eq", "ne"):
                ops[f"{s}.{cname}"] = _make_eq(w, cname == "eq")
            else:
                ops[f"{s}.{cname}"] = _make_swar_cmp(w, cname.endswith("_s"), cname[:2])
        if w != 8:
            ops[f"{s}.abs"] = _make_unary(w, True, abs)
            ops[f"{s}.neg"] = _make_unary(w, False, _neg)
            ops[f"{s}.mul"] = _make_lanewise2(w, False, _mul, True)
            src = _SHAPE[w // 2]
            for hi, part in ((False, "low"), (True, "high")):
                for signed, su in ((True, "s"), (False, "u")):
                    ops[f"{s}.extend_{part}_{src}_{su}"] = _make_extend(w, hi, signed)
                    ops[f"{s}.extmul_{part}_{src}_{su}"] = _make_extmul(w, hi, signed)
        if w <= 32:
            ops[f"{s}.min_s"] = _make_swar_minmax(w, True, True)
            ops[f"{s}.min_u"] = _make_swar_minmax(w, False, True)
            ops[f"{s}.max_s"] = _make_swar_minmax(w, True, False)
            ops[f"{s}.max_u"] = _make_swar_minmax(w, False, False)
        if w <= 16:
            ops[f"{s}.add_sat_s"] = _make_sat(w, True, False)
            ops[f"{s}.add_sat_u"] = _make_sat(w, False, False)
            ops[f"{s}.sub_sat_s"] = _make_sat(w, True, True)
            ops[f"{s}.sub_sat_u"] = _make_sat(w, False, True)
            ops[f"{s}.avgr_u"] = _make_avgr_u(w)
    for s, w in (("i8x16", 16), ("i16x8", 32)):
        src = _SHAPE[w]
        ops[f"{s}.narrow_{src}_s"] = _make_narrow(w, True)
        ops[f"{s}.narrow_{src}_u"] = _make_narrow(w, False)
    for s, w in (("i16x8", 16), ("i32x4", 32)):
        src = _SHAPE[w // 2]
        ops[f"{s}.extadd_pairwise_{src}_s"] = _make_extadd_pairwise(w, True)
        ops[f"{s}.extadd_pairwise_{src}_u"] = _make_extadd_pairwise(w, False)

    fcmp: dict[str, Callable[[Any, Any], bool]] = {
        "eq": _eq,
        "ne": _ne,
        "lt": _lt,
        "gt": _gt,
        "le": _le,
        "ge": _ge,
    }
    for cname, fn in fcmp.items():
        ops[f"f32x4.{cname}"] = _make_fcmp(_f32_lanes, 32, fn)
        ops[f"f64x2.{cname}"] = _make_fcmp(_f64_lanes, 64, fn)
    unary: dict[str, Callable[[float], float]] = {
        "sqrt": _fsqrt,
        "ceil": _fceil,
        "floor": _ffloor,
        "trunc": _ftrunc,
        "nearest": _fnearest,
    }
    binary: dict[str, Callable[[float, float], float]] = {
        "add": _add,
        "sub": _sub,
        "mul": _mul,
        "div": _fdiv,
        "min": _fmin,
        "max": _fmax,
    }
    for uname, ufn in unary.items():
        ops[f"f32x4.{uname}"] = _make_f32_unary(ufn)
        ops[f"f64x2.{uname}"] = _make_f64_unary(ufn)
    for bname, bfn in binary.items():
        ops[f"f32x4.{bname}"] = _make_f32_binary(bfn)
        ops[f"f64x2.{bname}"] = _make_f64_binary(bfn)
    ops["f32x4.pmin"] = _make_pminmax(32, _F4, True)
    ops["f32x4.pmax"] = _make_pminmax(32, _F4, False)
    ops["f64x2.pmin"] = _make_pminmax(64, _D2, True)
    ops["f64x2.pmax"] = _make_pminmax(64, _D2, False)
    return ops


# ---------------------------------------------------------------- memory


def _make_load_full() -> SimdFn:
    def load(data: bytearray, addr: int) -> int:
        return _from_bytes(data[addr : addr + 16], "little")

    return load


def _make_load_extend(w_out: int, signed: bool) -> SimdFn:
    w_in = w_out // 2
    n = 128 // w_out
    src = struct.Struct(f"<{n}{_LETTER[w_in] if signed else _LETTER[w_in].upper()}")
    unpack_from = src.unpack_from
    pack = (_SS if signed else _SU)[w_out].pack

    def load(data: bytearray, addr: int) -> int:
        return _from_bytes(pack(*unpack_from(data, addr)), "little")

    return load


def _make_load_splat(w: int) -> SimdFn:
    n = w // 8
    rep = _REP[w]

    def load(data: bytearray, addr: int) -> int:
        return _from_bytes(data[addr : addr + n], "little") * rep

    return load


def _make_load_zero(w: int) -> SimdFn:
    n = w // 8

    def load(data: bytearray, addr: int) -> int:
        return _from_bytes(data[addr : addr + n], "little")

    return load


def _make_load_lane(w: int) -> SimdFn:
    n = w // 8
    mask = _LANE[w]

    def load(data: bytearray, addr: int, v: int, lane: int) -> int:
        sh = w * lane
        return (v & ~(mask << sh)) | (_from_bytes(data[addr : addr + n], "little") << sh)

    return load


def v128_store(data: bytearray, addr: int, v: int) -> None:
    data[addr : addr + 16] = v.to_bytes(16, "little")


def _make_store_lane(w: int) -> SimdFn:
    n = w // 8
    mask = _LANE[w]

    def store(data: bytearray, addr: int, v: int, lane: int) -> None:
        data[addr : addr + n] = ((v >> (w * lane)) & mask).to_bytes(n, "little")

    return store


def _build_memory_ops() -> tuple[dict[str, SimdFn], dict[str, int]]:
    ops: dict[str, SimdFn] = {"v128.load": _make_load_full(), "v128.store": v128_store}
    sizes: dict[str, int] = {"v128.load": 16, "v128.store": 16}
    for w_out in (16, 32, 64):
        w_in = w_out // 2
        n = 128 // w_out
        for signed, su in ((True, "s"), (False, "u")):
            name = f"v128.load{w_in}x{n}_{su}"
            ops[name] = _make_load_extend(w_out, signed)
            sizes[name] = 8
    for w in _WIDTHS:
        ops[f"v128.load{w}_splat"] = _make_load_splat(w)
        ops[f"v128.load{w}_lane"] = _make_load_lane(w)
        ops[f"v128.store{w}_lane"] = _make_store_lane(w)
        for name in (f"v128.load{w}_splat", f"v128.load{w}_lane", f"v128.store{w}_lane"):
            sizes[name] = w // 8
    for w in (32, 64):
        ops[f"v128.load{w}_zero"] = _make_load_zero(w)
        sizes[f"v128.load{w}_zero"] = w // 8
    return ops, sizes


# ---------------------------------------------------------------- inline forms

#: ``(operand texts..., immediate) -> expression text``, or ``None``: call the function.
InlineFn = Callable[..., "str | None"]


def _inline_lanes(w: int) -> dict[str, tuple[tuple[int, ...], InlineFn]]:
    """Inline forms of the integer-lane ops of width ``w`` (see ``SIMD_INLINE``)."""
    s = _SHAPE[w]
    low, high, lane, rep = _LOW[w], _HIGH[w], _LANE[w], _REP[w]
    top, out = 1 << (w - 1), (M64 if w == 64 else M32)

    def shl(a: str, n: str) -> str | None:
        if not n.isdigit():
            return None
        k = int(n) % w
        return f"(({a} << {k}) & {rep * ((lane << k) & lane)})"

    def shr_u(a: str, n: str) -> str | None:
        if not n.isdigit():
            return None
        k = int(n) % w
        return f"(({a} >> {k}) & {rep * (lane >> k)})"

    def replace(v: str, x: str, i: int) -> str:
        return f"(({v} & {M128 ^ (lane << (w * i))}) | (({x} & {lane}) << {w * i}))"

    forms: dict[str, tuple[tuple[int, ...], InlineFn]] = {
        f"{s}.add": (
            (0, 1),
            lambda a, b: f"((({a} & {low}) + ({b} & {low})) ^ (({a} ^ {b}) & {high}))",
        ),
        f"{s}.sub": (
            (0, 1),
            lambda a, b: f"((({a} | {high}) - ({b} & {low})) ^ (({a} ^ ~{b}) & {high}))",
        ),
        f"{s}.shl": ((), shl),
        f"{s}.shr_u": ((), shr_u),
        f"{s}.splat": ((), lambda x: f"(({x} & {lane}) * {rep})"),
        f"{s}.replace_lane": ((), replace),
    }
    if w <= 16:
        forms[f"{s}.extract_lane_u"] = ((), lambda v, i: f"(({v} >> {w * i}) & {lane})")
        forms[f"{s}.extract_lane_s"] = (
            (),
            lambda v, i: f"((((({v} >> {w * i}) & {lane}) ^ {top}) - {top}) & {out})",
        )
    else:
        forms[f"{s}.extract_lane"] = ((), lambda v, i: f"(({v} >> {w * i}) & {lane})")
    return forms


def _build_inline() -> dict[str, tuple[tuple[int, ...], InlineFn]]:
    forms: dict[str, tuple[tuple[int, ...], InlineFn]] = {
        "v128.not": ((), lambda a: f"({a} ^ {M128})"),
        "v128.and": ((), lambda a, b: f"({a} & {b})"),
        "v128.or": ((), lambda a, b: f"({a} | {b})"),
        "v128.xor": ((), lambda a, b: f"({a} ^ {b})"),
        "v128.andnot": ((), lambda a, b: f"({a} & ~{b})"),
        "v128.bitselect": ((2,), lambda a, b, c: f"(({a} & {c}) | ({b} & ~{c}))"),
        "v128.any_true": ((), lambda a: f"(1 if {a} else 0)"),
        # index bytes >= 16 (>= 32) read the zero tail of the 256-byte table
        "i8x16.swizzle": (
            (),
            lambda a, s: (
                f"_ifb(({s}).to_bytes(16, 'little')"
                f".translate(({a}).to_bytes(16, 'little') + b'\\0' * 240), 'little')"
            ),
        ),
        "i8x16.shuffle": (
            (),
            lambda a, b, lanes: (
                f"_ifb({bytes(lanes)!r}.translate(({a}).to_bytes(16, 'little')"
                f" + ({b}).to_bytes(16, 'little') + b'\\0' * 224), 'little')"
            ),
        ),
        "f32x4.abs": ((), lambda a: f"({a} & {M128 ^ _F32_SIGN})"),
        "f32x4.neg": ((), lambda a: f"({a} ^ {_F32_SIGN})"),
        "f64x2.abs": ((), lambda a: f"({a} & {M128 ^ _F64_SIGN})"),
        "f64x2.neg": ((), lambda a: f"({a} ^ {_F64_SIGN})"),
    }
    for w in _WIDTHS:
        forms.update(_inline_lanes(w))
    return forms


#: Every non-memory 0xFD instruction name -> its function (see the module docstring).
SIMD_OPS: dict[str, SimdFn] = _build_ops()
#: Ops the code generator may emit as an expression instead of a call of ``SIMD_OPS[name]``:
#: name -> (positions of the operands the text reads more than once, which must be
#: names or literals; builder). The builder takes the operand texts, then the lane
#: index (``lane`` ops) or the 16 lane bytes (``shuffle``), and returns an expression
#: over ints and bytes literals (reading only the global ``_ifb``, ``int.from_bytes``)
#: with exactly the function's value, or ``None`` for operands it has no inline form for.
SIMD_INLINE: dict[str, tuple[tuple[int, ...], InlineFn]] = _build_inline()
#: Every SIMD load/store name -> ``fn(data, addr, ...)`` (see the module docstring).
SIMD_MEMORY_OPS: dict[str, SimdFn]
#: Bytes each SIMD load/store touches at ``addr`` (what the caller bounds-checks).
SIMD_MEMORY_SIZES: dict[str, int]
SIMD_MEMORY_OPS, SIMD_MEMORY_SIZES = _build_memory_ops()
