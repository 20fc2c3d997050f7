"""Mutated suite modules: decode (and validate) either succeed or raise a
``WasmtimeError`` subclass, never anything else."""

from __future__ import annotations

import pytest
from binary_corpus import SuiteModule, load_corpus, validator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasmrt.binary import decode_module
from wasmrt.binary.leb128 import read_unsigned
from wasmrt.errors import MalformedError, WasmtimeError

MAX_SEED_SIZE = 64 * 1024  # keep the examples fast


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    corpus: list[SuiteModule] = load_corpus(tmp_path_factory.mktemp("suite"))
    out = sorted({m.data for m in corpus if len(m.data) <= MAX_SEED_SIZE})
    assert len(out) > 100
    return out


def section_size_offsets(data: bytes) -> list[int]:
    """Offsets of the section-size LEBs of a module (best effort)."""
    out = []
    pos = 8
    while pos < len(data):
        out.append(pos + 1)
        try:
            size, body = read_unsigned(data, pos + 1, len(data), 32)
        except MalformedError:
            break
        pos = body + size
    return out


def stretch_leb(data: bytes, pos: int, extra: int) -> bytes:
    """Rewrite the LEB128 at ``pos`` into a longer (overlong) encoding of the same value."""
    end = pos
    while end < len(data) and data[end] & 0x80:
        end += 1
    if end >= len(data):
        return data
    last = data[end]
    pad = bytes([0x80] * extra) + (b"\x7f" if last & 0x40 and extra else b"\x00")
    return data[:end] + bytes([last | 0x80]) + pad + data[end + 1 :]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        n = len(data)
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "stretch", "size"]))
        if op == "flip" and n:
            i = draw(st.integers(0, n - 1))
            data = data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
        elif op == "truncate":
            data = data[: draw(st.integers(0, n))]
        elif op == "insert":
            i = draw(st.integers(0, n))
            data = data[:i] + draw(st.binary(min_size=1, max_size=4)) + data[i:]
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            data = data[:i] + data[i + draw(st.integers(1, 4)) :]
        elif op == "stretch" and n:
            data = stretch_leb(data, draw(st.integers(0, n - 1)), draw(st.integers(1, 6)))
        elif op == "size":
            offsets = section_size_offsets(data)
            if offsets:
                pos = draw(st.sampled_from(offsets))
                data = stretch_leb(data, pos, draw(st.integers(1, 5)))
    return data


def check(data: bytes) -> None:
    validate = validator()
    try:
        validate(decode_module(data))
    except WasmtimeError:
        pass


def run_campaign(seeds: list[bytes], examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def inner(data: st.DataObject) -> None:
        check(data.draw(mutated(seeds)))

    inner()


def test_mutated_suite_modules(seeds: list[bytes]) -> None:
    run_campaign(seeds, 2000)


@pytest.mark.slow
def test_mutated_suite_modules_long(seeds: list[bytes]) -> None:
    run_campaign(seeds, 200_000)


def test_stretch_keeps_value_and_overlong_is_rejected() -> None:
    assert stretch_leb(b"\x05", 0, 1) == b"\x85\x80\x00"
    assert stretch_leb(b"\x7f", 0, 1) == b"\xff\x80\x7f"  # sign-extended for signed reads
    assert read_unsigned(b"\x85\x80\x00", 0, 3, 32) == (5, 3)
    with pytest.raises(MalformedError, match="representation too long"):
        read_unsigned(stretch_leb(b"\x05", 0, 5), 0, 7, 32)


def test_check_lets_other_exceptions_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(m: object) -> None:
        raise IndexError("bug")

    monkeypatch.setitem(globals(), "validator", lambda: boom)
    with pytest.raises(IndexError):
        check(b"\x00asm\x01\x00\x00\x00")
