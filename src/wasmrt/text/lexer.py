"""The s-expression reader shared by the WAT and WAST parsers.

Invariants:
- ``read_sexprs(source)`` lexes the whole text in one iterative pass into a
  flat token table (``_Tokens``: one byte of kind and two machine ints per
  token, no Python object per token) and returns the top-level nodes as
  views. An ``SList`` materialises its ``items`` (child views) only when
  they are first asked for, and ``release()`` drops them again, so a parser
  that walks a module field by field keeps one field's nodes alive at a
  time. Memory is a few bytes per token beyond the text; nesting depth costs
  nothing (open lists are chained through the table, not a Python stack).
- Every node carries the character offset of its first character, and
  ``Source.line_col`` maps offsets to 1-based line:column only when a line
  is asked for (so reading stays fast).
- Comments (``;;`` to end of line, nested ``(; ;)``) and whitespace never
  produce nodes; a line comment ends at ``\\n`` or ``\\r``.
- A word is a maximal run of idchars and strings. A word that is exactly one
  string is a ``STRING`` atom; one without strings is a ``WORD`` atom
  (keyword, ``$id``, number or reserved token, told apart by the consumers);
  a mix such as ``$l"a"`` is a ``RESERVED`` atom, rejected by consumers with
  "unknown operator"/"unexpected token" -- so a badly separated token inside
  a module never fails the reading of a whole script.
- String escapes are checked and decoded lazily by ``Atom.string_bytes``
  (straight into one buffer, one run of literal text or of ``\\hh``
  escapes at a time) so that a script can be read even when one of its
  modules is malformed.
- ``read_sexprs(src, keyword_heads=True)`` (a WAT module) rejects a list that
  does not open with a keyword as soon as it is lexed, so ``"(" * N`` fails
  at its second character; a WAST script is read leniently.
- Every regular expression here is possessive or single-character repeated:
  matching a token of any length uses constant memory.
- Every error is a ``WatParseError`` with a line and column.
"""

from __future__ import annotations

import bisect
import re
from array import array
from collections.abc import Iterator

from wasmrt.errors import WatParseError

__all__ = ["RESERVED", "STRING", "WORD", "Atom", "Node", "SList", "Source", "read_sexprs"]

WORD = 0
STRING = 1
RESERVED = 2
_LP = 3
_RP = 4

_IDCHARS = r"0-9A-Za-z!#$%&'*+\-./:<=>?@\\^_`|~"
_STRING_RE = r'"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"'
_TOKEN = re.compile(
    r"(?:[ \t\n\r]++|;;[^\n\r]*+)*+"  # skipped: whitespace and line comments
    r"(?:(?P<lp>\(+)(?!;)|(?P<rp>\)+)|(?P<bc>\(;)"
    rf"|(?P<word>(?:[{_IDCHARS}]++|{_STRING_RE})++)"
    r"|(?P<eof>\Z)|(?P<bad>.))",
    re.DOTALL,
)
_ONE_STRING = re.compile(_STRING_RE, re.DOTALL)
_COMMENT_DELIM = re.compile(r"\(;|;\)")
# Escapes only; the text between two matches is literal. A run of ``\hh``
# escapes is one match, decoded by ``bytes.fromhex`` at C speed.
_ESCAPE = re.compile(
    r"(?P<hex>(?:\\[0-9A-Fa-f]{2})++)|\\u\{(?P<u>[0-9A-Fa-f_]*+)\}|\\(?P<other>.?)", re.DOTALL
)
_CONTROL = re.compile(r'[\x00-\x1f\x7f"]')
_SIMPLE_ESCAPES = {"t": b"\t", "n": b"\n", "r": b"\r", '"': b'"', "'": b"'", "\\": b"\\"}


class Source:
    """A text being parsed, with its name for error messages."""

    __slots__ = ("_lines", "name", "text")

    def __init__(self, text: str, name: str = "") -> None:
        self.text = text
        self.name = name
        self._lines: array[int] | None = None

    def line_col(self, pos: int) -> tuple[int, int]:
        if self._lines is None:
            self._lines = array("q", (m.end() for m in re.finditer("\n", self.text)))
        line = bisect.bisect_right(self._lines, pos)
        start = self._lines[line - 1] if line else 0
        return line + 1, pos - start + 1

    def error(self, message: str, pos: int) -> WatParseError:
        line, col = self.line_col(max(0, min(pos, len(self.text))))
        return WatParseError(message, line, col, self.name)


