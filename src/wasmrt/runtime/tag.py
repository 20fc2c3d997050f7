"""``Tag``: an exception tag handle (exceptions proposal; minimal).

Invariants:
- wasmrt runs WebAssembly 2.0, which has no exception handling, so a tag can
  be created, typed and compared, but no module can import or throw it.
- ``eq`` is true only for the same definition (the same underlying record).
"""

from __future__ import annotations

from typing import Any

from wasmrt import ir
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import WasmtimeError
from wasmrt.runtime.types import TagType

__all__ = ["Tag"]


class _TagDef:
    __slots__ = ("store", "type")

    def __init__(self, store: Any, ty: ir.FuncType) -> None:
        self.store = store
        self.type = ty


class Tag:
    """A host-defined tag: ``Tag(store, TagType(functype))``."""

    __slots__ = ("_tag",)

    def __init__(self, store: Any, ty: TagType) -> None:
        if not isinstance(ty, TagType):
            raise TypeError("expected a TagType")
        core = store._context()
        fty = ty.ptr()
        try_alloc(64, AllocKind.OTHER)
        self._tag = _TagDef(core, fty)

    def _def(self, store: Any) -> _TagDef:
        if store._context() is not self._tag.store:
            raise WasmtimeError("object used with the wrong store")
        return self._tag

    def type(self, store: Any) -> TagType:
        return TagType._from_ir(self._def(store).type)

    def eq(self, store: Any, other: Tag) -> bool:
        return self._def(store) is other._def(store)
