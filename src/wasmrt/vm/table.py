"""``TableInstance``: a wasm table, a Python list of references.

Invariants:
- ``elements`` is one list object for the table's whole life (growth extends
  it in place), so generated code may bind it once.
- ``len(elements) <= max``; ``max`` is the type's maximum (or 2**32-1)
  clamped by ``max_cap`` (pooling allocator limit).
- Creation and growth ask the store's limiter (``table_growing`` /
  ``table_grow_failed``) with ``maximum = limiter_maximum`` (``max``: the
  type's maximum clamped by the pool's ``max_cap``, or ``None`` when neither
  bounds the table, as Wasmtime passes it) and ``try_alloc(n * 8,
  AllocKind.TABLE)`` first. Refusals from wasm return -1; from the embedder
  they raise ``GrowRefused`` (a refused ``try_alloc`` raises ``OutOfMemory``).
- Lazy funcrefs (Wasmtime's lazy table init): an element may be a
  ``LazyFuncRef`` placeholder only in a table *defined* by ``lazy_owner``,
  written by that instance's active element segments during its
  instantiation; nothing writes one afterwards. A placeholder stands for
  ``lazy_owner.funcs[p.index]``. Every reader of an element must resolve it
  (``get``/``resolve``; ``materialize`` resolves all and clears
  ``lazy_owner``): generated ``call_indirect`` resolves on its failure path
  (a placeholder's ``type`` matches no function type), code using
  ``table.get``/``table.copy`` materialises the table when it is bound, the
  public API reads through ``get``. Writers need no care.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, HostAlloc, try_alloc
from wasmrt.errors import OutOfMemory, ResourceLimitExceeded
from wasmrt.observe import created
from wasmrt.vm.growth import refuse_growth

__all__ = ["LazyFuncRef", "TableInstance"]

MAX_ELEMENTS = 0xFFFFFFFF


class _Unresolved:
    """The ``type`` of a ``LazyFuncRef``: equal to no ``ir.FuncType``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unresolved funcref>"


class LazyFuncRef:
    """A placeholder for function ``index`` of a table's ``lazy_owner`` (shared per module)."""

    __slots__ = ("index",)

    #: Never ``is``/``==`` a function type, so ``call_indirect`` takes its slow path.
    type: Any = _Unresolved()

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"LazyFuncRef({self.index})"


class TableInstance:
    __slots__ = (
        "__weakref__",
        "elem_type",
        "elements",
        "lazy_owner",
        "limiter_maximum",
        "max",
        "store",
        "ty",
    )

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
        #: The ``maximum`` the limiter is told (Wasmtime passes the clamped maximum).
        self.limiter_maximum: int | None = None if lim.max is None and max_cap is None else mx
        limiter = getattr(store, "limiter", None)
        if limiter is not None and not limiter.table_growing(0, lim.min, self.limiter_maximum):
            raise ResourceLimitExceeded(
                f"table minimum size of {lim.min} elements exceeds table limits"
            )
        if lim.min > mx:
            raise ResourceLimitExceeded(
                f"table minimum size of {lim.min} elements exceeds table limits"
            )
        try_alloc(lim.min * SLOT_SIZE, AllocKind.TABLE)
        with HostAlloc(lim.min * SLOT_SIZE):
            self.elements: list[Any] = [init] * lim.min
        #: The instance whose ``LazyFuncRef`` placeholders ``elements`` may hold, or None.
        self.lazy_owner: Any = None
        created(self)

    def __repr__(self) -> str:
        return f"TableInstance({self.elem_type}, size={len(self.elements)}, max={self.max})"

    @property
    def size(self) -> int:
        return len(self.elements)

    def get(self, i: int) -> Any:
        """Element ``i`` (``IndexError`` when out of bounds), a placeholder resolved."""
        v = self.elements[i]
        if v.__class__ is LazyFuncRef:
            return self.resolve(i)
        return v

    def resolve(self, i: int) -> Any:
        """Replace the placeholder at ``i`` by its function object and return that."""
        f = self.lazy_owner.funcs[self.elements[i].index]
        self.elements[i] = f
        return f

    def materialize(self) -> None:
        """Resolve every placeholder; afterwards ``elements`` holds only real references."""
        owner = self.lazy_owner
        if owner is None:
            return
        funcs = owner.funcs
        elements = self.elements
        for i, v in enumerate(elements):
            if v.__class__ is LazyFuncRef:
                elements[i] = funcs[v.index]
        self.lazy_owner = None

    def grow(self, delta: int, init: Any, *, from_wasm: bool = False) -> int:
        """Grow by ``delta`` elements set to ``init``; the old size, or -1."""
        old = len(self.elements)
        if delta == 0:
            return old
        new = old + delta
        limiter = getattr(self.store, "limiter", None)
        if new > MAX_ELEMENTS:
            return self._fail("table growth overflows", from_wasm, limiter)
        if limiter is not None:
            if not limiter.table_growing(old, new, self.limiter_maximum):
                return self._fail("failed to grow table: refused by limiter", from_wasm)
        if new > self.max:
            return self._fail("Table maximum size exceeded", from_wasm, limiter)
        try:
            try_alloc(delta * SLOT_SIZE, AllocKind.TABLE, absorbing=from_wasm)
            with HostAlloc(delta * SLOT_SIZE):
                # One resize, no temporary list; a failed resize leaves the list as it was.
                self.elements.extend(repeat(init, delta))
        except OutOfMemory:  # the hook's refusal or the host's (``HostAlloc``)
            if from_wasm:
                return -1
            raise
        return old

    @staticmethod
    def _fail(message: str, from_wasm: bool, failed_to: Any = None) -> int:
        """``refuse_growth``; ``failed_to`` (a limiter) hears of it first."""
        return refuse_growth(
            message, from_wasm, None if failed_to is None else failed_to.table_grow_failed
        )
