"""``Store`` (and ``StoreContext``, ``Storelike``): the owner of all wasm state.

Invariants:
- A store wraps one vm ``StoreCore``; every Func/Memory/Table/Global/
  Instance created in it is valid only with it. ``_context()`` is how every
  API reaches the core: it raises ``ValueError('already closed')`` after
  ``close()`` (and ``ValueError("caller is no longer valid")`` for a stale
  ``StoreContext``/``Caller``).
- ``close()`` (also ``with`` exit and ``__del__``) releases the core exactly
  once: instances, memories, tables, pool slots and counts go back.
- wasmtime-py's quirk is kept: ``data`` is stored only when truthy.
- Fuel and epochs are the engine's features: fuel APIs raise
  ``WasmtimeError("fuel is not configured in this store")`` unless the
  engine has ``consume_fuel``. ``set_fuel`` takes a u64 (negative values
  wrap, as through the C API).
- ``set_limits`` builds a *fresh* ``StoreLimits`` on each call (unpassed
  values go back to their defaults) and installs it like ``limiter(...)``;
  installing a limiter copies its ``instances()/tables()/memories()`` into
  the store's count limits, which apply to future instantiations only.
- ``limiter_async`` (or ``limiter`` with a ``ResourceLimiterAsync``)
  installs an ``AsyncLimiterAdapter``; from then on the sync instantiate/
  grow/call APIs raise ``WasmtimeError`` and the ``*_async`` ones are used
  (``wasmrt.runtime.limits`` describes how decisions are awaited).
- Creating a store asks ``try_alloc`` (``AllocKind.STORE``) once, in the vm's
  ``StoreCore``; an ``OutOfMemory`` leaves no half-built store behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from wasmrt.errors import WasmtimeError
from wasmrt.runtime import _core
from wasmrt.runtime._managed import Managed
from wasmrt.runtime.engine import Engine
from wasmrt.runtime.limits import AsyncLimiterAdapter, ResourceLimiterAsync, StoreLimits
from wasmrt.runtime.wasi_hook import provider as wasi_provider

if TYPE_CHECKING:
    from wasmrt.runtime.caller import Caller

__all__ = ["Store", "StoreContext", "Storelike"]

_U64 = (1 << 64) - 1
_FUEL_OFF = "fuel is not configured in this store"


class Store(Managed[Any]):
    """A collection of wasm instances and host state: ``Store(engine=None, data=None)``."""

    engine: Engine

    def __init__(self, engine: Engine | None = None, data: Any = None) -> None:
        if engine is None:
            engine = Engine()
        elif not isinstance(engine, Engine):
            raise TypeError("expected an Engine")
        # The store record is charged once, by the vm (``StoreCore``).
        core = _core.new_store(engine.ptr())
        self._data = data if data else None
        self._limiter: Any = None
        self._set_ptr(core)
        self.engine = engine

    def _delete(self, ptr: Any) -> None:
        self._data = None
        self._limiter = None
        _core.close_store(ptr)

    def _context(self) -> Any:
        return self.ptr()

    def data(self) -> Any:
        """The data given to the constructor (``None`` if it was falsy)."""
        self._context()
        return self._data

    def gc(self) -> None:
        """Collect unreferenced ``externref``s (Python's GC owns them here)."""
        self._context()

    def set_wasi(self, wasi: Any) -> None:
        """Give this store the WASI context ``wasi`` (a ``WasiConfig``) describes.

        The config is consumed (later use raises ``ValueError``), as in
        wasmtime-py; a previous context is closed.
        """
        core = self._context()
        ctx = wasi_provider().context_for(wasi)
        old = _core.swap_wasi(core, ctx)
        if old is not None:
            old.close()

    # Fuel and epochs -----------------------------------------------------

    def set_fuel(self, fuel: int) -> None:
        """Set the fuel left in this store (requires ``Config.consume_fuel``)."""
        core = self._context()
        if not isinstance(fuel, int):
            raise TypeError("expected an int")
        if not _core.store_consumes_fuel(core):
            raise WasmtimeError(_FUEL_OFF)
        _core.set_fuel(core, fuel & _U64)

    def get_fuel(self) -> int:
        """The fuel left in this store (requires ``Config.consume_fuel``)."""
        core = self._context()
        if not _core.store_consumes_fuel(core):
            raise WasmtimeError(_FUEL_OFF)
        return _core.get_fuel(core)

    def set_epoch_deadline(self, ticks_after_current: int) -> None:
        """Interrupt wasm once the engine's epoch reaches ``current + ticks``."""
        core = self._context()
        if not isinstance(ticks_after_current, int):
            raise TypeError("expected an int")
        _core.set_epoch_deadline(core, ticks_after_current & _U64)

    # Limits --------------------------------------------------------------

    def set_limits(
        self,
        memory_size: int = -1,
        table_elements: int = -1,
        instances: int = -1,
        tables: int = -1,
        memories: int = -1,
    ) -> None:
        """Install fresh ``StoreLimits``; negative values mean "the default"."""
        self._context()
        limits = StoreLimits.from_set_limits(
            memory_size, table_elements, instances, tables, memories
        )
        self.limiter(limits)

    def limiter(self, limiter: Any) -> None:
        """wasmrt addition (Rust's ``Store::limiter``): install a ``ResourceLimiter``.

        Accepts a ``ResourceLimiter`` (or any object with its methods), a
        ``ResourceLimiterAsync`` (wrapped in an ``AsyncLimiterAdapter``), or
        ``None`` to remove the limiter (count limits return to 10_000).
        """
        core = self._context()
        if isinstance(limiter, ResourceLimiterAsync):
            limiter = AsyncLimiterAdapter(limiter)
        elif limiter is not None:
            for method in ("memory_growing", "table_growing"):
                if not callable(getattr(limiter, method, None)):
                    raise TypeError("expected a ResourceLimiter")
        _core.set_limiter(core, limiter)
        self._limiter = limiter

    def limiter_async(self, limiter: Any) -> None:
        """wasmrt addition (Rust's ``Store::limiter_async``): install a ``ResourceLimiterAsync``.

        Afterwards use the ``*_async`` APIs (``Func.call_async``,
        ``Linker.instantiate_async``, ``Memory.grow_async``...); the sync ones
        raise ``WasmtimeError``.
        """
        if not isinstance(limiter, ResourceLimiterAsync):
            raise TypeError("expected a ResourceLimiterAsync")
        self.limiter(limiter)

    def get_limiter(self) -> Any:
        """The installed limiter (the adapter for an async one), or ``None``."""
        self._context()
        return self._limiter


class StoreContext:
    """A borrowed view of a store, valid until it is invalidated."""

    def __init__(self, core: Any) -> None:
        self.__core: Any = core

    def _context(self) -> Any:
        if self.__core is None:
            raise ValueError("caller is no longer valid")
        return self.__core

    def _invalidate(self) -> None:
        self.__core = None


Storelike = Union[Store, "Caller", StoreContext]
