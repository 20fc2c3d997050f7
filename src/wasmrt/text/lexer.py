"""The s-expression reader shared by the WAT and WAST parsers.

Invariants:
- ``read_sexprs(source)`` turns the whole text into a forest of ``SList`` and
  ``Atom`` nodes in one pass; every node carries the character offset of its
  first character, and ``Source.line_col`` maps offsets to 1-based
  line:column only when an error is reported (so reading stays fast).
- Comments (``;;`` to end of line, nested ``(; ;)``) and whitespace never
  produce nodes; a line comment ends at ``\\n`` or ``\\r``.
- A word is a maximal run of idchars and strings. A word that is exactly one
  string is a ``STRING`` atom; one without strings is a ``WORD`` atom
  (keyword, ``$id``, number or reserved token, told apart by the consumers);
  a mix such as ``$l"a"`` is a ``RESERVED`` atom, rejected by consumers with
  "unknown operator"/"unexpected token" -- so a badly separated token inside
  a module never fails the reading of a whole script.
- String escapes are checked and decoded lazily by ``Atom.string_bytes`` so
  that a script can be read even when one of its modules is malformed.
- Every error is a ``WatParseError`` with a line and column.
"""

from __future__ import annotations

import bisect
import re

from wasmrt.errors import WatParseError

__all__ = ["RESERVED", "STRING", "WORD", "Atom", "Node", "SList", "Source", "read_sexprs"]

WORD = 0
STRING = 1
RESERVED = 2

_IDCHARS = r"0-9A-Za-z!#$%&'*+\-./:<=>?@\\^_`|~"
_TOKEN = re.compile(
    r"(?:[ \t\n\r]+|;;[^\n\r]*)*"  # skipped: whitespace and line comments
    r"(?:(?P<lp>\((?!;))|(?P<rp>\))|(?P<bc>\(;)"
    rf'|(?P<word>(?:[{_IDCHARS}]+|"(?:[^"\\\n]|\\.)*")+)'
    r"|(?P<eof>\Z)|(?P<bad>.))",
    re.DOTALL,
)
_COMMENT_DELIM = re.compile(r"\(;|;\)")
_STRING_CHUNK = re.compile(
    r'[^"\\\x00-\x1f\x7f]+|\\(?:u\{([0-9A-Fa-f_]+)\}|[0-9A-Fa-f]{2}|.)|.', re.DOTALL
)
_SIMPLE_ESCAPES = {"t": b"\t", "n": b"\n", "r": b"\r", '"': b'"', "'": b"'", "\\": b"\\"}


class Source:
    """A text being parsed, with its name for error messages."""

    __slots__ = ("_lines", "name", "text")

    def __init__(self, text: str, name: str = "") -> None:
        self.text = text
        self.name = name
        self._lines: list[int] | None = None

    def line_col(self, pos: int) -> tuple[int, int]:
        if self._lines is None:
            self._lines = [m.end() for m in re.finditer("\n", self.text)]
        line = bisect.bisect_right(self._lines, pos)
        start = self._lines[line - 1] if line else 0
        return line + 1, pos - start + 1

    def error(self, message: str, pos: int) -> WatParseError:
        line, col = self.line_col(max(0, min(pos, len(self.text))))
        return WatParseError(message, line, col, self.name)


class Atom:
    """A token other than a parenthesis."""

    __slots__ = ("kind", "pos", "src", "text")

    def __init__(self, kind: int, text: str, pos: int, src: Source) -> None:
        self.kind = kind
        self.text = text
        self.pos = pos
        self.src = src

    def __repr__(self) -> str:
        return f"Atom({self.text!r})"

    def error(self, message: str) -> WatParseError:
        return self.src.error(message, self.pos)

    def string_bytes(self) -> bytes:
        """The decoded value of a ``STRING`` atom (escapes checked here)."""
        if self.kind != STRING:
            raise self.error("unexpected token, expected a string")
        return decode_string(self.text, self.pos, self.src)


