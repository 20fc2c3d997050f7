"""Unit tests of the text layer: lexer, literals, WAT abbreviations and errors, WAST commands."""

from __future__ import annotations

import struct

import pytest

from wasmrt import ir
from wasmrt.errors import WatParseError
from wasmrt.text import parse_wast, parse_wat
from wasmrt.text.lexer import Source, read_sexprs
from wasmrt.text.numbers import format_float, parse_float, parse_int
from wasmrt.text.wast import (
    AssertMalformed,
    AssertReturn,
    AssertTrap,
    ModuleCommand,
    Register,
    WastValue,
)

I = ir.Instr  # noqa: E741


def f32(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def test_string_escapes_and_comments() -> None:
    nodes = read_sexprs(
        Source('(a (; x (; nested ;) ;) "\\t\\n\\r\\"\\\'\\\\\\41\\u{1F600}\\u{e9}") ;; tail\n')
    )
    (lst,) = nodes
    assert lst.items[1].string_bytes() == b"\t\n\r\"'\\A" + "😀é".encode()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [('(a\n  "abc)', 2, 3), ("(a (; b", 1, 4), ("(a\n  b))", 2, 5), ("(a ;b)", 1, 4)],
)
def test_lexer_errors_have_positions(text: str, line: int, col: int) -> None:
    with pytest.raises(WatParseError) as e:
        read_sexprs(Source(text))
    assert (e.value.line, e.value.column) == (line, col)


@pytest.mark.parametrize("bad", ['"\\q"', '"\\u{D800}"', '"\\u{110000}"', '"a\tb"'])
def test_bad_string_contents_fail_lazily(bad: str) -> None:
    (lst,) = read_sexprs(Source(f"(data {bad})"))
    with pytest.raises(WatParseError):
        lst.items[1].string_bytes()  # type: ignore[union-attr]


def test_integer_literals() -> None:
    assert parse_int("0xffff_ffff", 32) == -1
    assert parse_int("-0x8000_0000", 32) == -(2**31)
    assert parse_int("4294967295", 32) == -1
    assert parse_int("+7", 32) == 7
    for bad in ("0x1_0000_0000", "-2147483649"):
        with pytest.raises(ValueError):
            parse_int(bad, 32)
    for junk in ("1__0", "_1", "1_", "0x", "x1", "1.0"):
        assert parse_int(junk, 32) is None


@pytest.mark.parametrize(
    ("text", "bits", "expect"),
    [
        ("0x1p-149", 32, 1),
        ("0x1p-150", 32, 0),  # tie to even -> 0
        ("0x1.8p-149", 32, 2),  # tie to even -> 2
        ("0x1.fffffefffffffffffp127", 32, 0x7F7FFFFF),
        ("1.5", 32, f32(1.5)),
        ("-0", 64, 1 << 63),
        ("0.1", 64, f64(0.1)),
        ("1e-400", 64, 0),
        ("4.9406564584124654e-324", 64, 1),
        ("1_000.000_1e1_0", 64, f64(1000.0001e10)),
        ("nan", 32, 0x7FC00000),
        ("-nan:0x1", 32, 0xFF800001),
        ("inf", 64, 0x7FF0000000000000),
        ("0x1.fffffffffffff8p1023", 64, None),
    ],
)
def test_float_literals_round_exactly(text: str, bits: int, expect: int | None) -> None:
    if expect is None:
        with pytest.raises(ValueError, match="out of range"):
            parse_float(text, bits)
    else:
        assert parse_float(text, bits) == expect
        assert parse_float(format_float(expect, bits), bits) == expect


def _body(text: str) -> list[ir.Instr]:
    return parse_wat(f"(module (func {text}))").funcs[0].body


def test_folded_if_labels_and_br_table() -> None:
    body = _body(
        "(block $out (if $i (result i32) (i32.const 1) (then (br $out)) (else (i32.const 2))) drop)"
        " block $b loop br_table $b 0 1 end end $b"
    )
    assert body == [
        I("block", (None,)),
        I("i32.const", (1,)),
        I("if", ("i32",)),
        I("br", (1,)),
        I("else"),
        I("i32.const", (2,)),
        I("end"),
        I("drop"),
        I("end"),
        I("block", (None,)),
        I("loop", (None,)),
        I("br_table", ((1, 0), 1)),
        I("end"),
        I("end"),
        I("end"),
    ]


def test_implicit_types_are_appended_in_order_and_reused() -> None:
    m = parse_wat(
        "(module (func (param i64)) (type $t (func (result i32)))"
        " (func (result i32) (block (param i32) (result f32) unreachable) unreachable)"
        " (func (type $t) (call_indirect (param i64) (i32.const 0))) (table 1 funcref))"
    )
    assert m.types == [
        ir.FuncType((), ("i32",)),
        ir.FuncType(("i64",), ()),
        ir.FuncType(("i32",), ("f32",)),
    ]
    assert [f.type_idx for f in m.funcs] == [1, 0, 0]
    assert m.funcs[1].body[0] == I("block", (2,))