class _Tokens:
    """The token table of one source.

    ``kinds[k]`` is the kind of token ``k``, ``starts[k]`` its first
    character; ``links[k]`` is an atom's end offset, or for ``(`` the index
    of its matching ``)`` (while the list is still open during lexing: the
    index of the enclosing open ``(``, or -1).
    """

    __slots__ = ("kinds", "links", "src", "starts")

    def __init__(self, src: Source) -> None:
        code = "i" if len(src.text) < (1 << 31) - 1 else "q"
        self.src = src
        self.kinds = bytearray()
        self.starts: array[int] = array(code)
        self.links: array[int] = array(code)

    def nodes(self, first: int, stop: int) -> list[Node]:
        """Views of the tokens ``first .. stop-1`` that are direct children of one list."""
        kinds, starts, links, src = self.kinds, self.starts, self.links, self.src
        text = src.text
        out: list[Node] = []
        append = out.append
        k = first
        while k < stop:
            kind = kinds[k]
            if kind == _LP:
                rp = links[k]
                append(SList(starts[k], src, starts[rp] + 1, self, k))
                k = rp + 1
            else:
                start = starts[k]
                append(Atom(kind, text[start : links[k]], start, src))
                k += 1
        return out

    def node(self, k: int) -> Node:
        """The view of token ``k`` (an atom or a ``(``)."""
        start = self.starts[k]
        kind = self.kinds[k]
        if kind == _LP:
            return SList(start, self.src, self.starts[self.links[k]] + 1, self, k)
        return Atom(kind, self.src.text[start : self.links[k]], start, self.src)


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
        out = bytearray()
        decode_string_into(out, self.text, self.pos, self.src)
        return bytes(out)


class SList:
    """A parenthesised list; ``end`` is the offset just past its ``)``.

    A list read from a source is a view of its token table: ``items`` is
    built on first use and dropped by ``release()``. A list built by hand
    (``SList(pos, src)``) owns the ``items`` it is given.
    """

    __slots__ = ("_first", "_items", "_tokens", "end", "pos", "src")

    def __init__(
        self, pos: int, src: Source, end: int = -1, tokens: _Tokens | None = None, tok: int = -1
    ) -> None:
        self.pos = pos
        self.end = pos if end < 0 else end
        self.src = src
        self._tokens = tokens
        self._first = tok
        self._items: list[Node] | None = None if tokens is not None else []

    @property
    def items(self) -> list[Node]:
        items = self._items
        if items is None:
            toks = self._tokens
            assert toks is not None
            items = self._items = toks.nodes(self._first + 1, toks.links[self._first])
        return items

    @items.setter
    def items(self, value: list[Node]) -> None:
        self._items = value

    def child(self, i: int) -> Node | None:
        """``items[i]`` (None past the end) without materialising the other children."""
        toks = self._tokens
        if self._items is not None or toks is None:
            items = self.items
            return items[i] if i < len(items) else None
        kinds, links = toks.kinds, toks.links
        k = self._first + 1
        stop = links[self._first]
        while k < stop:
            if i == 0:
                return toks.node(k)
            k = links[k] + 1 if kinds[k] == _LP else k + 1
            i -= 1
        return None

    def iter_items(self, start: int = 0) -> Iterator[Node]:
        """``items[start:]`` one at a time, without materialising the list."""
        toks = self._tokens
        if self._items is not None or toks is None:
            yield from self.items[start:]
            return
        kinds, links = toks.kinds, toks.links
        k = self._first + 1
        stop = links[self._first]
        while k < stop:
            if start <= 0:
                yield toks.node(k)
            start -= 1
            k = links[k] + 1 if kinds[k] == _LP else k + 1

    def release(self) -> None:
        """Drop the materialised children of a list read from a source (rebuilt on demand)."""
        if self._tokens is not None:
            self._items = None

    def __repr__(self) -> str:
        return f"SList({self.items!r})"

    def error(self, message: str) -> WatParseError:
        return self.src.error(message, self.pos)

    def head(self) -> str | None:
        """The keyword the list starts with, if any."""
        toks = self._tokens
        if self._items is None and toks is not None:
            k = self._first + 1
            if toks.kinds[k] != WORD:
                return None
            return self.src.text[toks.starts[k] : toks.links[k]]
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
    out = bytearray()
    decode_string_into(out, raw, pos, src)
    return bytes(out)


