"""Runtime helpers called by generated code: numeric ops, traps, bulk memory/table ops.

Invariants:
- Inputs and outputs follow docs/internals.md: i32/i64 are unsigned ints in
  range, f32 values are binary32-exact floats (NaN payload in the top mantissa
  bits), f64 values carry exact bits.
- Every helper either returns a value in range or raises ``Trap`` with the
  wasm trap code; no ``ZeroDivisionError``/``OverflowError``/``ValueError``
  escapes.
- Bulk helpers check bounds completely before writing anything (wasm 2.0
  semantics: an out-of-bounds bulk op has no effect).
- Bulk helpers allocate no temporary larger than ``BULK_CHUNK`` bytes/slots
  (Wasmtime allocates nothing there): large fills and copies go through a
  ``memoryview`` or in chunks, so a guest cannot make the host run out of
  memory with ``memory.fill``/``memory.copy``/``table.fill``/``table.copy``.
- ``RUNTIME_NAMESPACE`` is the whole global namespace generated code starts
  from (plus a variant's float constants and int tables); it also binds every
  SIMD function of ``wasmrt.compile.simd`` as ``simd_global(op)``.
- Table helpers take the ``elements`` lists, except ``call_indirect_fail``
  (the ``TableInstance``: it resolves lazy placeholders, see
  ``wasmrt.vm.table``); a source list read by ``table_copy`` never holds a
  placeholder (the code materialises it when bound).
"""

from __future__ import annotations

import math
import struct
from typing import Any

from wasmrt.compile.simd import SIMD_MEMORY_OPS, SIMD_OPS
from wasmrt.observe import grow_memory, grow_table
from wasmrt.trap import Trap, TrapCode
from wasmrt.vm.table import LazyFuncRef
from wasmrt.vm.values import (
    f32_from_bits,
    f32_round,
    f32_to_bits,
    f64_from_bits,
    f64_to_bits,
)

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
_INF = math.inf
_NAN = math.nan
_copysign = math.copysign
_floor = math.floor
_ceil = math.ceil

# ---------------------------------------------------------------- traps


def trap_oob() -> Any:
    raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)


def trap_toob() -> Any:
    raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)


def trap_unreachable() -> Any:
    raise Trap(TrapCode.UNREACHABLE)


def trap_div0() -> Any:
    raise Trap(TrapCode.INTEGER_DIVISION_BY_ZERO)


def trap_out_of_fuel() -> Any:
    raise Trap(TrapCode.OUT_OF_FUEL)


def trap_interrupt() -> Any:
    raise Trap(TrapCode.INTERRUPT)


def call_indirect_fail(table: Any, i: int, ty: object) -> Any:
    """Raise the right trap for a failed ``call_indirect`` check on ``TableInstance`` ``table``.

    Also the path of a lazy placeholder's first call: it is resolved (and
    replaced in the table) before the signature check.
    """
    elements = table.elements
    if i >= len(elements):
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    f = elements[i]
    if f is None:
        raise Trap(TrapCode.INDIRECT_CALL_TO_NULL)
    if f.__class__ is LazyFuncRef:
        f = table.resolve(i)
    if f.type is not ty and f.type != ty:
        raise Trap(TrapCode.BAD_SIGNATURE)
    return f  # the type was structurally equal after all


# ---------------------------------------------------------------- integers


def div_s32(a: int, b: int) -> int:
    if not b:
        raise Trap(TrapCode.INTEGER_DIVISION_BY_ZERO)
    a = (a ^ 0x80000000) - 0x80000000
    b = (b ^ 0x80000000) - 0x80000000
    if a == -0x80000000 and b == -1:
        raise Trap(TrapCode.INTEGER_OVERFLOW)
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M32


def rem_s32(a: int, b: int) -> int:
    if not b:
        raise Trap(TrapCode.INTEGER_DIVISION_BY_ZERO)
    a = (a ^ 0x80000000) - 0x80000000
    b = (b ^ 0x80000000) - 0x80000000
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & M32


