"""wasmrt.text: the WebAssembly text format (WAT modules and WAST scripts).

Invariants:
- One s-expression reader (``lexer``) serves both WAT and WAST.
- ``parse_wat`` yields the same ``wasmrt.ir.Module`` the binary decoder
  would produce for the module ``wasm-tools parse`` writes (names aside);
  ``wat2wasm`` is ``encode_module(parse_wat(...))``.
- Every text error is a ``wasmrt.errors.WatParseError`` with line:column.
"""

from wasmrt.errors import WatParseError
from wasmrt.text.printer import print_module
from wasmrt.text.wast import parse_wast
from wasmrt.text.wat import parse_wat, wat2wasm

__all__ = ["WatParseError", "parse_wast", "parse_wat", "print_module", "wat2wasm"]
