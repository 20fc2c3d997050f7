"""The seam through which the WASI layer plugs into the runtime, without an upward import.

Invariants:
- ``wasmrt.wasi`` registers one ``WasiProvider`` when it is imported (the
  facade ``wasmrt`` imports it); ``Store.set_wasi`` and ``Linker.define_wasi``
  reach WASI only through ``provider()``. Without a provider they raise
  ``WasmtimeError`` naming the module to import.
- The store keeps the WASI context as an opaque object in its core's
  ``wasi`` slot; the runtime only ever calls its ``close()`` (when the slot
  is replaced and when the store is released).
"""

from __future__ import annotations

from typing import Any, Protocol

from wasmrt.errors import WasmtimeError
from wasmrt.runtime import _core

__all__ = ["WasiProvider", "provider", "register", "store_wasi"]


class WasiProvider(Protocol):
    """What the WASI layer offers the runtime."""

    def context_for(self, config: Any) -> Any:
        """A WASI context built from (and consuming) ``config``; it has ``close()``."""
        ...

    def define(self, linker: Any) -> None:
        """Define every WASI import in ``linker``."""
        ...


_PROVIDERS: list[WasiProvider] = []


def register(p: WasiProvider) -> None:
    """Install ``p`` as the WASI implementation (the last registration wins)."""
    _PROVIDERS.clear()
    _PROVIDERS.append(p)


def provider() -> WasiProvider:
    if not _PROVIDERS:
        raise WasmtimeError("WASI support is not loaded (import wasmrt or wasmrt.wasi)")
    return _PROVIDERS[0]


def store_wasi(storelike: Any) -> Any:
    """The WASI context of ``storelike``'s store (a Store, Caller or StoreContext), or None."""
    return _core.wasi_context(storelike._context())