class SList:
    """A parenthesised list; ``end`` is the offset just past its ``)``."""

    __slots__ = ("end", "items", "pos", "src")

    def __init__(self, pos: int, src: Source) -> None:
        self.items: list[Node] = []
        self.pos = pos
        self.end = pos
        self.src = src

    def __repr__(self) -> str:
        return f"SList({self.items!r})"

    def error(self, message: str) -> WatParseError:
        return self.src.error(message, self.pos)

    def head(self) -> str | None:
        """The keyword the list starts with, if any."""
        if self.items:
            first = self.items[0]
            if isinstance(first, Atom) and first.kind == WORD:
                return first.text
        return None

    def source_text(self) -> str:
        return self.src.text[self.pos : self.end]


Node = Atom | SList


def decode_string(raw: str, pos: int, src: Source) -> bytes:
    """Decode a quoted string token (including its quotes) to bytes."""
    body = raw[1:-1]
    if "\\" not in body and body.isprintable() and body.isascii():
        return body.encode()
    out = bytearray()
    for m in _STRING_CHUNK.finditer(body):
        s = m.group()
        if s[0] != "\\":
            if len(s) == 1 and (s < " " or s == "\x7f" or s == '"'):
                raise src.error("malformed string: control character", pos + 1 + m.start())
            out += s.encode("utf-8", "surrogatepass")
            continue
        if m.group(1) is not None:
            digits = m.group(1)
            if digits.startswith("_") or digits.endswith("_") or "__" in digits:
                raise src.error("malformed string escape", pos + 1 + m.start())
            cp = int(digits.replace("_", ""), 16)
            if cp >= 0x110000 or 0xD800 <= cp < 0xE000:
                raise src.error("malformed string: invalid unicode escape", pos + 1 + m.start())
            out += chr(cp).encode()
        elif len(s) == 3:
            out.append(int(s[1:], 16))
        else:
            simple = _SIMPLE_ESCAPES.get(s[1:])
            if simple is None:
                raise src.error("malformed string: unknown escape", pos + 1 + m.start())
            out += simple
    return bytes(out)


def _skip_block_comment(text: str, pos: int, src: Source) -> int:
    depth = 0
    for m in _COMMENT_DELIM.finditer(text, pos):
        if m.group() == "(;":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.end()
    raise src.error("unclosed block comment", pos)


def read_sexprs(src: Source) -> list[Node]:
    """Read every top-level node of ``src``."""
    text = src.text
    match = _TOKEN.match
    top: list[Node] = []
    stack: list[SList] = []
    items = top
    pos = 0
    while True:
        m = match(text, pos)
        assert m is not None  # the pattern always matches (eof/bad alternatives)
        kind = m.lastgroup
        start = m.start(kind) if kind else m.end()
        pos = m.end()
        if kind == "word":
            w = m.group("word")
            if w[0] == '"' and w[-1] == '"' and _is_single_string(w):
                items.append(Atom(STRING, w, start, src))
            elif '"' in w:
                items.append(Atom(RESERVED, w, start, src))
            else:
                items.append(Atom(WORD, w, start, src))
        elif kind == "lp":
            lst = SList(start, src)
            items.append(lst)
            stack.append(lst)
            items = lst.items
        elif kind == "rp":
            if not stack:
                raise src.error("unexpected token ')'", start)
            stack.pop().end = pos
            items = stack[-1].items if stack else top
        elif kind == "bc":
            pos = _skip_block_comment(text, start, src)
        elif kind == "eof":
            if stack:
                raise src.error("unclosed parenthesis", stack[-1].pos)
            return top
        else:
            ch = text[start]
            if ch == '"':
                raise src.error("unclosed string", start)
            if ch == ";" and text.startswith(";)", start):
                raise src.error("unexpected end of block comment", start)
            raise src.error(f"unexpected character {ch!r}", start)


_ONE_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"', re.DOTALL)


def _is_single_string(w: str) -> bool:
    return _ONE_STRING.fullmatch(w) is not None
