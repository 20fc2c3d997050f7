"""``Func``: a wasm or host function handle, and the host-call trampoline.

Invariants:
- A ``Func`` is a plain handle (no ``close()``): a vm ``FuncInstance`` plus
  the ``StoreCore`` it belongs to. Using it with another store raises
  ``WasmtimeError``.
- Calls check the argument count first (``WasmtimeError`` "too many/too few
  parameters provided: given X, expected Y"), then convert every argument
  (``TypeError``), then ask ``try_alloc`` for the call buffers, and only
  then enter wasm: a rejected call has no side effect.
- Results come back as ``None`` (0 results), the value (1) or a ``list``.
- Host functions receive Python values (``Caller`` first with
  ``access_caller=True``) and return ``None``/one value/a sequence; wrong
  result counts raise wasmtime-py's ``WasmtimeError`` messages, bad values
  ``TypeError``. Any exception a host function raises (``BaseException``
  included) reaches the outer caller as the *original object*; the vm does
  not wrap it and neither does this layer.
- Each call from the embedder asks ``try_alloc(…, AllocKind.CALL)`` for its
  buffers before entering wasm, and the vm asks again for every host call
  before the callback runs, so an ``OutOfMemory`` leaves the callback unrun
  and the store usable; the ``Caller`` is invalidated when the call ends,
  however it ends.
- On a store with an async limiter, ``__call__`` raises ``WasmtimeError``
  unless an ``*_async`` operation is running; ``call_async`` is the way in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import WasmtimeError
from wasmrt.runtime import _core
from wasmrt.runtime.limits import require_sync, run_async
from wasmrt.runtime.types import FuncType
from wasmrt.runtime.val import from_core, to_core

__all__ = ["Func", "host_callable"]

#: Fixed cost of one call frame's bookkeeping, plus a slot per value.
_CALL_HEADER = 64
_FUNC_COST = 96

_WRONG_STORE = "object used with the wrong store"


def _call_buffers(nparams: int, nresults: int) -> None:
    try_alloc(_CALL_HEADER + SLOT_SIZE * (nparams + nresults), AllocKind.CALL)


def host_callable(
    store_core: Any, ty: ir.FuncType, func: Callable[..., Any], access_caller: bool
) -> Callable[..., Any]:
    """The core-convention callable the vm runs for a host function.

    It is called as ``fn(calling_instance, *core_args)`` (``calling_instance``
    is the vm ``ModuleInstance`` whose code made the call, or ``None``).
    """
    from wasmrt.runtime.caller import Caller

    params = ty.params
    results = ty.results
    nresults = len(results)

    def trampoline(instance: Any, *args: Any) -> Any:
        # The vm's HostFunction has already asked try_alloc for this call's buffers.
        caller = Caller(store_core, instance)
        try:
            pyargs: list[Any] = [caller] if access_caller else []
            pyargs.extend(from_core(store_core, k, a) for k, a in zip(params, args, strict=True))
            out = func(*pyargs)
            if nresults == 0:
                if out is not None:
                    raise WasmtimeError("callback produced results when it shouldn't")
                return None
            if nresults == 1:
                return to_core(store_core, results[0], out)
            if len(out) != nresults:
                raise WasmtimeError("callback produced wrong number of results")
            return tuple(to_core(store_core, k, v) for k, v in zip(results, out, strict=True))
        finally:
            caller._invalidate()

    return trampoline


class Func:
    """A function: ``Func(store, ty, callable, access_caller=False)`` for host functions."""

    __slots__ = ("_func", "_store")

    def __init__(
        self, store: Any, ty: FuncType, func: Callable[..., Any], access_caller: bool = False
    ) -> None:
        from wasmrt.runtime.store import Store

        if not isinstance(store, Store):
            raise TypeError("expected a Store")
        if not isinstance(ty, FuncType):
            raise TypeError("expected a FuncType")
        core = store._context()
        fty = ty.ptr()
        try_alloc(_FUNC_COST, AllocKind.FUNC)
        trampoline = host_callable(core, fty, func, bool(access_caller))
        self._store = core
        self._func = _core.new_host_function(core, fty, trampoline)

    @classmethod
    def _from_core(cls, store_core: Any, func: Any) -> Func:
        out: Func = cls.__new__(cls)
        out._store = store_core
        out._func = func
        return out

    def _core_for(self, store_core: Any) -> Any:
        """The vm function, checked to belong to ``store_core``."""
        if store_core is not self._store:
            raise WasmtimeError(_WRONG_STORE)
        return self._func

    def type(self, store: Any) -> FuncType:
        core = store._context()
        return FuncType._from_ir(_core.func_type(self._core_for(core)))

    def __call__(self, store: Any, *params: Any) -> Any:
        core = store._context()
        func = self._core_for(core)
        require_sync(core, "Func.call")
        ty = _core.func_type(func)
        expected = len(ty.params)
        if len(params) > expected:
            raise WasmtimeError(
                f"too many parameters provided: given {len(params)}, expected {expected}"
            )
        if len(params) < expected:
            raise WasmtimeError(
                f"too few parameters provided: given {len(params)}, expected {expected}"
            )
        args = [to_core(core, k, v) for k, v in zip(ty.params, params, strict=True)]
        _call_buffers(len(args), len(ty.results))
        out = _core.call(core, func, args)
        results = ty.results
        if not results:
            return None
        if len(results) == 1:
            return from_core(core, results[0], out)
        return [from_core(core, k, v) for k, v in zip(results, out, strict=True)]

    async def call_async(self, store: Any, *params: Any) -> Any:
        """``self(store, *params)`` for a store with a ``ResourceLimiterAsync``.

        The call runs on a worker thread while the limiter's coroutines run on
        this event loop (see ``wasmrt.runtime.limits``); results and
        exceptions are exactly those of ``__call__``.
        """
        core = store._context()
        self._core_for(core)
        return await run_async(core, lambda: self(store, *params), worker=True)

    def __repr__(self) -> str:
        return f"<wasmrt.Func {self._func!r}>"