def decode_string_into(out: bytearray, raw: str, pos: int, src: Source) -> None:
    """Append the value of the quoted string token ``raw`` (at offset ``pos``) to ``out``."""
    end = len(raw) - 1
    if "\\" not in raw and raw.isascii() and raw.isprintable():
        out += raw[1:end].encode()
        return
    last = 1
    for m in _ESCAPE.finditer(raw, 1, end):
        start = m.start()
        if start > last:
            _literal_into(out, raw, last, start, pos, src)
        last = m.end()
        hexrun = m.group("hex")
        if hexrun is not None:
            out += bytes.fromhex(hexrun.replace("\\", ""))
            continue
        digits = m.group("u")
        if digits is not None:
            if not digits or digits.startswith("_") or digits.endswith("_") or "__" in digits:
                raise src.error("malformed string escape", pos + start)
            cp = int(digits.replace("_", ""), 16)
            if cp >= 0x110000 or 0xD800 <= cp < 0xE000:
                raise src.error("malformed string: invalid unicode escape", pos + start)
            out += chr(cp).encode()
            continue
        simple = _SIMPLE_ESCAPES.get(m.group("other"))
        if simple is None:
            raise src.error("malformed string: unknown escape", pos + start)
        out += simple
    if end > last:
        _literal_into(out, raw, last, end, pos, src)


def _literal_into(out: bytearray, raw: str, start: int, stop: int, pos: int, src: Source) -> None:
    bad = _CONTROL.search(raw, start, stop)
    if bad is not None:
        raise src.error("malformed string: control character", pos + bad.start())
    out += raw[start:stop].encode("utf-8", "surrogatepass")


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


def _lex(src: Source, keyword_heads: bool) -> _Tokens:
    """Fill the token table of ``src``; structure errors are raised as soon as they are seen.

    With ``keyword_heads`` every ``(`` must be followed by a keyword (true of
    every phrase of a WAT module), so ``((`` fails at once instead of at the
    end of the text.
    """
    toks = _Tokens(src)
    kinds, starts, links = toks.kinds, toks.starts, toks.links
    text = src.text
    match = _TOKEN.match
    one_string = _ONE_STRING.fullmatch
    top = -1  # innermost open "(" (its link chains to the enclosing one)
    pos = 0
    need_keyword = False
    while True:
        m = match(text, pos)
        assert m is not None  # the pattern always matches (eof/bad alternatives)
        kind = m.lastgroup
        start = m.start(kind) if kind else m.end()
        pos = m.end()
        if need_keyword and kind != "bc":
            if kind != "word" or text.find('"', start, pos) >= 0:
                raise src.error("unexpected token, expected a keyword after '('", start)
            need_keyword = False
        if kind == "word":
            if text.find('"', start, pos) < 0:
                kinds.append(WORD)
            elif text[start] == '"' and one_string(text, start, pos) is not None:
                kinds.append(STRING)
            else:
                kinds.append(RESERVED)
            starts.append(start)
            links.append(pos)
        elif kind == "lp":
            count = pos - start
            if keyword_heads:
                if count > 1:
                    raise src.error("unexpected token, expected a keyword after '('", start + 1)
                need_keyword = True
            first = len(kinds)
            kinds += bytes([_LP]) * count
            starts.extend(range(start, pos))
            links.append(top)
            links.extend(range(first, first + count - 1))
            top = first + count - 1
        elif kind == "rp":
            for at in range(start, pos):
                if top < 0:
                    raise src.error("unexpected token ')'", at)
                closing = len(kinds)
                kinds.append(_RP)
                starts.append(at)
                links.append(0)
                parent = links[top]
                links[top] = closing
                top = parent
        elif kind == "bc":
            pos = _skip_block_comment(text, start, src)
        elif kind == "eof":
            if top >= 0:
                raise src.error("unclosed parenthesis", starts[top])
            return toks
        else:
            ch = text[start]
            if ch == '"':
                raise src.error("unclosed string", start)
            if ch == ";" and text.startswith(";)", start):
                raise src.error("unexpected end of block comment", start)
            raise src.error(f"unexpected character {ch!r}", start)


def read_sexprs(src: Source, keyword_heads: bool = False) -> list[Node]:
    """Read every top-level node of ``src`` (lists are views, see ``SList``).

    ``keyword_heads``: reject a list that does not start with a keyword as
    soon as it is seen (for a WAT module; a WAST script is read leniently).
    """
    toks = _lex(src, keyword_heads)
    return toks.nodes(0, len(toks.kinds))
