"""WAST scripts -> a list of ``Command`` dataclasses.

Invariants:
- ``parse_wast`` reads the whole script once (lexical errors and malformed
  commands raise ``WatParseError``) but parses no module: every
  ``WastModule`` keeps its source and is parsed only when the caller asks
  (``parse()`` / ``to_bytes()``), so a script whose ``assert_malformed``
  modules are malformed still yields its full command list.
- ``line`` is the 1-based line of the command's opening parenthesis.
- Module and instance names are stored without their ``$``.
- Values (``WastValue``) are bit patterns: i32/i64 unsigned, f32/f64 raw
  IEEE bits, v128 a 128-bit unsigned int with lane 0 in the low bits, so
  callers compare bit for bit. Expected-only patterns are spelled in
  ``pattern`` / ``lanes`` (see ``WastValue``).
- ``assert_trap`` keeps the spec's two forms: with an ``action`` (a trap at
  run time) or with a ``module`` (a trap during instantiation, what
  ``wasm-tools json-from-wast`` calls ``assert_uninstantiable``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wasmrt import ir
from wasmrt.binary import decode_module, encode_module
from wasmrt.errors import WatParseError
from wasmrt.text.lexer import STRING, WORD, Atom, Node, SList, Source, read_sexprs
from wasmrt.text.numbers import parse_float, parse_int
from wasmrt.text.wat import module_from_fields, module_kind, parse_wat, strings_payload, wat2wasm

__all__ = [
    "Action",
    "ActionCommand",
    "AssertExhaustion",
    "AssertInvalid",
    "AssertMalformed",
    "AssertReturn",
    "AssertTrap",
    "AssertUninstantiable",
    "AssertUnlinkable",
    "Command",
    "ModuleCommand",
    "Register",
    "WastModule",
    "WastValue",
    "parse_wast",
]

NAN_CANONICAL = "nan:canonical"
NAN_ARITHMETIC = "nan:arithmetic"
_LANES = {
    "i8x16": ("i8", 16, 8),
    "i16x8": ("i16", 8, 16),
    "i32x4": ("i32", 4, 32),
    "i64x2": ("i64", 2, 64),
    "f32x4": ("f32", 4, 32),
    "f64x2": ("f64", 2, 64),
}


@dataclass(frozen=True, slots=True)
class WastValue:
    """An argument or expected result.

    - ``i32``/``i64``/``f32``/``f64``: ``bits`` is the unsigned bit pattern.
      An expected float may instead have ``bits=None`` and ``pattern``
      ``"nan:canonical"`` or ``"nan:arithmetic"``.
    - ``v128``: ``lane_type`` (``"i8"`` ... ``"f64"``) and ``lanes`` (each an
      unsigned lane pattern, or a NaN pattern string for float lanes of an
      expected value); ``bits`` is the whole 128-bit value, ``None`` when a
      lane is a pattern.
    - ``funcref``/``externref``: ``bits=None, pattern=None`` is the null
      reference; ``ref.extern N`` has ``bits=N``; ``pattern`` ``"ref.func"``
      / ``"ref.extern"`` (expected only) means any non-null reference.
    """

    type: str
    bits: int | None = None
    pattern: str | None = None
    lane_type: str | None = None
    lanes: tuple[int | str, ...] = ()

    @property
    def is_null(self) -> bool:
        return self.type in ir.REFTYPES and self.bits is None and self.pattern is None


@dataclass(slots=True)
class WastModule:
    """A module as written in the script; parsed lazily.

    ``kind`` is ``"text"`` (``text`` is the ``(module ...)`` source),
    ``"binary"`` (``binary`` holds the bytes) or ``"quote"`` (``text`` is the
    quoted strings joined by spaces, decoded with ``surrogateescape`` for
    display; ``quote`` holds the exact bytes that ``parse()`` reads).
    """

    line: int
    kind: Literal["text", "binary", "quote"]
    name: str | None = None
    text: str | None = None
    binary: bytes | None = None
    quote: bytes | None = None
    filename: str = ""
    node: SList | None = field(default=None, repr=False, compare=False)

    def parse(self) -> ir.Module:
        """The IR. ``WatParseError`` for a malformed text/quote module;
        a binary module goes through ``wasmrt.binary.decode_module``."""
        if self.kind == "text":
            assert self.node is not None
            _, _, i = module_kind(self.node)
            return module_from_fields(self.node.items[i:], self.node, self.name)
        if self.kind == "quote":
            assert self.quote is not None
            return parse_wat(self.quote, self.filename)
        assert self.binary is not None
        return decode_module(self.binary)  # type: ignore[no-any-return]

    def to_bytes(self) -> bytes:
        """The binary module (a binary module's bytes as given)."""
        if self.kind == "binary":
            assert self.binary is not None
            return self.binary
        if self.kind == "quote":
            assert self.quote is not None
            return wat2wasm(self.quote, self.filename)
        return encode_module(self.parse())  # type: ignore[no-any-return]


@dataclass(slots=True)
class Action:
    kind: Literal["invoke", "get"]
    module: str | None
    field: str
    args: tuple[WastValue, ...] = ()
    line: int = 0


@dataclass(slots=True)
class Command:
    line: int


@dataclass(slots=True)
class ModuleCommand(Command):
    module: WastModule


@dataclass(slots=True)
class Register(Command):
    name: str  # the name the instance is registered as
    module: str | None  # which instance (None: the latest)


@dataclass(slots=True)
class ActionCommand(Command):
    action: Action


@dataclass(slots=True)
class AssertReturn(Command):
    action: Action
    expected: tuple[WastValue, ...]


@dataclass(slots=True)
class AssertTrap(Command):
    message: str
    action: Action | None = None
    module: WastModule | None = None


@dataclass(slots=True)
class AssertExhaustion(Command):
    action: Action
    message: str


@dataclass(slots=True)
class AssertInvalid(Command):
    module: WastModule
    message: str


@dataclass(slots=True)
class AssertMalformed(Command):
    module: WastModule
    message: str


@dataclass(slots=True)
class AssertUnlinkable(Command):
    module: WastModule
    message: str


@dataclass(slots=True)
class AssertUninstantiable(Command):
    module: WastModule
    message: str


_MODULE_ASSERTS: dict[
    str, type[AssertInvalid | AssertMalformed | AssertUnlinkable | AssertUninstantiable]
] = {
    "assert_invalid": AssertInvalid,
    "assert_malformed": AssertMalformed,
    "assert_unlinkable": AssertUnlinkable,
    "assert_uninstantiable": AssertUninstantiable,
}


class _Reader:
    def __init__(self, src: Source) -> None:
        self.src = src

    def line(self, node: Node) -> int:
        return self.src.line_col(node.pos)[0]

    def unexpected(self, node: Node | None, parent: SList, what: str) -> WatParseError:
        if node is None:
            return parent.src.error(f"unexpected end, expected {what}", parent.end - 1)
        return node.error(f"unexpected token, expected {what}")

    def string(self, node: Node | None, parent: SList) -> str:
        if not isinstance(node, Atom) or node.kind != STRING:
            raise self.unexpected(node, parent, "a string")
        try:
            return node.string_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise node.error("malformed UTF-8 encoding") from None

    def module(self, node: Node | None, parent: SList) -> WastModule:
        if not isinstance(node, SList) or node.head() != "module":
            raise self.unexpected(node, parent, "(module ...)")
        name, kind, i = module_kind(node)
        line = self.line(node)
        fname = self.src.name
        if kind == "binary":
            return WastModule(
                line, "binary", name, None, strings_payload(node, i), None, fname, node
            )
        if kind == "quote":
            parts = []
            for s in node.items[i:]:
                if not isinstance(s, Atom) or s.kind != STRING:
                    raise self.unexpected(s, node, "a string")
                parts.append(s.string_bytes())
            raw = b" ".join(parts)
            text = raw.decode("utf-8", "surrogateescape")
            return WastModule(line, "quote", name, text, None, raw, fname, node)
        node.release()  # parsed again, field by field, when the caller asks
        return WastModule(line, "text", name, node.source_text(), None, None, fname, node)

    def action(self, node: Node | None, parent: SList) -> Action:
        h = node.head() if isinstance(node, SList) else None
        if h not in ("invoke", "get") or not isinstance(node, SList):
            raise self.unexpected(node, parent, "(invoke ...) or (get ...)")
        items = node.items
        i = 1
        mod = None
        first = _at(node, 1)
        if isinstance(first, Atom) and first.kind == WORD and first.text.startswith("$"):
            mod = first.text[1:]
            i = 2
        name = self.string(_at(node, i), node)
        args = tuple(self.value(a, node, expected=False) for a in items[i + 1 :])
        if h == "get" and args:
            raise self.unexpected(items[i + 1], node, "end of (get ...)")
        return Action(h, mod, name, args, self.line(node))  # type: ignore[arg-type]

    def value(self, node: Node | None, parent: SList, expected: bool) -> WastValue:
        if not isinstance(node, SList):
            raise self.unexpected(node, parent, "a constant")
        h = node.head()
        items = node.items
        arg = _at(node, 1)
        if h in ("i32.const", "i64.const"):
            bits = 32 if h == "i32.const" else 64
            if len(items) != 2:
                raise self.unexpected(_at(node, 2), node, "one literal")
            return WastValue(h[:3], self.int_bits(arg, node, bits))
        if h in ("f32.const", "f64.const"):
            if len(items) != 2:
                raise self.unexpected(_at(node, 2), node, "one literal")
            if expected and isinstance(arg, Atom) and arg.text in (NAN_CANONICAL, NAN_ARITHMETIC):
                return WastValue(h[:3], None, arg.text)
            return WastValue(h[:3], self.float_bits(arg, node, 32 if h == "f32.const" else 64))
        if h == "v128.const":
            shape = _at(node, 1)
            if not isinstance(shape, Atom) or shape.text not in _LANES:
                raise self.unexpected(shape, node, "a lane shape")
            lane_type, count, bits = _LANES[shape.text]
            if len(items) != 2 + count:
                raise node.error("wrong number of lane literals")
            lanes: list[int | str] = []
            for lit in items[2:]:
                if lane_type[0] == "f":
                    if (
                        expected
                        and isinstance(lit, Atom)
                        and lit.text in (NAN_CANONICAL, NAN_ARITHMETIC)
                    ):
                        lanes.append(lit.text)
                    else:
                        lanes.append(self.float_bits(lit, node, bits))
                else:
                    lanes.append(self.int_bits(lit, node, bits))
            whole: int | None = 0
            for k, lane in enumerate(lanes):
                if isinstance(lane, str):
                    whole = None
                    break
                assert whole is not None
                whole |= lane << (k * bits)
            return WastValue("v128", whole, None, lane_type, tuple(lanes))
        if h == "ref.null":
            if len(items) != 2 or not isinstance(arg, Atom) or arg.text not in ("func", "extern"):
                raise self.unexpected(arg, node, "func or extern")
            return WastValue(arg.text + "ref")
        if h in ("ref.extern", "ref.func"):
            t = "externref" if h == "ref.extern" else "funcref"
            if arg is None:
                if not expected:
                    raise self.unexpected(arg, node, "a reference number")
                return WastValue(t, None, h)
            if len(items) != 2:
                raise self.unexpected(_at(node, 2), node, "one number")
            return WastValue(t, self.int_bits(arg, node, 32))
        raise self.unexpected(node, parent, "a constant")

    def int_bits(self, node: Node | None, parent: SList, bits: int) -> int:
        if not isinstance(node, Atom) or node.kind != WORD:
            raise self.unexpected(node, parent, "an integer literal")
        try:
            v = parse_int(node.text, bits)
        except ValueError as e:
            raise node.error(str(e)) from None
        if v is None:
            raise self.unexpected(node, parent, "an integer literal")
        return v & ((1 << bits) - 1)

    def float_bits(self, node: Node | None, parent: SList, bits: int) -> int:
        if not isinstance(node, Atom) or node.kind != WORD:
            raise self.unexpected(node, parent, "a float literal")
        try:
            v = parse_float(node.text, bits)
        except ValueError as e:
            raise node.error(str(e)) from None
        if v is None:
            raise self.unexpected(node, parent, "a float literal")
        return v

    def message(self, node: Node | None, parent: SList) -> str:
        if not isinstance(node, Atom) or node.kind != STRING:
            raise self.unexpected(node, parent, "a failure message string")
        return node.string_bytes().decode("utf-8", "replace")

    def command(self, node: Node) -> Command:
        if not isinstance(node, SList):
            raise node.error(f"unexpected token {node.text!r}, expected a command")
        h = node.head()
        line = self.line(node)
        items = node.items
        if h == "module":
            return ModuleCommand(line, self.module(node, node))
        if h == "register":
            name = self.string(_at(node, 1), node)
            mod = None
            nxt = _at(node, 2)
            if isinstance(nxt, Atom) and nxt.text.startswith("$"):
                mod = nxt.text[1:]
            elif nxt is not None:
                raise self.unexpected(nxt, node, "a module name")
            return Register(line, name, mod)
        if h in ("invoke", "get"):
            return ActionCommand(line, self.action(node, node))
        if h == "assert_return":
            act = self.action(_at(node, 1), node)
            exp = tuple(self.value(v, node, expected=True) for v in items[2:])
            return AssertReturn(line, act, exp)
        if h == "assert_trap":
            target = _at(node, 1)
            msg = self.message(_at(node, 2), node)
            if isinstance(target, SList) and target.head() == "module":
                return AssertTrap(line, msg, None, self.module(target, node))
            return AssertTrap(line, msg, self.action(target, node), None)
        if h == "assert_exhaustion":
            return AssertExhaustion(
                line, self.action(_at(node, 1), node), self.message(_at(node, 2), node)
            )
        if h in _MODULE_ASSERTS:
            target_mod = self.module(_at(node, 1), node)
            return _MODULE_ASSERTS[h](line, target_mod, self.message(_at(node, 2), node))
        raise (items[0] if items else node).error(f"unknown operator {h}, expected a command")


def _at(lst: SList, i: int) -> Node | None:
    return lst.items[i] if i < len(lst.items) else None


def parse_wast(text: str | bytes, filename: str = "") -> list[Command]:
    """Read a WAST script into commands (modules are parsed lazily, see ``WastModule``)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WatParseError("malformed UTF-8 encoding", 0, 0, filename) from e
    src = Source(text, filename)
    reader = _Reader(src)
    nodes = read_sexprs(src)
    if nodes and isinstance(nodes[0], SList) and nodes[0].head() in _MODULE_FIELDS:
        # A script that is one module written as bare fields.
        whole = SList(nodes[0].pos, src)
        whole.items = [Atom(WORD, "module", nodes[0].pos, src), *nodes]
        whole.end = len(text)
        return [ModuleCommand(reader.line(whole), reader.module(whole, whole))]
    commands = []
    for node in nodes:
        commands.append(reader.command(node))
        if isinstance(node, SList):
            node.release()  # one command's nodes alive at a time
    return commands


_MODULE_FIELDS = frozenset(
    ("type", "import", "func", "table", "memory", "global", "export", "start", "elem", "data")
)
