"""Hand-written binaries for the decoder's structural rules and the encoder."""

from __future__ import annotations

import pytest

from wasmrt import ir
from wasmrt.binary import decode_module, encode_module
from wasmrt.binary.leb128 import write_unsigned
from wasmrt.errors import MalformedError

HEADER = b"\x00asm\x01\x00\x00\x00"


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + write_unsigned(len(payload)) + payload


def func_module(body: bytes, locals_: bytes = b"\x00", extra: bytes = b"") -> bytes:
    code = locals_ + body
    return (
        HEADER
        + section(1, b"\x01\x60\x00\x00")
        + section(3, b"\x01\x00")
        + extra
        + section(10, b"\x01" + write_unsigned(len(code)) + code)
    )


def malformed(data: bytes, reason: str) -> MalformedError:
    with pytest.raises(MalformedError) as info:
        decode_module(data)
    assert info.value.reason == reason, str(info.value)
    return info.value


def test_empty_module() -> None:
    assert decode_module(HEADER) == ir.Module()
    assert encode_module(ir.Module()) == HEADER


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "unexpected end"),
        (b"\x00asn\x01\x00\x00\x00", "magic header not detected"),
        (b"\x00asm\x02\x00\x00\x00", "unknown binary version"),
        (HEADER + b"\x0d\x00", "malformed section id"),
        (
            HEADER + section(3, b"\x00") + section(1, b"\x00"),
            "unexpected content after last section",
        ),
        (
            HEADER + section(1, b"\x00") + section(1, b"\x00"),
            "unexpected content after last section",
        ),
        (HEADER + section(1, b"\x00\x00"), "section size mismatch"),
        (HEADER + section(3, b"\x01\x00"), "function and code section have inconsistent lengths"),
        (HEADER + section(6, b"\x01\x7f\x02\x41\x00\x0b"), "malformed mutability"),
        (HEADER + section(2, b"\x01\x01a\x01b\x04\x00"), "malformed import kind"),
        (HEADER + section(0, b"\x02\xff\xfe"), "malformed UTF-8 encoding"),
        (HEADER + section(12, b"\x01"), "data count and data section have inconsistent lengths"),
        (HEADER + section(4, b"\x01\x7f\x00\x00"), "malformed reference type"),
        (HEADER + section(5, b"\x01\x02\x00"), "integer too large"),
    ],
)
def test_structure_errors(data: bytes, reason: str) -> None:
    malformed(data, reason)


def test_error_carries_section_and_offset() -> None:
    e = malformed(HEADER + section(6, b"\x01\x7f\x02\x41\x00\x0b"), "malformed mutability")
    assert e.section == "global"
    assert e.offset == 12


def test_deep_nesting_is_iterative() -> None:
    depth = 200_000
    body = b"\x02\x40" * depth + b"\x0b" * depth + b"\x0b"
    m = decode_module(func_module(body))
    assert len(m.funcs[0].body) == 2 * depth + 1
    assert decode_module(encode_module(m)) == m


def test_missing_end_and_trailing_bytes() -> None:
    malformed(func_module(b"\x01"), "unexpected end")
    malformed(func_module(b"\x0b\x01"), "END opcode expected")


def test_too_many_locals() -> None:
    locs = b"\x02" + b"\xff\xff\xff\xff\x0f\x7f" + b"\x01\x7e"
    malformed(func_module(b"\x0b", locals_=locs), "too many locals")
    ok = b"\x02" + b"\xfe\xff\xff\xff\x0f\x7f" + b"\x01\x7e"
    m = decode_module(func_module(b"\x0b", locals_=ok))
    assert m.funcs[0].locals == [(2**32 - 2, "i32"), (1, "i64")]


def test_zero_byte_expected() -> None:
    malformed(func_module(b"\x3f\x01\x1a\x0b"), "zero byte expected")
    malformed(func_module(b"\x40\x80\x00\x1a\x0b"), "zero byte expected")


def test_data_count_required() -> None:
    malformed(func_module(b"\xfc\x09\x00\x0b"), "data count section required")
    data = section(11, b"\x01\x01\x00")
    ok = func_module(b"\xfc\x09\x00\x0b", extra=section(12, b"\x01")) + data
    m = decode_module(ok)
    assert m.data_count == 1
    assert m.funcs[0].body == [ir.Instr("data.drop", (0,)), ir.Instr("end")]


def test_illegal_opcodes() -> None:
    malformed(func_module(b"\x06\x0b"), "illegal opcode")
    malformed(func_module(b"\xfc\x12\x0b"), "illegal opcode")
    malformed(func_module(b"\xfd\x80\x02\x0b"), "illegal opcode")  # 256


def test_simd_subopcode_is_leb() -> None:
    # i8x16.splat as an overlong LEB (0x0f) is accepted.
    m = decode_module(func_module(b"\x41\x00\xfd\x8f\x00\x1a\x0b"))
    assert m.funcs[0].body[1] == ir.Instr("i8x16.splat")


def test_element_encodings_normalise() -> None:
    ref0 = [ir.Instr("ref.func", (0,)), ir.Instr("end")]
    offset = b"\x41\x00\x0b"
    forms = {
        0: b"\x00" + offset + b"\x01\x00",
        2: b"\x02\x00" + offset + b"\x00\x01\x00",
        4: b"\x04" + offset + b"\x01\xd2\x00\x0b",
        6: b"\x06\x00" + offset + b"\x70\x01\xd2\x00\x0b",
    }
    decoded = []
    for payload in forms.values():
        m = decode_module(func_module(b"\x0b", extra=section(9, b"\x01" + payload)))
        decoded.append(m.elems[0])
    assert all(e == decoded[0] for e in decoded)
    assert decoded[0].init == [ref0]
    assert decoded[0].mode == "active" and decoded[0].table == 0
    passive = [b"\x01\x00\x01\x00", b"\x05\x70\x01\xd2\x00\x0b"]
    declarative = [b"\x03\x00\x01\x00", b"\x07\x70\x01\xd2\x00\x0b"]
    for payloads, mode in ((passive, "passive"), (declarative, "declarative")):
        got = [
            decode_module(func_module(b"\x0b", extra=section(9, b"\x01" + p))).elems[0]
            for p in payloads
        ]
        assert got[0] == got[1] == ir.Elem(mode, "funcref", [ref0])  # type: ignore[arg-type]


def test_broken_name_section_is_best_effort() -> None:
    good = b"\x00\x04\x03mod" + b"\x01\x05\x01\x00\x02fn"
    m = decode_module(HEADER + section(0, b"\x04name" + good + b"\x02\x09\x01\x00\xff"))
    assert m.names is not None
    assert m.names.module == "mod"
    assert m.names.functions == {0: "fn"}
    assert m.customs[0].name == "name"


def test_customs_round_trip_at_their_positions() -> None:
    data = (
        HEADER
        + section(0, b"\x01a")
        + section(1, b"\x00")
        + section(0, b"\x01b")
        + section(12, b"\x00")
        + section(0, b"\x01c")
    )
    m = decode_module(data)
    assert [(c.name, c.after) for c in m.customs] == [("a", 0), ("b", 1), ("c", 12)]
    assert encode_module(m) == data
