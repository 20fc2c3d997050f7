"""Numeric literals of the text format: parsing and exact printing.

Invariants:
- Integer parsers return ``None`` when the token is not an integer literal
  at all and raise ``ValueError("... constant out of range")`` when it is
  one but does not fit; callers turn both into ``WatParseError``.
- ``parse_int(text, bits)`` accepts ``-2**(bits-1) .. 2**bits - 1`` and
  returns the value wrapped to the signed range (the IR convention).
- ``parse_float(text, bits)`` returns raw IEEE bits, rounded to nearest,
  ties to even, with exact integer arithmetic (decimal and hex literals,
  subnormals included). A literal that rounds to infinity is out of range.
  ``nan`` is the canonical quiet NaN; ``nan:0xN`` keeps its payload N, which
  must be in ``1 .. 2**mantissa_bits - 1``.
- ``format_float(bits, width)`` prints a literal that ``parse_float`` maps
  back to exactly ``bits`` (hex floats, ``inf``, ``nan:0x...``).
"""

from __future__ import annotations

import re

__all__ = ["format_float", "parse_float", "parse_int", "parse_uint"]

_NUM = r"[0-9](?:_?[0-9])*"
_HEX = r"[0-9A-Fa-f](?:_?[0-9A-Fa-f])*"
_INT_RE = re.compile(rf"([+-]?)(?:({_NUM})|0x({_HEX}))")
_UINT_RE = re.compile(rf"(?:({_NUM})|0x({_HEX}))")
_DEC_FLOAT_RE = re.compile(rf"([+-]?)({_NUM})(?:\.({_NUM})?)?(?:[eE]([+-]?{_NUM}))?")
_HEX_FLOAT_RE = re.compile(rf"([+-]?)0x({_HEX})(?:\.({_HEX})?)?(?:[pP]([+-]?{_NUM}))?")
_NAN_RE = re.compile(rf"([+-]?)nan(?::0x({_HEX}))?")
_INF_RE = re.compile(r"([+-]?)inf")

# (mantissa bits, exponent bits) per width.
_FORMATS = {32: (23, 8), 64: (52, 11)}


def parse_uint(text: str, bits: int) -> int | None:
    """An unsigned ``bits``-wide literal (no sign allowed), or None if not one."""
    m = _UINT_RE.fullmatch(text)
    if m is None:
        return None
    value = int(m.group(1).replace("_", "")) if m.group(1) else int(m.group(2).replace("_", ""), 16)
    if value >= 1 << bits:
        raise ValueError(f"i{bits} constant out of range")
    return value


def parse_int(text: str, bits: int) -> int | None:
    """A ``bits``-wide integer literal wrapped to the signed range, or None."""
    m = _INT_RE.fullmatch(text)
    if m is None:
        return None
    sign, dec, hexd = m.groups()
    value = int(dec.replace("_", "")) if dec is not None else int(hexd.replace("_", ""), 16)
    if sign == "-":
        value = -value
        if value < -(1 << (bits - 1)):
            raise ValueError(f"i{bits} constant out of range")
    elif value >= 1 << bits:
        raise ValueError(f"i{bits} constant out of range")
    if value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _round(num: int, den: int, bits: int) -> int:
    """Bits of the positive rational num/den rounded to the ``bits`` format."""
    mbits, ebits = _FORMATS[bits]
    bias = (1 << (ebits - 1)) - 1
    emin = 1 - bias
    # e = floor(log2(num/den))
    e = num.bit_length() - den.bit_length()
    if (num << -e if e < 0 else num) < (den << e if e > 0 else den):
        e -= 1
    if e < emin:
        e = emin
    shift = mbits - e
    if shift >= 0:
        q, r = divmod(num << shift, den)
        d = den
    else:
        d = den << -shift
        q, r = divmod(num, d)
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
    if q >= 1 << (mbits + 1):
        q >>= 1
        e += 1
    if e > bias:
        raise ValueError(f"f{bits} constant out of range")
    if q < 1 << mbits:
        return q  # subnormal (or zero)
    return ((e + bias) << mbits) | (q - (1 << mbits))


def parse_float(text: str, bits: int) -> int | None:
    """Raw bits of a ``bits``-wide float literal, or None if ``text`` is not one."""
    mbits, ebits = _FORMATS[bits]
    sign_bit = 1 << (bits - 1)
    inf = ((1 << ebits) - 1) << mbits
    m = _HEX_FLOAT_RE.fullmatch(text)
    if m is not None:
        sign, ipart, fpart, exp = m.groups()
        fpart = (fpart or "").replace("_", "")
        mant = int(ipart.replace("_", "") + fpart, 16)
        e2 = (int(exp.replace("_", "")) if exp else 0) - 4 * len(fpart)
        mag = _scaled(mant, 2, e2, bits, mant.bit_length() + e2, 1100, -1200)
    else:
        m = _DEC_FLOAT_RE.fullmatch(text)
        if m is not None:
            sign, ipart, fpart, exp = m.groups()
            fpart = (fpart or "").replace("_", "")
            digits = (ipart.replace("_", "") + fpart).lstrip("0")
            mant = int(digits or "0")
            e10 = (int(exp.replace("_", "")) if exp else 0) - len(fpart)
            mag = _scaled(mant, 10, e10, bits, len(digits) + e10, 400, -400)
        else:
            m = _NAN_RE.fullmatch(text)
            if m is not None:
                sign, payload = m.groups()
                p = 1 << (mbits - 1) if payload is None else int(payload.replace("_", ""), 16)
                if not 1 <= p < 1 << mbits:
                    raise ValueError(f"f{bits} constant out of range")
                mag = inf | p
            else:
                m = _INF_RE.fullmatch(text)
                if m is None:
                    return None
                sign = m.group(1)
                mag = inf
    return mag | sign_bit if sign == "-" else mag


def _scaled(mant: int, base: int, exp: int, bits: int, magnitude: int, hi: int, lo: int) -> int:
    """Round mant * base**exp; ``magnitude`` estimates its log_base for guards."""
    if mant == 0 or magnitude < lo:
        return 0
    if magnitude > hi:
        raise ValueError(f"f{bits} constant out of range")
    if exp >= 0:
        return _round(mant * base**exp, 1, bits)
    return _round(mant, base**-exp, bits)


def format_float(bits: int, width: int) -> str:
    """A literal that ``parse_float(_, width)`` maps back to ``bits`` exactly."""
    mbits, ebits = _FORMATS[width]
    sign = "-" if bits >> (width - 1) & 1 else ""
    exp = (bits >> mbits) & ((1 << ebits) - 1)
    frac = bits & ((1 << mbits) - 1)
    bias = (1 << (ebits - 1)) - 1
    if exp == (1 << ebits) - 1:
        if frac == 0:
            return f"{sign}inf"
        if frac == 1 << (mbits - 1):
            return f"{sign}nan"
        return f"{sign}nan:0x{frac:x}"
    if exp == 0 and frac == 0:
        return f"{sign}0x0p+0"
    # Pad the fraction to whole hex digits (shift left so the point stays put).
    pad = (-mbits) % 4
    digits = (mbits + pad) // 4
    hexfrac = f"{frac << pad:0{digits}x}".rstrip("0")
    lead, e = (1, exp - bias) if exp else (0, 1 - bias)
    return f"{sign}0x{lead}{'.' + hexfrac if hexfrac else ''}p{e:+d}"
