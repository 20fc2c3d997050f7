"""``Val``: a typed wasm value, and its public form's conversion to core values.

The conversions of arbitrary Python values (``to_core``/``from_core``) live
with ``Func`` (``wasmrt.runtime.func``), because a funcref converts to and
from a ``Func``.

Invariants:
- A ``Val`` holds wasmtime-py's *public* form: i32/i64 as **signed** ints
  (wrapped silently on construction), f32 rounded to single precision, an
  externref's payload object (identity kept) and a funcref's ``Func``; a
  null reference is ``None``.
- The vm's *core* form (docs/internals.md) has **unsigned** ints, a
  ``FuncInstance`` for a funcref and the payload object for an externref.
  ``to_core``/``from_core`` are the only crossings, so no signed int ever
  reaches the vm and no unsigned int ever reaches the embedder.
- ``to_core`` applies wasmtime-py's conversion order (1.8): an exact-type
  ``Val``; anything for externref; ints only to i32/i64/v128; floats only to
  f32/f64; ``Func`` to funcref; ``None`` to a null reference; otherwise
  ``TypeError``. Nothing is converted partially: it raises before returning.
- An f32 NaN keeps its payload bits in the layout internals.md prescribes.
- v128 (a wasmrt addition; wasmtime-py cannot pass v128 at all) is an
  **unsigned** 128-bit int on both sides, lane 0 in the low bits; an int
  argument wraps modulo 2**128 and ``Val.v128`` also takes 16 little-endian
  bytes.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

from wasmrt.errors import WasmtimeError
from wasmrt.runtime.types import ValType

if TYPE_CHECKING:
    from wasmrt.runtime.func import Func

__all__ = ["Val", "f32_round", "public_to_core"]

_MASK = {"i32": (1 << 32) - 1, "i64": (1 << 64) - 1, "v128": (1 << 128) - 1}
_HALF = {"i32": 1 << 31, "i64": 1 << 63}
_REFS = ("externref", "funcref")


def _wrap_signed(value: int, kind: str) -> int:
    mask = _MASK[kind]
    v = int(value) & mask
    return v - (mask + 1) if v >= _HALF[kind] else v


def f32_round(x: float) -> float:
    """Round ``x`` to binary32 (overflow gives infinity; NaN keeps 23 payload bits)."""
    if x != x:
        bits = struct.unpack("<Q", struct.pack("<d", x))[0]
        payload = (bits >> 29) & 0x7FFFFF or 0x400000
        out = (bits & (1 << 63)) | (0x7FF << 52) | (payload << 29)
        return float(struct.unpack("<d", struct.pack("<Q", out))[0])
    try:
        return float(struct.unpack("<f", struct.pack("<f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


class Val:
    """A wasm value tagged with its type (``Val.i32(5)``, ``Val.externref(obj)``...)."""

    __slots__ = ("_kind", "_val")

    def __init__(self, kind: str, val: Any) -> None:
        self._kind = kind
        self._val = val

    @classmethod
    def i32(cls, val: int) -> Val:
        if not isinstance(val, int):
            raise TypeError("expected an integer")
        return Val("i32", _wrap_signed(val, "i32"))

    @classmethod
    def i64(cls, val: int) -> Val:
        if not isinstance(val, int):
            raise TypeError("expected an integer")
        return Val("i64", _wrap_signed(val, "i64"))

    @classmethod
    def f32(cls, val: float) -> Val:
        if not isinstance(val, float):
            raise TypeError("expected a float")
        return Val("f32", f32_round(val))

    @classmethod
    def f64(cls, val: float) -> Val:
        if not isinstance(val, float):
            raise TypeError("expected a float")
        return Val("f64", float(val))

    @classmethod
    def v128(cls, val: int | bytes | bytearray) -> Val:
        """A 128-bit vector from an int (wrapped to 128 bits) or 16 little-endian bytes."""
        if isinstance(val, (bytes, bytearray)):
            if len(val) != 16:
                raise ValueError(f"a v128 needs 16 bytes, got {len(val)}")
            return Val("v128", int.from_bytes(val, "little"))
        if not isinstance(val, int) or isinstance(val, bool):
            raise TypeError("expected an integer or 16 bytes")
        return Val("v128", val & _MASK["v128"])

    @classmethod
    def externref(cls, extern: Any | None) -> Val:
        return Val("externref", extern)

    @classmethod
    def funcref(cls, f: Func | None) -> Val:
        return Val("funcref", f)

    @classmethod
    def ref_null(cls, ty: ValType) -> Val:
        if ty == ValType.externref():
            return Val.externref(None)
        if ty == ValType.funcref():
            return Val.funcref(None)
        raise WasmtimeError(f"Invalid reference type for `ref_null`: {ty}")

    def __eq__(self, rhs: object) -> bool:
        if isinstance(rhs, Val):
            return bool(self._kind == rhs._kind and self._val == rhs._val)
        return bool(self._val == rhs)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Val.{self._kind}({self._val!r})"

    @property
    def value(self) -> Any:
        return self._val

    @property
    def type(self) -> ValType:
        return ValType._from_kind(self._kind)

    def _as(self, kind: str) -> Any:
        return self._val if self._kind == kind else None

    def as_i32(self) -> int | None:
        return self._as("i32")  # type: ignore[no-any-return]

    def as_i64(self) -> int | None:
        return self._as("i64")  # type: ignore[no-any-return]

    def as_f32(self) -> float | None:
        return self._as("f32")  # type: ignore[no-any-return]

    def as_f64(self) -> float | None:
        return self._as("f64")  # type: ignore[no-any-return]

    def as_v128(self) -> int | None:
        return self._as("v128")  # type: ignore[no-any-return]

    def as_externref(self) -> Any | None:
        return self._as("externref")

    def as_funcref(self) -> Func | None:
        return self._as("funcref")  # type: ignore[no-any-return]


def public_to_core(store: Any, kind: str, val: Any) -> Any:
    """A public-form value already of type ``kind`` to its core form."""
    if kind in _MASK:
        return int(val) & _MASK[kind]
    if kind == "f32":
        return f32_round(float(val))
    if kind == "f64":
        return float(val)
    if kind == "funcref":
        return None if val is None else val._core_for(store)
    return val  # externref payload (None is null)
