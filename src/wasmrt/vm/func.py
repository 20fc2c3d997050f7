"""Function instances: ``WasmFunction`` (compiled code) and ``HostFunction``.

Invariants:
- ``f.call(*args)`` takes and returns core values (None / value / tuple).
- ``f.type`` is an interned ``ir.FuncType`` (``intern_functype``) so that
  ``call_indirect`` can test identity first; equality stays structural.
- ``WasmFunction.call`` *is* the compiled closure (an instance attribute), so
  wasm->wasm calls through tables and imports are plain Python calls. The
  closures of an instance are bound lazily, all at once, the first time any
  of its functions' ``call`` is read (``ModuleInstance.bind_code``): reading
  it earlier than instantiation's binding point raises ``WasmtimeError``.
- ``HostFunction`` calls ``fn(caller_instance, *args)``; each call asks
  ``try_alloc(..., AllocKind.CALL)`` for its argument/result buffers first.
  ``caller_instance`` is the calling ``ModuleInstance`` for direct calls of an
  import, ``None`` for calls through a table or from the embedder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import WasmtimeError

__all__ = ["FuncInstance", "HostFunction", "WasmFunction", "intern_functype"]

_INTERN: dict[ir.FuncType, ir.FuncType] = {}


def intern_functype(ft: ir.FuncType) -> ir.FuncType:
    got = _INTERN.get(ft)
    if got is None:
        _INTERN[ft] = ft
        got = ft
    return got


class FuncInstance:
    __slots__ = ("__weakref__", "call", "type")

    type: ir.FuncType
    call: Callable[..., Any]

    def bind_caller(self, instance: Any) -> Callable[..., Any]:
        """The callable wasm code of ``instance`` uses to call this function directly."""
        return self.call


class WasmFunction(FuncInstance):
    __slots__ = ("index", "instance")

    def __init__(self, instance: Any, index: int, ty: ir.FuncType) -> None:
        self.instance = instance
        self.index = index
        self.type = intern_functype(ty)

    def __repr__(self) -> str:
        return f"WasmFunction(index={self.index}, type={self.type})"

    def __getattr__(self, name: str) -> Any:
        # Only reached while the ``call`` slot is unset: bind the instance's code.
        if name != "call":
            raise AttributeError(f"'WasmFunction' object has no attribute {name!r}")
        self.instance.bind_code()
        try:
            return object.__getattribute__(self, "call")
        except AttributeError:
            raise WasmtimeError(
                "function called before its instance finished initialising"
            ) from None


class HostFunction(FuncInstance):
    __slots__ = ("fn", "size", "store")

    def __init__(self, store: Any, ty: ir.FuncType, fn: Callable[..., Any]) -> None:
        self.store = store
        self.type = intern_functype(ty)
        self.fn = fn
        self.size = (len(ty.params) + len(ty.results)) * SLOT_SIZE
        self.call = self._call_no_caller

    def __repr__(self) -> str:
        return f"HostFunction(type={self.type}, fn={self.fn!r})"

    def _call_no_caller(self, *args: Any) -> Any:
        try_alloc(self.size, AllocKind.CALL)
        return self.fn(None, *args)

    def bind_caller(self, instance: Any) -> Callable[..., Any]:
        fn = self.fn
        size = self.size

        def call(*args: Any) -> Any:
            try_alloc(size, AllocKind.CALL)
            return fn(instance, *args)

        return call
