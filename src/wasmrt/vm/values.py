"""Bit-exact conversions between wasm float bit patterns and Python floats.

Invariants (see docs/internals.md, "Values inside the core"):
- An f64 is a Python float with exactly the wasm bits (``struct`` ``'<d'`` is a
  memcpy, so NaN payloads survive).
- An f32 is a Python float holding a binary32 value exactly. A NaN f32 is the
  double ``sign<<63 | 0x7FF<<52 | payload23<<29``; signalling NaNs survive
  because we never let the C float<->double conversion touch a NaN.
- ``f32_round`` rounds a double to the nearest binary32 (ties to even) and
  returns inf on overflow instead of raising.
"""

from __future__ import annotations

import math
import struct

__all__ = [
    "f32_from_bits",
    "f32_round",
    "f32_to_bits",
    "f64_from_bits",
    "f64_to_bits",
]

_D = struct.Struct("<d")
_Q = struct.Struct("<Q")
_F = struct.Struct("<f")
_I = struct.Struct("<I")
_pack_d = _D.pack
_unpack_d = _D.unpack
_pack_q = _Q.pack
_unpack_q = _Q.unpack
_pack_f = _F.pack
_unpack_f = _F.unpack
_pack_i = _I.pack
_unpack_i = _I.unpack
_INF = math.inf


def f64_from_bits(bits: int) -> float:
    return _unpack_d(_pack_q(bits))[0]  # type: ignore[no-any-return]


def f64_to_bits(x: float) -> int:
    return _unpack_q(_pack_d(x))[0]  # type: ignore[no-any-return]


def f32_from_bits(bits: int) -> float:
    if bits & 0x7F800000 == 0x7F800000 and bits & 0x7FFFFF:
        d = ((bits >> 31) << 63) | (0x7FF << 52) | ((bits & 0x7FFFFF) << 29)
        return _unpack_d(_pack_q(d))[0]  # type: ignore[no-any-return]
    return _unpack_f(_pack_i(bits))[0]  # type: ignore[no-any-return]


def f32_to_bits(x: float) -> int:
    if x != x:
        d = _unpack_q(_pack_d(x))[0]
        return ((d >> 63) << 31) | 0x7F800000 | ((d >> 29) & 0x7FFFFF)  # type: ignore[no-any-return]
    return _unpack_i(_pack_f(x))[0]  # type: ignore[no-any-return]


def f32_round(x: float) -> float:
    """Round a double to binary32 (round-to-nearest-even); overflow gives +-inf."""
    try:
        return _unpack_f(_pack_f(x))[0]  # type: ignore[no-any-return]
    except OverflowError:
        return _INF if x > 0 else -_INF


def f32_round_nan_safe(x: float) -> float:
    """``f32_round`` that keeps a NaN's payload bits (for promote/demote paths)."""
    if x != x:
        return f32_from_bits(f32_to_bits(x))
    return f32_round(x)
