"""``wat2wasm`` and the "is this text or binary?" rule of ``Module(engine, wasm)``.

Invariants:
- Text goes through ``wasmrt.text`` only (pure Python; no external tools).
  Until that package provides ``wat2wasm``, converting text raises
  ``WasmtimeError`` naming what is missing.
- ``_to_wasm`` follows wasmtime-py exactly: a ``str``, or a ``bytes`` whose
  first byte is not ``\\0``, is text; a ``bytearray`` is always binary; an
  empty ``bytes`` is binary (and then fails to decode); anything else,
  including an empty or NUL-led ``str``, raises ``TypeError``.
- Parse errors are ``WasmtimeError`` subclasses (``WatParseError``); an
  ``OutOfMemory`` from the parser propagates unchanged, and the host running
  out of memory while reading is ``OutOfMemory(len(text))``
  (``alloc.host_alloc_call``).
"""

from __future__ import annotations

from typing import Any

from wasmrt.alloc import host_alloc_call
from wasmrt.errors import WasmtimeError
from wasmrt.text import wat2wasm as text_wat2wasm

__all__ = ["wat2wasm"]


def wat2wasm(wat: str | bytes) -> bytearray:
    """Convert WebAssembly text to the binary format (``WasmtimeError`` on a parse error)."""
    if not isinstance(wat, (str, bytes, bytearray)):
        raise TypeError("expected a str or bytes")
    return host_alloc_call(len(wat), _read_text, wat)


def _read_text(wat: str | bytes | bytearray) -> bytearray:
    if isinstance(wat, (bytes, bytearray)):
        try:
            text = bytes(wat).decode("utf-8")
        except UnicodeDecodeError as e:
            raise WasmtimeError(f"input bytes aren't valid utf-8: {e}") from None
    else:
        text = wat
    return bytearray(text_wat2wasm(text))


def _to_wasm(wasm: Any) -> bytes | bytearray:
    """wasmtime-py's text/binary decision for ``Module(engine, wasm)``."""
    if isinstance(wasm, str) and len(wasm) > 0 and ord(wasm[0]) != 0:
        wasm = wat2wasm(wasm)
    elif isinstance(wasm, bytes) and len(wasm) > 0 and wasm[0] != 0:
        wasm = wat2wasm(wasm)
    if not isinstance(wasm, (bytes, bytearray)):
        raise TypeError("expected wasm bytes")
    return wasm
