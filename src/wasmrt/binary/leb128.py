"""LEB128 reading and writing for the Wasm binary format.

Invariants:
- Readers take ``(data, pos, end)`` and return ``(value, new_pos)``; they never
  read at or past ``end`` and raise ``MalformedError`` (never IndexError).
- An N-bit integer takes at most ``ceil(N / 7)`` bytes ("integer
  representation too long" otherwise); the unused bits of its last byte must
  be zero (unsigned) or copies of the sign bit (signed), else "integer too
  large".
- Writers emit the shortest (canonical) encoding.
"""

from __future__ import annotations

from wasmrt.errors import MalformedError

__all__ = [
    "read_s32",
    "read_s33",
    "read_s64",
    "read_u32",
    "read_unsigned",
    "read_signed",
    "write_signed",
    "write_unsigned",
]


def _eof(pos: int, end: int, data_len: int) -> MalformedError:
    if end < data_len:
        return MalformedError("unexpected end of section or function", pos)
    return MalformedError("unexpected end", pos)


def read_unsigned(data: bytes, pos: int, end: int, bits: int) -> tuple[int, int]:
    """Read an unsigned LEB128 integer of at most ``bits`` bits."""
    result = 0
    shift = 0
    last_shift = 7 * ((bits - 1) // 7)
    while True:
        if pos >= end:
            raise _eof(pos, end, len(data))
        b = data[pos]
        pos += 1
        if shift == last_shift:
            if b & 0x80:
                raise MalformedError("integer representation too long", pos - 1)
            if b >> (bits - shift):
                raise MalformedError("integer too large", pos - 1)
            return result | (b << shift), pos
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def read_signed(data: bytes, pos: int, end: int, bits: int) -> tuple[int, int]:
    """Read a signed LEB128 integer of at most ``bits`` bits."""
    result = 0
    shift = 0
    last_shift = 7 * ((bits - 1) // 7)
    while True:
        if pos >= end:
            raise _eof(pos, end, len(data))
        b = data[pos]
        pos += 1
        if shift == last_shift:
            if b & 0x80:
                raise MalformedError("integer representation too long", pos - 1)
            # Bits from (bits - shift - 1) up to 6 must all equal the sign bit.
            top = b >> (bits - shift - 1)
            if top != 0 and top != (0x7F >> (bits - shift - 1)):
                raise MalformedError("integer too large", pos - 1)
            result |= b << shift
            if b & 0x40:
                result -= 1 << (shift + 7)
            return result, pos
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos


def read_u32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end:
        b = data[pos]
        if b < 0x80:
            return b, pos + 1
    return read_unsigned(data, pos, end, 32)


def read_s32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end:
        b = data[pos]
        if b < 0x40:
            return b, pos + 1
        if b < 0x80:
            return b - 0x80, pos + 1
    return read_signed(data, pos, end, 32)


def read_s33(data: bytes, pos: int, end: int) -> tuple[int, int]:
    return read_signed(data, pos, end, 33)


def read_s64(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end:
        b = data[pos]
        if b < 0x40:
            return b, pos + 1
        if b < 0x80:
            return b - 0x80, pos + 1
    return read_signed(data, pos, end, 64)


def write_unsigned(value: int) -> bytes:
    """Canonical unsigned LEB128 of ``value`` (must be >= 0)."""
    if value < 0:
        raise ValueError(f"negative value {value} for unsigned LEB128")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def write_signed(value: int) -> bytes:
    """Canonical signed LEB128 of ``value``."""
    if -0x40 <= value < 0x40:
        return bytes((value & 0x7F,))
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if (value == 0 and not b & 0x40) or (value == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)
