"""The Wasm 2.0 binary format: ``decode_module`` and ``encode_module``.

Invariants:
- ``decode_module`` raises only ``MalformedError`` for bad input (or whatever
  the allocation hook raises, e.g. ``OutOfMemory``, unchanged).
- ``decode_module(encode_module(m)) == m`` for every decoded module ``m``.
"""

from wasmrt.binary.decode import decode_module
from wasmrt.binary.encode import encode_expr, encode_module

__all__ = ["decode_module", "encode_expr", "encode_module"]
