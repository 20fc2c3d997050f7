"""``GlobalInstance``: a wasm global holding one core value in ``.value``.

Invariant: ``value`` always holds a core value of ``ty.valtype`` (internals.md).
"""

from __future__ import annotations

from typing import Any

from wasmrt import ir

__all__ = ["GlobalInstance"]


class GlobalInstance:
    __slots__ = ("__weakref__", "ty", "value")

    def __init__(self, ty: ir.GlobalType, value: Any) -> None:
        self.ty = ty
        self.value = value

    def __repr__(self) -> str:
        return f"GlobalInstance({self.ty.valtype}, mutable={self.ty.mutable}, value={self.value!r})"
