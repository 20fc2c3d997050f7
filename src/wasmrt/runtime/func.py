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
- What a call needs from the function type (counts, int masks, the buffer
  size) is computed once per handle (``_CallPlan``); plain ``int`` arguments
  of i32/i64 parameters are masked inline, anything else goes through
  ``to_core``, so results and errors are exactly ``to_core``/``from_core``'s.
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
from wasmrt.runtime.caller import Caller
from wasmrt.runtime.limits import require_sync, run_async
from wasmrt.runtime.store import Store
from wasmrt.runtime.types import FuncType
from wasmrt.runtime.val import _HALF, _MASK, _REFS, Val, f32_round, public_to_core

__all__ = ["Func", "from_core", "host_callable", "to_core", "val_from_core"]

#: Fixed cost of one call frame's bookkeeping, plus a slot per value.
_CALL_HEADER = 64
_FUNC_COST = 96

_WRONG_STORE = "object used with the wrong store"


_INT_MASKS = {"i32": (1 << 32) - 1, "i64": (1 << 64) - 1}


def _int_converter(masks: tuple[int, ...]) -> Callable[[tuple[Any, ...]], list[int] | None]:
    """``params -> [p & mask, ...]``, or ``None`` unless every param is a plain ``int``."""
    if len(masks) == 1:
        (m0,) = masks

        def conv1(p: tuple[Any, ...]) -> list[int] | None:
            (a,) = p
            return [a & m0] if type(a) is int else None

        return conv1
    if len(masks) == 2:
        m0, m1 = masks

        def conv2(p: tuple[Any, ...]) -> list[int] | None:
            a, b = p
            return [a & m0, b & m1] if type(a) is int and type(b) is int else None

        return conv2

    def conv(p: tuple[Any, ...]) -> list[int] | None:
        for v in p:
            if type(v) is not int:
                return None
        return [v & m for v, m in zip(p, masks, strict=True)]

    return conv


class _CallPlan:
    """Per-type facts a call from the embedder needs, computed once per ``Func``."""

    __slots__ = ("buffers", "int_args", "nparams", "params", "result", "result_half", "results")

    def __init__(self, ty: ir.FuncType) -> None:
        self.params = tuple(ty.params)
        self.results = tuple(ty.results)
        self.nparams = len(self.params)
        self.buffers = _CALL_HEADER + SLOT_SIZE * (len(self.params) + len(self.results))
        masks = tuple(_INT_MASKS.get(k, 0) for k in self.params)
        #: Converts a tuple of plain ints when every parameter is i32/i64 (else None).
        self.int_args = _int_converter(masks) if all(masks) else None
        self.result = self.results[0] if len(self.results) == 1 else None
        #: For a single i32/i64 result: (2**(n-1), 2**n) to sign it inline.
        self.result_half: tuple[int, int] | None = None
        if self.result in _INT_MASKS:
            full = _INT_MASKS[self.result] + 1
            self.result_half = (full >> 1, full)


def host_callable(
    store_core: Any, ty: ir.FuncType, func: Callable[..., Any], access_caller: bool
) -> Callable[..., Any]:
    """The core-convention callable the vm runs for a host function.

    It is called as ``fn(calling_instance, *core_args)`` (``calling_instance``
    is the vm ``ModuleInstance`` whose code made the call, or ``None``).
    """
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

    __slots__ = ("_func", "_plan", "_store")

    def __init__(
        self, store: Any, ty: FuncType, func: Callable[..., Any], access_caller: bool = False
    ) -> None:
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
        self._plan: _CallPlan | None = None

    @classmethod
    def _from_core(cls, store_core: Any, func: Any) -> Func:
        out: Func = cls.__new__(cls)
        out._store = store_core
        out._func = func
        out._plan = None
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
        if core is not self._store:
            raise WasmtimeError(_WRONG_STORE)
        func = self._func
        require_sync(core, "Func.call")
        plan = self._plan
        if plan is None:
            plan = self._plan = _CallPlan(_core.func_type(func))
        expected = plan.nparams
        if len(params) != expected:
            word = "many" if len(params) > expected else "few"
            raise WasmtimeError(
                f"too {word} parameters provided: given {len(params)}, expected {expected}"
            )
        int_args = plan.int_args
        args = None if int_args is None else int_args(params)
        if args is None:
            args = [to_core(core, k, v) for k, v in zip(plan.params, params, strict=True)]
        try_alloc(plan.buffers, AllocKind.CALL)
        out = _core.call(core, func, args)
        half = plan.result_half
        if half is not None:
            return out - half[1] if out >= half[0] else out
        results = plan.results
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


# Conversions between Python values and core values (wasmrt.runtime.val) --------


def to_core(store: Any, kind: str, val: Any) -> Any:
    """Convert an argument/result/initial value to the core value of type ``kind``.

    ``store`` is the ``StoreCore`` the value is for (needed to check a
    ``Func``'s store); ``kind`` is an IR valtype string.
    """
    if isinstance(val, Val):
        if val._kind != kind:
            raise TypeError("wrong type of `Val` provided")
        return public_to_core(store, kind, val._val)
    if kind == "externref":
        return val
    if isinstance(val, int):
        if kind in _MASK:
            return int(val) & _MASK[kind]
    elif isinstance(val, float):
        if kind == "f32":
            return f32_round(val)
        if kind == "f64":
            return val
    elif isinstance(val, Func):
        if kind == "funcref":
            return val._core_for(store)
    elif val is None:
        if kind in _REFS:
            return None
    raise TypeError(f"don't know how to convert {val!r} to {_display(kind)}")


def _display(kind: str) -> str:
    return "anyref" if kind == "externref" else kind


def from_core(store: Any, kind: str, core: Any) -> Any:
    """Convert a core value of type ``kind`` to the Python value the embedder sees."""
    if kind in _HALF:
        v = int(core)
        return v - (_MASK[kind] + 1) if v >= _HALF[kind] else v
    if kind == "funcref":
        if core is None:
            return None
        return Func._from_core(store, core)
    return core


def val_from_core(store: Any, kind: str, core: Any) -> Val:
    """Like ``from_core`` but wrapped in a ``Val`` (for null references)."""
    return Val(kind, from_core(store, kind, core))
