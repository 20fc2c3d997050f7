"""The calling thread's C stack: how many bytes are left, so re-entry into wasm can refuse in time.

Why this exists: wasm->wasm calls are Python-to-Python calls, which CPython
(3.11+) runs without growing the C stack, so their depth is safely bounded
by the recursion limit on any thread. Every crossing between host and wasm
(``StoreCore.call``, a host function's argument unpacking, the public API's
``__call__``) goes through C and does use C stack, a few KiB per round trip.
A guest that bounces between wasm and a re-entrant host function can thus
exhaust a small thread stack (``threading.stack_size(256 << 10)``) long
before any recursion limit trips, and that is a segfault, not an exception.
``StoreCore.call`` therefore asks ``stack_low()`` whenever wasm is entered
while wasm already runs, and traps ``STACK_OVERFLOW`` instead.

Invariants:
- ``stack_left()`` is the number of bytes between the caller's C stack
  position and the low end of the current thread's stack, measured each
  call. The position is the address of a local variable of libc's
  ``dl_iterate_phdr`` (its ``dl_phdr_info``), handed back by the callback
  it is given, libc's ``memmove`` (see ``_load``), which stops the
  iteration at once; the bounds come from ``pthread_getattr_np``,
  read once per thread (a ``threading.local``: thread ids are reused, stacks
  are not).
- The probe is trusted on a thread only after a self-check: the address it
  reports lies inside that thread's bounds. Otherwise (no ctypes, no such
  libc functions, a failed check) the thread uses the estimate: ``FALLBACK_FRAME_BYTES``
  per Python frame on the stack against the size the thread is known to
  have (``RLIMIT_STACK`` for the main thread, else ``threading.stack_size()``,
  else ``FALLBACK_STACK``). Python frames that use no C stack are charged
  too, so the estimate only errs towards refusing early.
- ``stack_low()`` is true when fewer than ``RESERVE`` bytes are left:
  enough for one host round trip up to the next check, for raising the trap
  and for the interpreter's own unwinding (measured round trips use
  0.8-1.9 KiB; see docs/internals.md "Stack safety").
- Nothing here allocates through ``try_alloc``: a probe owns no resource.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

__all__ = [
    "FALLBACK_FRAME_BYTES",
    "FALLBACK_STACK",
    "RESERVE",
    "probe_available",
    "stack_left",
    "stack_low",
]

#: Bytes that must stay free below a (re-)entry into wasm.
RESERVE = 64 << 10
#: Fallback estimate: C stack charged per Python frame (a generous round-trip share).
FALLBACK_FRAME_BYTES = 1024
#: Fallback stack size of a thread whose size is not known otherwise.
FALLBACK_STACK = 1 << 20

_HIGH = ~0xFFFFFFFF
_TLS = threading.local()
_getframe = sys._getframe

# The probe, loaded on first use (``_load``): ``_iterate(_memmove, None)`` returns
# the low 32 bits of an address in the caller's C frame chain.
_loaded = False
_iterate: Any = None
_memmove: Any = None
_bounds: Any = None  # () -> (low address, size) of this thread's stack, or None
#: What the probe call may raise when the recursion budget is spent.
_FAILED: tuple[type[BaseException], ...] = (RecursionError,)


def _load() -> None:
    """Find the probe in libc through ctypes (``_iterate`` stays None where it cannot).

    The probe runs no Python code inside C: ``dl_iterate_phdr`` is handed
    libc's ``memmove`` as its callback, so ``memmove(&info, size, NULL)``
    copies nothing and returns ``&info`` (a local of ``dl_iterate_phdr``),
    whose low 32 bits come back as its ``int`` result (non-zero stops the
    walk). A stack is far smaller than 4 GiB, so those bits and the stack's
    low bound give the whole address. (A Python callback would itself need
    recursion headroom exactly when little is left.) No ``argtypes`` on it:
    converting through ``from_param`` would be a Python call.
    """
    global _loaded, _iterate, _memmove, _bounds, _FAILED
    _loaded = True
    try:
        import ctypes

        libc = ctypes.PyDLL(None)  # keeps the GIL: a probe must not let other threads run
        iterate = libc.dl_iterate_phdr
        getattr_np = libc.pthread_getattr_np
        getstack = libc.pthread_attr_getstack
        destroy = libc.pthread_attr_destroy
        self_ = libc.pthread_self
        memmove = ctypes.c_void_p(ctypes.cast(libc.memmove, ctypes.c_void_p).value)
    except (ImportError, OSError, AttributeError, TypeError):
        return
    iterate.restype = ctypes.c_uint
    self_.restype = ctypes.c_void_p
    getattr_np.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    getattr_np.restype = ctypes.c_int
    getstack.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_size_t),
    ]
    getstack.restype = ctypes.c_int
    destroy.argtypes = [ctypes.c_void_p]

    def bounds() -> tuple[int, int] | None:
        attr = ctypes.create_string_buffer(256)  # >= sizeof(pthread_attr_t) everywhere
        if getattr_np(self_(), attr) != 0:
            return None
        try:
            addr = ctypes.c_void_p()
            size = ctypes.c_size_t()
            if getstack(attr, ctypes.byref(addr), ctypes.byref(size)) != 0 or not addr.value:
                return None
            return int(addr.value), int(size.value)
        finally:
            destroy(attr)

    _iterate, _memmove, _bounds = iterate, memmove, bounds
    _FAILED = (RecursionError, ctypes.ArgumentError)


def _thread_base() -> int | None:
    """This thread's stack low bound if the probe is trustworthy here, else None."""
    if not _loaded:
        _load()
    found = _bounds() if _iterate is not None else None
    if found is not None:
        _TLS.base = found[0]
        # Self-check: the probe's address must lie inside this thread's stack.
        if 0 < stack_left() < found[1]:
            return int(found[0])
    _TLS.size = _known_size()
    return None


def probe_available() -> bool:
    """True when this thread's C stack is measured (not estimated)."""
    try:
        return _TLS.base is not None
    except AttributeError:
        _TLS.base = _thread_base()
        return _TLS.base is not None


def _known_size() -> int:
    """The stack size this thread is known to have been given (fallback only)."""
    if threading.current_thread() is threading.main_thread():
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
        except (ImportError, OSError, ValueError):
            return FALLBACK_STACK
        return FALLBACK_STACK if soft <= 0 or soft == resource.RLIM_INFINITY else soft
    return threading.stack_size() or FALLBACK_STACK


def _estimate_left() -> int:
    f: Any = _getframe(1)
    n = 0
    while f is not None:
        n += 1
        f = f.f_back
    return int(_TLS.size) - n * FALLBACK_FRAME_BYTES


def stack_left() -> int:
    """Bytes of C stack left below the caller on this thread (an under-estimate)."""
    try:
        base = _TLS.base
    except AttributeError:
        base = _TLS.base = _thread_base()
    if base is None:
        return _estimate_left()
    try:
        low32 = _iterate(_memmove, None)
    except _FAILED:  # out of recursion budget: as good as out of stack
        return 0
    if not low32:
        return 0
    addr = (base & _HIGH) | low32
    if addr < base:
        addr += 1 << 32
    return int(addr - base)


def stack_low() -> bool:
    """True when entering wasm again here could exhaust this thread's C stack."""
    return stack_left() < RESERVE