def div_s64(a: int, b: int) -> int:
    if not b:
        raise Trap(TrapCode.INTEGER_DIVISION_BY_ZERO)
    a = (a ^ 0x8000000000000000) - 0x8000000000000000
    b = (b ^ 0x8000000000000000) - 0x8000000000000000
    if a == -0x8000000000000000 and b == -1:
        raise Trap(TrapCode.INTEGER_OVERFLOW)
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M64


def rem_s64(a: int, b: int) -> int:
    if not b:
        raise Trap(TrapCode.INTEGER_DIVISION_BY_ZERO)
    a = (a ^ 0x8000000000000000) - 0x8000000000000000
    b = (b ^ 0x8000000000000000) - 0x8000000000000000
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & M64


def ctz32(x: int) -> int:
    return (x & -x).bit_length() - 1 if x else 32


def ctz64(x: int) -> int:
    return (x & -x).bit_length() - 1 if x else 64


def rotl32(x: int, k: int) -> int:
    k &= 31
    return ((x << k) | (x >> (32 - k))) & M32


def rotr32(x: int, k: int) -> int:
    k &= 31
    return ((x >> k) | (x << (32 - k))) & M32


def rotl64(x: int, k: int) -> int:
    k &= 63
    return ((x << k) | (x >> (64 - k))) & M64


def rotr64(x: int, k: int) -> int:
    k &= 63
    return ((x >> k) | (x << (64 - k))) & M64


# ---------------------------------------------------------------- floats


def fdiv(a: float, b: float) -> float:
    if b:
        return a / b
    if a != a:
        return a + 0.0
    if a == 0.0:
        return _NAN
    neg = (_copysign(1.0, a) < 0) != (_copysign(1.0, b) < 0)
    return -_INF if neg else _INF


def fsqrt(x: float) -> float:
    if x < 0.0:
        return _NAN
    return math.sqrt(x)


def fmin(a: float, b: float) -> float:
    if a < b:
        return a
    if b < a:
        return b
    if a == b:
        if a == 0.0:
            return -((-a) + (-b))  # -0 wins
        return a
    return a + b  # a NaN is involved


def fmax(a: float, b: float) -> float:
    if a > b:
        return a
    if b > a:
        return b
    if a == b:
        return a + b if a == 0.0 else a  # +0 wins
    return a + b


def fceil(x: float) -> float:
    if x != x:
        return x + 0.0
    if x in (_INF, -_INF) or x == 0.0:
        return x
    return _copysign(float(_ceil(x)), x)


def ffloor(x: float) -> float:
    if x != x:
        return x + 0.0
    if x in (_INF, -_INF) or x == 0.0:
        return x
    return _copysign(float(_floor(x)), x)


def ftrunc(x: float) -> float:
    if x != x:
        return x + 0.0
    if x in (_INF, -_INF) or x == 0.0:
        return x
    return _copysign(float(int(x)), x)


def fnearest(x: float) -> float:
    if x != x:
        return x + 0.0
    if x in (_INF, -_INF) or x == 0.0:
        return x
    return _copysign(float(round(x)), x)


def promote(x: float) -> float:
    return x if x == x else x + 0.0


def i2f32(n: int) -> float:
    """Signed or unsigned integer to the nearest binary32 (ties to even), no double rounding."""
    m = -n if n < 0 else n
    if m < (1 << 53):
        return f32_round(float(n))
    shift = m.bit_length() - 24
    q = m >> shift
    r = m & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    if r > half or (r == half and q & 1):
        q += 1
    v = float(q << shift)
    return -v if n < 0 else v


def _trunc_checked(x: float, lo: float, hi: float, mask: int) -> int:
    if x != x:
        raise Trap(TrapCode.BAD_CONVERSION_TO_INTEGER)
    if not (lo < x < hi):
        raise Trap(TrapCode.INTEGER_OVERFLOW)
    return int(x) & mask