def test_inline_import_export_elem_data_abbreviations() -> None:
    m = parse_wat(
        '(module (func $i (import "m" "f") (param i32)) (global (export "g") (export "h") (mut i32) (i32.const 7))'
        ' (table $t (export "t") funcref (elem $i $f)) (memory (data "ab" "c")) (func $f)'
        ' (elem declare func $f) (data (memory 0) (offset (i32.const 1)) "x") (start $f))'
    )
    assert m.imports == [ir.Import("m", "f", "func", 0)]
    assert [e.name for e in m.exports] == ["g", "h", "t"]
    assert m.tables == [ir.TableType("funcref", ir.Limits(2, 2))]
    assert m.elems[0].init == [[I("ref.func", (0,)), I("end")], [I("ref.func", (1,)), I("end")]]
    assert m.elems[1].mode == "declarative"
    assert m.mems == [ir.MemoryType(ir.Limits(1, 1))] and m.datas[0].init == b"abc"
    assert m.start == 1 and m.names is not None and m.names.functions == {0: "i", 1: "f"}


def test_simd_immediates() -> None:
    body = _body(
        "(v128.const i8x16 -1 0 1 2 3 4 5 6 7 8 9 10 11 12 13 0xff) (v128.const f64x2 1 -0)"
        " (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 31) (v128.load8_lane offset=2 align=1 15 (i32.const 0))"
    )
    assert body[0].imm[0] == bytes([255] + list(range(14)) + [255])
    assert body[1].imm[0] == struct.pack("<dd", 1.0, -0.0)
    assert body[2].imm[0] == bytes([*range(15), 31])
    assert body[4] == I("v128.load8_lane", (0, 2, 15))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(func (br $nope))", "unknown label"),
        ("(func block $a end $b)", "mismatching label"),
        ("(func $f) (func $f)", "duplicate func"),
        ("(func (local $x i32) (local $x i32))", "duplicate local"),
        ('(func) (import "a" "b" (func))', "import after function"),
        ("(memory 1) (func (i32.load align=3 (i32.const 0)) drop)", "alignment"),
        ("(func (i32.const 0x1_0000_0000) drop)", "constant out of range"),
        ("(func (f32.const 0x1p128) drop)", "constant out of range"),
        ("(func (i32.foo))", "unknown operator"),
        ("(type $t (func)) (func (type $t) (param i32))", "inline function type"),
        ("(func (v128.const i32x4 1 2 3) drop)", "wrong number of lane literals"),
        ("(start 0) (start 0) (func)", "multiple start sections"),
        ('(func (export "\\ff"))', "malformed UTF-8"),
    ],
)
def test_malformed_text(text: str, message: str) -> None:
    with pytest.raises(WatParseError, match=message) as e:
        parse_wat(f"(module {text})")
    assert e.value.line == 1 and e.value.column > 0


def test_binary_and_quote_modules() -> None:
    from wasmrt.text import wat2wasm

    assert wat2wasm('(module binary "\\00asm" "\\01\\00\\00\\00")') == b"\x00asm\x01\x00\x00\x00"
    assert parse_wat('(module quote "(func (export \\"f\\"))")').exports == [
        ir.Export("f", "func", 0)
    ]


def test_wast_commands_are_lazy_and_typed() -> None:
    cmds = parse_wast(
        """(module $M (func (export "f") (param f32) (result f32) local.get 0))
(register "m" $M)
(assert_return (invoke $M "f" (f32.const -0x1p-1)) (f32.const nan:canonical))
(assert_return (invoke "g") (v128.const f32x4 1 nan:arithmetic 0 -1) (ref.null extern) (ref.extern 3))
(assert_malformed (module quote "(func (i32.const 0x))") "unknown operator")
(assert_trap (module (func unreachable) (start 0)) "unreachable")
""",
        "x.wast",
    )
    mod, reg, ret, ret2, mal, trap = cmds
    assert isinstance(mod, ModuleCommand) and mod.module.name == "M" and mod.line == 1
    assert isinstance(reg, Register) and (reg.name, reg.module) == ("m", "M")
    assert isinstance(ret, AssertReturn) and ret.action.module == "M"
    assert ret.action.args == (WastValue("f32", 0xBF000000),)
    assert ret.expected == (WastValue("f32", None, "nan:canonical"),)
    assert isinstance(ret2, AssertReturn)
    v128, null, ext = ret2.expected
    assert v128.bits is None and v128.lanes == (0x3F800000, "nan:arithmetic", 0, 0xBF800000)
    assert null.is_null and ext == WastValue("externref", 3)
    assert isinstance(mal, AssertMalformed) and mal.module.kind == "quote"
    with pytest.raises(WatParseError):
        mal.module.parse()
    assert isinstance(trap, AssertTrap) and trap.action is None and trap.module is not None
    assert trap.module.parse().start == 0
