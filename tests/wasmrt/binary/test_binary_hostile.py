"""Hostile and oversized binaries: only documented errors, memory and time linear in the input.

The custom-section reproducer of issue 14 (millions of empty custom
sections) and a Hypothesis property over generated hostile binaries (deep
nesting, huge counts, runs of custom sections, truncated and mutated
modules). Decoding must either succeed or raise ``MalformedError``, within

    peak traced memory <= DECODE_BYTES_PER_BYTE * len(binary) + DECODE_FIXED
    wall time          <= TIME_FIXED + TIME_PER_BYTE * len(binary)

(time very generous: it only catches super-linear blowups on a loaded
machine under tracemalloc). What decodes is then built by ``wasmrt.Module``,
which may only raise ``WasmtimeError`` subclasses.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wasmrt
from support.bounds import measure
from wasmrt.binary import decode_module
from wasmrt.binary.leb128 import write_unsigned
from wasmrt.errors import MalformedError, WasmtimeError
from wasmrt.text import wat2wasm

DECODE_BYTES_PER_BYTE = 64
DECODE_FIXED = 8 << 20
TIME_FIXED = 20.0
TIME_PER_BYTE = 50e-6

HEADER = b"\x00asm\x01\x00\x00\x00"


def _section(sid: int, body: bytes) -> bytes:
    return bytes([sid]) + write_unsigned(len(body)) + body


def _decode_bounded(data: bytes) -> bool:
    """Decode ``data`` within the stated bounds; False when it is malformed."""
    got = measure(lambda: decode_module(data), (MalformedError,))
    limit = DECODE_BYTES_PER_BYTE * len(data) + DECODE_FIXED
    assert got.peak <= limit, f"peak {got.peak} > {limit} for {len(data)} bytes"
    assert got.seconds <= TIME_FIXED + TIME_PER_BYTE * len(data)
    return got.error is None


def test_a_million_empty_custom_sections_are_cheap() -> None:
    n = 1_000_000
    data = HEADER + b"\x00\x01\x00" * n
    got = measure(lambda: decode_module(data))
    assert len(got.value.customs) == n
    assert {(c.name, c.data) for c in got.value.customs} == {("", b"")}
    # A list slot each (issue 14: ~88 bytes each, 21 s for 12.5 M).
    assert got.peak <= 4 * len(data) + (8 << 20), got.peak
    wasmrt.Module(wasmrt.Engine(), data)


def test_distinct_custom_sections_keep_their_contents_and_order() -> None:
    secs = [(f"s{i}", bytes([i % 256]) * (i % 5)) for i in range(20_000)]
    body = b"".join(
        _section(0, write_unsigned(len(nm)) + nm.encode() + payload) for nm, payload in secs
    )
    type_sec = _section(1, b"\x01\x60\x00\x00")
    m = decode_module(HEADER + body[: len(body) // 2] + type_sec + body[len(body) // 2 :])
    assert [(c.name, c.data) for c in m.customs] == secs
    afters = [c.after for c in m.customs]
    assert afters == sorted(afters) and set(afters) == {0, 1}


def test_custom_sections_fall_back_to_the_checked_path() -> None:
    # A size running past the end, a bad UTF-8 name, a name section: each is
    # decoded (or reported) exactly as by the general path.
    ok = HEADER + b"\x00\x02\x00x" * 3
    assert len(decode_module(ok).customs) == 3
    for bad in (b"\x00\x05\x00x", b"\x00\x02\x01\xff", b"\x00\x00"):
        got = measure(lambda bad=bad: decode_module(ok + bad), (MalformedError,))
        assert isinstance(got.error, MalformedError)
    named = _section(0, b"\x04name" + _section(0, b"\x03mod"))
    assert decode_module(HEADER + named).names.module == "mod"


# ------------------------------------------------------------------ property


def _func_module(body: bytes, locals_: bytes = b"\x00") -> bytes:
    code = write_unsigned(len(locals_ + body)) + locals_ + body
    return (
        HEADER
        + _section(1, b"\x01\x60\x00\x00")
        + _section(3, b"\x01\x00")
        + _section(10, b"\x01" + code)
    )


_SEEDS = [
    wat2wasm(t)
    for t in (
        '(module (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add))',
        '(module (memory 1) (data (i32.const 8) "hi") (func (drop (i32.load (i32.const 8)))))',
        "(module (type $t (func)) (table 2 funcref) (elem (i32.const 0) $f $f) (func $f (type $t)"
        " (block $b (br_if $b (i32.const 1)))))",
        "(module (global (mut i64) (i64.const -1)) (func (loop $l (br $l))))",
        "(module (func (if (result i32) (i32.const 0) (then (i32.const 1)) (else (i32.const 2)))"
        " drop))",
    )
]


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 20_000))
    op = draw(st.sampled_from([b"\x02\x40", b"\x03\x40", b"\x41\x00\x04\x40"]))
    ends = draw(st.sampled_from([depth, depth + 1, max(depth - 1, 0), 0]))
    return _func_module(op * depth + b"\x0b" * ends)


@st.composite
def counted(draw: st.DrawFn) -> bytes:
    n = draw(st.sampled_from([0, 1, 1000, 100_000, 0xFFFF_FFFF, 0x1_0000_0000]))
    what = draw(st.sampled_from(["types", "funcs", "locals", "data", "imports", "br_table"]))
    vec = write_unsigned(n % (1 << 35))
    if what == "types":
        return HEADER + _section(1, vec + b"\x60\x00\x00" * min(n, 20_000))
    if what == "funcs":
        return HEADER + _section(3, vec + b"\x00" * min(n, 50_000))
    if what == "locals":
        return _func_module(b"\x0b", b"\x02" + vec + b"\x7f" + vec + b"\x7e")
    if what == "data":
        return HEADER + _section(11, b"\x01\x01" + vec + b"x" * min(n, 50_000))
    if what == "imports":
        return HEADER + _section(2, vec + b"\x01m\x01f\x03\x7f\x00" * min(n, 20_000))
    return _func_module(b"\x41\x00\x0e" + vec + b"\x00" * min(n, 50_000) + b"\x00\x0b")


@st.composite
def customs(draw: st.DrawFn) -> bytes:
    unit = draw(
        st.sampled_from(
            [b"\x00\x01\x00", b"\x00\x02\x00x", b"\x00\x03\x01ab", b"\x00\x00", b"\x00\x7f\x00"]
        )
    )
    n = draw(st.integers(0, 100_000))
    tail = draw(st.sampled_from([b"", b"\x00", b"\x00\x80", b"\x01\x04\x01\x60\x00\x00"]))
    return HEADER + unit * n + tail


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(_SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        op = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate"]))
        i = draw(st.integers(0, n))
        if op == "flip" and i < n:
            data = data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
        elif op == "truncate":
            data = data[:i]
        elif op == "insert":
            data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i:]
        else:
            j = draw(st.integers(i, n))
            data = data[:i] + data[i:j] * draw(st.integers(1, 2_000)) + data[j:]
    return data


hostile_binary = st.one_of(nested(), counted(), customs(), mutated())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=hostile_binary)
def test_hostile_binary_only_documented_errors_linear_cost(data: bytes) -> None:
    if not _decode_bounded(data):
        return
    try:
        wasmrt.Module(wasmrt.Engine(), data)
    except WasmtimeError:
        pass  # invalid, or beyond an implementation limit: a documented error
