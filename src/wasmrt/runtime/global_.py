"""``Global``: a global variable handle.

Invariants:
- A ``Global`` is a plain handle: a vm ``GlobalInstance`` plus its
  ``StoreCore``; its value is always stored in core form (unsigned ints).
- ``set_value`` converts first (``TypeError`` on a bad value) and then
  refuses immutable globals with ``WasmtimeError("immutable global cannot
  be set")``; a refused set changes nothing.
- ``value`` returns the Python value, or the ``Val`` wrapper for a null
  reference (which compares ``== None``).
- Creating a global asks ``try_alloc`` (``AllocKind.GLOBAL``).
"""

from __future__ import annotations

from typing import Any

from wasmrt.errors import WasmtimeError
from wasmrt.runtime import _core
from wasmrt.runtime.func import from_core, to_core
from wasmrt.runtime.types import GlobalType
from wasmrt.runtime.val import Val

__all__ = ["Global"]

_WRONG_STORE = "object used with the wrong store"


class Global:
    """A global: ``Global(store, GlobalType(valtype, mutable), value)``."""

    __slots__ = ("_global", "_store")

    def __init__(self, store: Any, ty: GlobalType, val: Any) -> None:
        if not isinstance(ty, GlobalType):
            raise TypeError("expected a GlobalType")
        gty = ty.ptr()
        if gty.valtype == "externref" or gty.valtype == "funcref":
            core = store._context()
            value = to_core(core, gty.valtype, val)
        else:
            value = to_core(None, gty.valtype, val)
            core = store._context()
        self._store = core
        self._global = _core.new_global(core, gty, value)

    @classmethod
    def _from_core(cls, store_core: Any, glob: Any) -> Global:
        out: Global = cls.__new__(cls)
        out._store = store_core
        out._global = glob
        return out

    def _glob(self, store: Any) -> Any:
        if store._context() is not self._store:
            raise WasmtimeError(_WRONG_STORE)
        return self._global

    def type(self, store: Any) -> GlobalType:
        return GlobalType._from_ir(_core.global_type(self._glob(store)))

    def value(self, store: Any) -> Any:
        glob = self._glob(store)
        kind = _core.global_type(glob).valtype
        value = from_core(self._store, kind, _core.global_get(glob))
        if value is not None:
            return value
        return Val(kind, value)

    def set_value(self, store: Any, val: Any) -> None:
        glob = self._glob(store)
        gty = _core.global_type(glob)
        value = to_core(self._store, gty.valtype, val)
        if not gty.mutable:
            raise WasmtimeError("immutable global cannot be set")
        _core.global_set(glob, value)
