"""Per-instruction trap positions: lines of generated code -> offsets in the wasm function.

Invariants:
- The code generator records, for every line it emits in a function's body,
  the index of the wasm instruction it was compiling (``FunctionCompiler``);
  ``LineMap.add`` keeps that list with the number of lines that precede the
  body in the generated function (its ``def`` line and prologue).
- ``func_offset(func_index, rel_line)`` is Wasmtime's ``FrameInfo.func_offset``
  for a frame stopped at line ``rel_line`` of the generated function (0 = its
  ``def`` line): the byte offset of that instruction from the start of the
  function body (its locals vector, just after the body size). A line before
  the body maps to the first instruction. ``None`` for a function it does
  not know (e.g. a variant loaded from serialized source).
- Byte offsets come from our encoding of each instruction
  (``wasmrt.binary.encode_expr``), which equals the original binary when it
  is canonically encoded (minimal LEB128s); they are computed on the first
  trap in a function, never on the normal path, and cached.
"""

from __future__ import annotations

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE
from wasmrt.binary import encode_expr

__all__ = ["LineMap"]


def _leb_len(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def instruction_offsets(func: ir.Function) -> list[int]:
    """Offset of each instruction of ``func.body`` from the start of its locals vector."""
    pos = _leb_len(len(func.locals)) + sum(_leb_len(n) + 1 for n, _ in func.locals)
    out = []
    for ins in func.body:
        out.append(pos)
        pos += len(encode_expr([ins]))
    return out


class LineMap:
    """The instruction of every generated line, for each defined function of one variant."""

    __slots__ = ("_funcs", "_module", "_n_imported", "_offsets")

    def __init__(self, module: ir.Module) -> None:
        self._module = module
        self._n_imported = len(module.imported("func"))
        self._funcs: dict[int, tuple[int, list[int]]] = {}
        self._offsets: dict[int, list[int]] = {}

    def add(self, func_index: int, lines_before_body: int, line_instrs: list[int]) -> None:
        self._funcs[func_index] = (lines_before_body, line_instrs)

    def size_bytes(self) -> int:
        """What the recorded lists hold: a slot per generated line."""
        return SLOT_SIZE * sum(len(instrs) for _, instrs in self._funcs.values())

    def func_offset(self, func_index: int, rel_line: int) -> int | None:
        entry = self._funcs.get(func_index)
        if entry is None:
            return None
        before, instrs = entry
        i = rel_line - before
        ins = instrs[i] if 0 <= i < len(instrs) else 0
        offsets = self._offsets.get(func_index)
        if offsets is None:
            func = self._module.funcs[func_index - self._n_imported]
            offsets = self._offsets[func_index] = instruction_offsets(func)
        return offsets[ins] if ins < len(offsets) else None
