"""Trap backtraces: Python frames of generated code -> ``wasmrt.trap.Frame`` lists.

The vm owns this contract (``StoreCore.call`` attaches frames at the embedder
boundary); ``wasmrt.compile`` only registers each variant it builds.

Invariants:
- Nothing here runs on the normal call path: generated code carries no frame
  bookkeeping. A variant's module namespace holds ``OWNER_KEY`` (a weak
  reference to its ``CompiledModule``, set by ``register_variant``), and the
  generated Python function of wasm function ``k`` is named ``f{k}``; the
  traceback walk uses only these two facts, so it is paid for when a trap
  is turned into frames (once, at the embedder boundary).
- ``frames_from_traceback`` lists the wasm frames innermost first (the order
  of ``Trap.frames``); Python frames that are not generated wasm functions
  (runtime helpers, host functions, the vm, the embedder) are skipped, and a
  frame whose module was garbage-collected is dropped.
- Precision is per instruction, as in Wasmtime: ``func_offset`` is the
  offset of the instruction a frame stopped at (the trapping one, or the
  call) from the start of the function's body (its locals vector, just after
  the body size), found from the frame's line through the variant's line map
  (``LINES_KEY``, a ``wasmrt.compile.linemap.LineMap``), and ``module_offset``
  is the body's offset plus ``func_offset``. A variant without a line map
  (loaded from serialized source) reports the body's offset and
  ``func_offset`` 0. Offsets are computed from our encoding of the
  IR (``encode_module``), which equals the original binary when the original
  is canonically encoded (minimal LEB128s), as every tool emits; they are
  computed once per module, on its first trap, and cached on the module.
- Nothing here registers a weakref callback (the collector could run one
  deep in wasm recursion); ``OWNER_KEY`` is a plain ``weakref.ref``.
- ``func_name`` / ``module_name`` come from the name section (``module.names``).
- The backtrace is best effort: when the host has no memory left to list
  the frames (a stack overflow under an address-space limit holds every
  frame until the trap is built), the trap keeps ``frames == []`` and its
  bare ``wasm trap: <reason>`` message; the trap itself is never lost.
- ``raised_in(tb)`` tells who raised an exception from where its traceback
  ends: ``"guest"`` (a generated wasm function: the interpreter failed while
  running it, e.g. pushing the next frame), ``"runtime"`` (wasmrt's own
  code) or ``"host"`` (anything else: the embedder's host functions).
"""

from __future__ import annotations

import os
import weakref
from types import TracebackType
from typing import Any, Literal

from wasmrt import ir
from wasmrt.binary import encode_module
from wasmrt.trap import Frame, Trap

__all__ = [
    "LINES_KEY",
    "OWNER_KEY",
    "attach_frames",
    "body_offsets",
    "frames_from_traceback",
    "raised_in",
    "register_variant",
]

#: The global (in each variant's namespace) pointing back at the owning module.
OWNER_KEY = "__wasmrt_module__"

#: The global (in each variant's namespace) holding its line map, or None.
LINES_KEY = "__wasmrt_lines__"

#: Attribute of a ``CompiledModule`` caching its body offsets (a plain attribute,
#: not a ``WeakKeyDictionary``: its removal callback is Python code the collector
#: could run deep in wasm recursion, see ``wasmrt.vm.deferred``).
_OFFSETS_ATTR = "_wasmrt_body_offsets"


def register_variant(compiled: Any, variant: Any) -> None:
    """Record ``compiled`` (a ``CompiledModule``) as the owner of ``variant``'s code."""
    variant.factory.__globals__[OWNER_KEY] = weakref.ref(compiled)
    variant.factory.__globals__[LINES_KEY] = getattr(variant, "line_map", None)


#: Where wasmrt's own modules live (their code objects' file names start with it).
_RUNTIME_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def raised_in(tb: TracebackType | None) -> Literal["guest", "runtime", "host"]:
    """Whose code was running where the traceback ``tb`` ends (see module doc)."""
    if tb is None:
        return "runtime"
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    if frame.f_globals.get(OWNER_KEY) is not None:
        return "guest"
    filename = os.path.abspath(frame.f_code.co_filename)
    return "runtime" if filename.startswith(_RUNTIME_DIR) else "host"


def _leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def body_offsets(module: ir.Module) -> list[int]:
    """Byte offset of each defined function's body (after its size) in the encoded module."""
    data = bytes(encode_module(module))
    pos = 8
    while pos < len(data):
        sec_id = data[pos]
        size, pos = _leb(data, pos + 1)
        if sec_id == 10:
            count, p = _leb(data, pos)
            out = []
            for _ in range(count):
                n, p = _leb(data, p)
                out.append(p)
                p += n
            return out
        pos += size
    return []


def _offsets(compiled: Any) -> list[int]:
    offs: list[int] | None = getattr(compiled, _OFFSETS_ATTR, None)
    if offs is None:
        offs = body_offsets(compiled.module)
        setattr(compiled, _OFFSETS_ATTR, offs)
    return offs


def _frame(compiled: Any, func_index: int, line_map: Any, rel_line: int) -> Frame:
    m: ir.Module = compiled.module
    names = m.names
    defined = func_index - len(m.imported("func"))
    offs = _offsets(compiled)
    offset = offs[defined] if 0 <= defined < len(offs) else 0
    func_offset = line_map.func_offset(func_index, rel_line) if line_map is not None else None
    return Frame(
        func_index,
        names.functions.get(func_index) if names is not None else None,
        names.module if names is not None else None,
        offset + (func_offset or 0),
        func_offset or 0,
    )


def frames_from_traceback(tb: TracebackType | None) -> list[Frame]:
    """The wasm frames of traceback ``tb``, innermost first."""
    found: list[tuple[Any, int, Any, int]] = []
    while tb is not None:
        frame = tb.tb_frame
        ref = frame.f_globals.get(OWNER_KEY)
        if ref is not None:
            code = frame.f_code
            name = code.co_name
            if name[:1] == "f" and name[1:].isdigit():
                compiled = ref()
                if compiled is not None:
                    rel = tb.tb_lineno - code.co_firstlineno
                    found.append((compiled, int(name[1:]), frame.f_globals.get(LINES_KEY), rel))
        tb = tb.tb_next
    found.reverse()
    memo: dict[tuple[int, int, int, int], Frame] = {}
    out = []
    for c, k, lines, rel in found:
        key = (id(c), k, id(lines), rel)
        fr = memo.get(key)
        if fr is None:
            fr = memo[key] = _frame(c, k, lines, rel)
        out.append(fr)
    return out


def attach_frames(trap: Trap, tb: TracebackType | None = None) -> Trap:
    """Fill ``trap.frames`` from ``tb`` (default: the trap's own traceback); return the trap.

    Call it where a trap leaves wasm for the embedder, e.g. in
    ``StoreCore.call``'s outermost entry; for a ``RecursionError`` turned into
    a stack-overflow trap, pass the ``RecursionError``'s traceback.
    """
    try:
        trap.frames = frames_from_traceback(tb if tb is not None else trap.__traceback__)
    except MemoryError:  # no memory left for the backtrace (see module doc)
        return trap
    return trap