def trunc_s32(x: float) -> int:
    return _trunc_checked(x, -2147483649.0, 2147483648.0, M32)


def trunc_u32(x: float) -> int:
    return _trunc_checked(x, -1.0, 4294967296.0, M32)


def trunc_s64(x: float) -> int:
    if x != x:
        raise Trap(TrapCode.BAD_CONVERSION_TO_INTEGER)
    if not (-9223372036854775808.0 <= x < 9223372036854775808.0):
        raise Trap(TrapCode.INTEGER_OVERFLOW)
    return int(x) & M64


def trunc_u64(x: float) -> int:
    return _trunc_checked(x, -1.0, 18446744073709551616.0, M64)


def _sat(x: float, lo: int, hi: int) -> int:
    if x != x:
        return 0
    if x >= hi:
        return hi
    if x <= lo:
        return lo
    return int(x)


def tsat_s32(x: float) -> int:
    return _sat(x, -0x80000000, 0x7FFFFFFF) & M32


def tsat_u32(x: float) -> int:
    return _sat(x, 0, M32)


def tsat_s64(x: float) -> int:
    return _sat(x, -0x8000000000000000, 0x7FFFFFFFFFFFFFFF) & M64


def tsat_u64(x: float) -> int:
    return _sat(x, 0, M64)


_F32U = struct.Struct("<f").unpack_from
_U32U = struct.Struct("<I").unpack_from


def load_f32(buf: bytearray, a: int) -> float:
    x: float = _F32U(buf, a)[0]
    if x != x:
        return f32_from_bits(_U32U(buf, a)[0])
    return x


# ---------------------------------------------------------------- bulk memory/table


#: Largest temporary (bytes, or table slots) a bulk helper creates.
BULK_CHUNK = 1 << 16


def mem_fill(buf: bytearray, size: int, d: int, val: int, n: int) -> None:
    if d + n > size:
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    if n <= BULK_CHUNK:
        if n:
            buf[d : d + n] = bytes((val & 0xFF,)) * n
        return
    chunk = bytes((val & 0xFF,)) * BULK_CHUNK
    end = d + n
    while d < end:
        c = min(BULK_CHUNK, end - d)
        buf[d : d + c] = chunk if c == BULK_CHUNK else chunk[:c]
        d += c


def mem_copy(buf: bytearray, size: int, d: int, s: int, n: int) -> None:
    if d + n > size or s + n > size:
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    if n <= BULK_CHUNK:
        if n:
            buf[d : d + n] = buf[s : s + n]
        return
    with memoryview(buf) as view:  # memmove within the buffer, no copy of the source
        view[d : d + n] = view[s : s + n]


def mem_init(buf: bytearray, size: int, seg: bytes, d: int, s: int, n: int) -> None:
    if s + n > len(seg) or d + n > size:
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    if n:
        buf[d : d + n] = memoryview(seg)[s : s + n] if n > BULK_CHUNK else seg[s : s + n]


def table_fill(tab: list, i: int, val: object, n: int) -> None:
    if i + n > len(tab):
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    if n <= BULK_CHUNK:
        if n:
            tab[i : i + n] = [val] * n
        return
    chunk = [val] * BULK_CHUNK
    end = i + n
    while i < end:
        c = min(BULK_CHUNK, end - i)
        tab[i : i + c] = chunk if c == BULK_CHUNK else chunk[:c]
        i += c


def table_copy(dst: list, src: list, d: int, s: int, n: int) -> None:
    if d + n > len(dst) or s + n > len(src):
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    if n <= BULK_CHUNK:
        if n:
            dst[d : d + n] = src[s : s + n]
        return
    # In chunks; backwards when an overlapping source lies below the destination.
    starts = range(0, n, BULK_CHUNK)
    for k in reversed(starts) if dst is src and s < d else starts:
        c = min(BULK_CHUNK, n - k)
        dst[d + k : d + k + c] = src[s + k : s + k + c]


