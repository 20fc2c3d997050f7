"""``TableInstance``: a wasm table, a Python list of references.

Invariants:
- ``elements`` is one list object for the table's whole life (growth extends
  it in place), so generated code may bind it once.
- ``len(elements) <= max``; ``max`` is the type's maximum (or 2**32-1)
  clamped by ``max_cap`` (pooling allocator limit).
- Creation and growth ask the store's limiter (``table_growing`` /
  ``table_grow_failed``) and ``try_alloc(n * 8, AllocKind.TABLE)`` first.
"""

from __future__ import annotations

from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import OutOfMemory, ResourceLimitExceeded, WasmtimeError

__all__ = ["TableInstance"]

MAX_ELEMENTS = 0xFFFFFFFF


class TableInstance:
    __slots__ = ("__weakref__", "elem_type", "elements", "max", "store", "ty")

    def __init__(
        self, store: Any, ty: ir.TableType, init: Any = None, *, max_cap: int | None = None
    ) -> None:
        lim = ty.limits
        self.store = store
        self.ty = ty
        self.elem_type = ty.elem
        mx = MAX_ELEMENTS if lim.max is None else lim.max
        if max_cap is not None:
            mx = min(mx, max_cap)
        self.max = mx
        limiter = getattr(store, "limiter", None)
        if limiter is not None and not limiter.table_growing(0, lim.min, lim.max):
            raise ResourceLimitExceeded(
                f"table minimum size of {lim.min} elements exceeds table limits"
            )
        if lim.min > mx:
            raise ResourceLimitExceeded(
                f"table minimum size of {lim.min} elements exceeds table limits"
            )
        try_alloc(lim.min * SLOT_SIZE, AllocKind.TABLE)
        self.elements: list[Any] = [init] * lim.min

    def __repr__(self) -> str:
        return f"TableInstance({self.elem_type}, size={len(self.elements)}, max={self.max})"

    @property
    def size(self) -> int:
        return len(self.elements)

    def grow(self, delta: int, init: Any, *, from_wasm: bool = False) -> int:
        """Grow by ``delta`` elements set to ``init``; the old size, or -1."""
        old = len(self.elements)
        if delta == 0:
            return old
        new = old + delta
        limiter = getattr(self.store, "limiter", None)
        if new > MAX_ELEMENTS:
            err = WasmtimeError("table growth overflows")
            if limiter is not None:
                limiter.table_grow_failed(err)
            return self._fail(err, from_wasm)
        if limiter is not None:
            maximum = self.ty.limits.max if self.ty.limits.max is not None else MAX_ELEMENTS
            if not limiter.table_growing(old, new, maximum):
                return self._fail(
                    WasmtimeError("failed to grow table: refused by limiter"), from_wasm
                )
        if new > self.max:
            err = WasmtimeError("Table maximum size exceeded")
            if limiter is not None:
                limiter.table_grow_failed(err)
            return self._fail(err, from_wasm)
        try:
            try_alloc(delta * SLOT_SIZE, AllocKind.TABLE, absorbing=from_wasm)
        except OutOfMemory:
            if from_wasm:
                return -1
            raise
        self.elements.extend([init] * delta)
        return old

    @staticmethod
    def _fail(err: WasmtimeError, from_wasm: bool) -> int:
        if from_wasm:
            return -1
        raise err
