"""LEB128 readers and writers: bounds, overlong forms, unused bits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wasmrt.binary.leb128 import (
    read_s32,
    read_s33,
    read_s64,
    read_signed,
    read_u32,
    read_unsigned,
    write_signed,
    write_unsigned,
)
from wasmrt.errors import MalformedError


@given(st.integers(0, 2**32 - 1))
def test_u32_round_trip(v: int) -> None:
    raw = write_unsigned(v)
    assert read_u32(raw, 0, len(raw)) == (v, len(raw))
    assert len(raw) <= 5


@given(st.integers(-(2**63), 2**63 - 1))
def test_s64_round_trip(v: int) -> None:
    raw = write_signed(v)
    assert read_s64(raw, 0, len(raw)) == (v, len(raw))
    assert len(raw) <= 10


@given(st.integers(-(2**31), 2**31 - 1))
def test_s32_round_trip(v: int) -> None:
    raw = write_signed(v)
    assert read_s32(raw, 0, len(raw)) == (v, len(raw))
    assert read_s33(raw, 0, len(raw)) == (v, len(raw))


@pytest.mark.parametrize(
    ("raw", "bits", "value"),
    [
        (b"\x80\x00", 32, 0),  # overlong but within 5 bytes is fine
        (b"\xff\xff\xff\xff\x0f", 32, 2**32 - 1),
        (b"\x80\x80\x80\x80\x00", 32, 0),
        (b"\x01", 1, 1),
    ],
)
def test_unsigned_ok(raw: bytes, bits: int, value: int) -> None:
    assert read_unsigned(raw, 0, len(raw), bits) == (value, len(raw))


@pytest.mark.parametrize(
    ("raw", "bits", "value"),
    [
        (b"\xff\xff\xff\xff\x07", 32, 2**31 - 1),
        (b"\x80\x80\x80\x80\x78", 32, -(2**31)),
        (b"\xff\xff\xff\xff\x7f", 32, -1),
        (b"\xff\xff\xff\xff\x0f", 33, 2**32 - 1),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00", 64, 2**63 - 1),
        (b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f", 64, -(2**63)),
        (b"\x7f", 32, -1),
        (b"\xc0\x00", 32, 64),
    ],
)
def test_signed_ok(raw: bytes, bits: int, value: int) -> None:
    assert read_signed(raw, 0, len(raw), bits) == (value, len(raw))


@pytest.mark.parametrize(
    ("raw", "bits", "reason"),
    [
        (b"\x80\x80\x80\x80\x80\x00", 32, "integer representation too long"),
        (b"\xff\xff\xff\xff\x1f", 32, "integer too large"),
        (b"\x80\x80\x80\x80\x10", 32, "integer too large"),
        (b"\x02", 1, "integer too large"),
        (b"\x81\x00", 1, "integer representation too long"),
        (b"\x80", 32, "unexpected end"),
        (b"", 32, "unexpected end"),
    ],
)
def test_unsigned_malformed(raw: bytes, bits: int, reason: str) -> None:
    with pytest.raises(MalformedError) as info:
        read_unsigned(raw, 0, len(raw), bits)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "bits", "reason"),
    [
        (b"\xff\xff\xff\xff\x4f", 32, "integer too large"),  # unused bits not sign copies
        (b"\x80\x80\x80\x80\x70", 32, "integer too large"),
        (b"\xff\xff\xff\xff\x1f", 33, "integer too large"),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 64, "integer too large"),
        (b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7e", 64, "integer too large"),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00", 64, "integer representation too long"),
    ],
)
def test_signed_malformed(raw: bytes, bits: int, reason: str) -> None:
    with pytest.raises(MalformedError) as info:
        read_signed(raw, 0, len(raw), bits)
    assert info.value.reason == reason


def test_reads_stop_at_end_bound() -> None:
    with pytest.raises(MalformedError, match="unexpected end of section"):
        read_u32(b"\x80\x01", 0, 1)