def table_init(dst: list, seg: Any, d: int, s: int, n: int) -> None:
    if s + n > len(seg) or d + n > len(dst):
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    if n:
        dst[d : d + n] = seg[s : s + n]


#: Names generated code sees as globals.
RUNTIME_NAMESPACE: dict[str, Any] = {
    "_ifb": int.from_bytes,
    "_grow_memory": grow_memory,
    "_grow_table": grow_table,
    "_oob": trap_oob,
    "_toob": trap_toob,
    "_unreachable": trap_unreachable,
    "_dz": trap_div0,
    "_oof": trap_out_of_fuel,
    "_interrupt": trap_interrupt,
    "_cifail": call_indirect_fail,
    "_div_s32": div_s32,
    "_rem_s32": rem_s32,
    "_div_s64": div_s64,
    "_rem_s64": rem_s64,
    "_ctz32": ctz32,
    "_ctz64": ctz64,
    "_rotl32": rotl32,
    "_rotr32": rotr32,
    "_rotl64": rotl64,
    "_rotr64": rotr64,
    "_f32r": f32_round,
    "_fdiv": fdiv,
    "_fsqrt": fsqrt,
    "_fmin": fmin,
    "_fmax": fmax,
    "_fceil": fceil,
    "_ffloor": ffloor,
    "_ftrunc": ftrunc,
    "_fnearest": fnearest,
    "_copysign": _copysign,
    "_promote": promote,
    "_i2f32": i2f32,
    "_trunc_s32": trunc_s32,
    "_trunc_u32": trunc_u32,
    "_trunc_s64": trunc_s64,
    "_trunc_u64": trunc_u64,
    "_tsat_s32": tsat_s32,
    "_tsat_u32": tsat_u32,
    "_tsat_s64": tsat_s64,
    "_tsat_u64": tsat_u64,
    "_f32bits": f32_to_bits,
    "_f32from": f32_from_bits,
    "_f64bits": f64_to_bits,
    "_f64from": f64_from_bits,
    "_ldf32": load_f32,
    "_mfill": mem_fill,
    "_mcopy": mem_copy,
    "_minit": mem_init,
    "_tfill": table_fill,
    "_tcopy": table_copy,
    "_tinit": table_init,
    "_u8": struct.Struct("<B").unpack_from,
    "_i8": struct.Struct("<b").unpack_from,
    "_u16": struct.Struct("<H").unpack_from,
    "_i16": struct.Struct("<h").unpack_from,
    "_u32": struct.Struct("<I").unpack_from,
    "_i32": struct.Struct("<i").unpack_from,
    "_u64": struct.Struct("<Q").unpack_from,
    "_f64u": struct.Struct("<d").unpack_from,
    "_pu16": struct.Struct("<H").pack_into,
    "_pu32": struct.Struct("<I").pack_into,
    "_pu64": struct.Struct("<Q").pack_into,
    "_pf64": struct.Struct("<d").pack_into,
}


def divu(a: int, b: int) -> int:
    if not b:
        raise Trap(TrapCode.INTEGER_DIVISION_BY_ZERO)
    return a // b


def remu(a: int, b: int) -> int:
    if not b:
        raise Trap(TrapCode.INTEGER_DIVISION_BY_ZERO)
    return a % b


RUNTIME_NAMESPACE["_divu"] = divu
RUNTIME_NAMESPACE["_remu"] = remu


def simd_global(op: str) -> str:
    """The global name generated code uses for SIMD instruction ``op``'s function."""
    return "_V_" + op.replace(".", "_")


RUNTIME_NAMESPACE.update({simd_global(op): fn for op, fn in SIMD_OPS.items()})
RUNTIME_NAMESPACE.update({simd_global(op): fn for op, fn in SIMD_MEMORY_OPS.items()})
