"""How the preview 1 functions enter a ``Linker`` and find their store's context.

Invariants:
- ``define_wasi(linker)`` defines all of ``preview1.FUNCTIONS`` under
  ``wasi_snapshot_preview1`` at once (``Linker.define_funcs``: all or none),
  as store-independent host functions taking the ``Caller``.
- Each call masks its arguments to unsigned, finds the calling store's
  ``WasiCtx`` (``WasmtimeError`` if ``Store.set_wasi`` was never called),
  runs the implementation and returns its errno. ``WasiErrno`` becomes the
  result; a host ``OSError`` that an implementation did not map becomes its
  errno; ``MemoryError`` becomes ``OutOfMemory``; anything else
  (``OutOfMemory``, ``ExitTrap``, the ``WasmtimeError`` of a bad pointer or
  value) reaches the embedder unchanged. The view of guest memory is
  released however the call ends.
- ``context_for(config)`` builds a store's ``WasiCtx`` from a consumed
  ``WasiConfig``; if building fails the config's descriptors are closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmrt import ir
from wasmrt.errors import OutOfMemory, WasmtimeError
from wasmrt.runtime import FuncType, Linker, ValType
from wasmrt.runtime.wasi_hook import store_wasi
from wasmrt.wasi.config import WasiConfig
from wasmrt.wasi.context import WasiCtx
from wasmrt.wasi.errno import WasiErrno, from_oserror
from wasmrt.wasi.guest import GuestMemory
from wasmrt.wasi.preview1 import FUNCTIONS, MODULE, Impl

__all__ = ["Provider", "context_for", "define_wasi"]

_MASKS = {"i32": (1 << 32) - 1, "i64": (1 << 64) - 1}
_VALTYPES = {"i32": ValType.i32, "i64": ValType.i64}


def _context(caller: Any) -> WasiCtx:
    ctx = store_wasi(caller)
    if not isinstance(ctx, WasiCtx):
        raise WasmtimeError("WASI is not configured for this store (call Store.set_wasi)")
    return ctx


def _host_function(impl: Impl, params: tuple[str, ...], returns: bool) -> Callable[..., Any]:
    masks = tuple(_MASKS[p] for p in params)

    def host(caller: Any, *args: int) -> int | None:
        ctx = _context(caller)
        mem = GuestMemory(caller)
        try:
            impl(ctx, mem, *[a & m for a, m in zip(args, masks, strict=True)])
        except WasiErrno as e:
            return e.code
        except OSError as e:
            return from_oserror(e)
        except MemoryError:
            raise OutOfMemory(0) from None
        finally:
            mem.release()
        return 0 if returns else None

    host.__name__ = impl.__name__
    return host


#: Per function: its name, signature and host function, built once (all are immutable
#: and store-independent); each ``define_wasi`` makes its own ``FuncType``s
#: (``FuncType._new_of``), so its allocations are the same in every call.
_SIGNATURES: list[tuple[str, ir.FuncType, Callable[..., Any]]] = [
    (
        name,
        ir.FuncType(
            tuple(_VALTYPES[p]().ptr() for p in params),
            tuple(_VALTYPES[r]().ptr() for r in results),
        ),
        _host_function(impl, params, bool(results)),
    )
    for name, (params, results, impl) in FUNCTIONS.items()
]


def define_wasi(linker: Linker) -> None:
    """Define every ``wasi_snapshot_preview1`` import in ``linker`` (all or none)."""
    funcs = [(name, FuncType._new_of(ty), host) for name, ty, host in _SIGNATURES]
    linker.define_funcs(MODULE, funcs)


def context_for(config: Any) -> WasiCtx:
    """A new ``WasiCtx`` from ``config``, which is consumed."""
    if not isinstance(config, WasiConfig):
        raise TypeError("expected a WasiConfig")
    spec = config._into_spec()
    try:
        return WasiCtx(spec)
    finally:
        spec.release()


class Provider:
    """The ``WasiProvider`` this package registers with the runtime."""

    def context_for(self, config: Any) -> WasiCtx:
        return context_for(config)

    def define(self, linker: Any) -> None:
        define_wasi(linker)
