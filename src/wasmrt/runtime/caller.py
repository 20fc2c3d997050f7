"""``Caller``: the first argument of host functions defined with ``access_caller=True``.

Invariants:
- A ``Caller`` is valid only while its host call runs; the trampoline
  invalidates it when the call returns or raises. Afterwards ``get`` returns
  ``None``, ``caller[name]`` raises ``KeyError`` and using it as a store
  raises ``ValueError("caller is no longer valid")``.
- ``get(name)`` looks up exports of the *calling* instance only; with no
  wasm caller (the embedder called the function directly) it finds nothing.
- Looked-up externs are wrapped as the same public handle classes
  ``Instance.exports`` returns, by ``wasmrt.runtime.instance.wrap_extern``,
  which that module installs here when it is imported (``set_extern_wrapper``):
  the handle classes sit above ``Func``, which creates callers, so the
  caller cannot import them. Importing any ``wasmrt.runtime`` module runs
  the package ``__init__``, which imports ``instance``, so it is always set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmrt.runtime import _core

__all__ = ["Caller", "set_extern_wrapper"]

_WRAP_EXTERN: list[Callable[[Any, Any], Any]] = []


def set_extern_wrapper(wrap: Callable[[Any, Any], Any]) -> None:
    """Install ``wrap(store_core, vm_extern) -> public handle`` for ``Caller.get``."""
    _WRAP_EXTERN[:] = [wrap]


class Caller:
    """Access to the calling instance's exports and to its store, during a host call."""

    __slots__ = ("__weakref__", "_instance", "_store")

    def __init__(self, store_core: Any, instance: Any) -> None:
        self._store: Any = store_core
        self._instance: Any = instance

    def __getitem__(self, name: str) -> Any:
        ret = self.get(name)
        if ret is None:
            raise KeyError(f"failed to find export {name}")
        return ret

    def get(self, name: str) -> Any:
        """The calling instance's export ``name``, or ``None``."""
        if not isinstance(name, str):
            raise AttributeError(f"{type(name).__name__!r} object has no attribute 'encode'")
        if self._store is None or self._instance is None:
            return None
        item = _core.instance_exports(self._instance).get(name)
        if item is None:
            return None
        return _WRAP_EXTERN[0](self._store, item)

    def _context(self) -> Any:
        if self._store is None:
            raise ValueError("caller is no longer valid")
        return self._store

    def _invalidate(self) -> None:
        self._store = None
        self._instance = None
