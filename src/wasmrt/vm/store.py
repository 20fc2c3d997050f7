"""``StoreCore``: the per-store state the vm and the generated code share.

Invariants:
- ``config`` values come from the engine (``engine.config``): ``consume_fuel``,
  ``epoch_interruption``, ``max_wasm_stack``; ``allocator`` is the engine's
  (``engine.allocator``), else an ``OnDemandInstanceAllocator``.
- ``fuel_counter`` is consumed-minus-injected fuel (Wasmtime's negative
  counter); generated code traps OUT_OF_FUEL at function entry and loop
  headers once it is ``>= 0``. ``get_fuel() == max(0, -fuel_counter)``.
- ``epoch_deadline`` is compared with ``engine.epoch`` (an int attribute).
- ``call`` is the embedder->wasm boundary: the outermost call of a store
  (``depth`` counts nesting per store) bounds wasm call depth to at least
  ``max_wasm_stack // FRAME_BYTES`` frames and at most ``LIMIT_SLACK``
  frames more, through the Python recursion limit, and turns
  ``RecursionError`` into ``Trap(STACK_OVERFLOW)``; the store stays usable
  after. A wasm trap (``trap_code`` set) leaving the outermost entry gets its
  backtrace (``Trap.frames``, innermost first; ``backtrace.attach_frames``);
  for a stack overflow it is taken from the ``RecursionError``'s traceback,
  so the conversion happens only once the stack has unwound to the entry.
  Host-created traps pass through untouched (wasmtime-py keeps their text).
- The interpreter itself failing under a call is mapped there too
  (``_stack_exhausted``): CPython failing to push the next frame
  (``SystemError`` "error return without exception set" on 3.11, raised in
  the calling frame, guest or wasmrt's) or a ``MemoryError`` raised in a
  guest frame (what later versions raise there) is the guest's stack that
  could not grow: Wasmtime's ``Trap(STACK_OVERFLOW)``, like
  ``RecursionError``, and the store stays usable. A ``MemoryError`` raised
  in wasmrt's own code is not remapped here: each allocation site maps its
  own where its semantics are known (``HostAlloc``: -1 from ``memory.grow``,
  ``OutOfMemory`` elsewhere), so a site that does not stays visible to the
  real-exhaustion sweep. The embedder's host functions' own errors pass
  through unchanged.
- The recursion limit bounds Python frames only; wasm->wasm calls use no C
  stack, host<->wasm crossings do. So every entry made while wasm already
  runs (nested in this store, or any entry while ``_NEEDS`` is non-empty)
  first asks ``cstack.stack_low()`` and raises ``Trap(STACK_OVERFLOW)`` when
  the calling thread's C stack is nearly used up: every host->wasm->host
  round trip passes such a check, so no thread stack size can overflow.
- While any outermost entry runs, wasmrt finalizers are parked
  (``wasmrt.vm.deferred``): the collector may run them deep in wasm recursion,
  a few frames below the limit. The outermost exit drains them, on a shallow
  stack, after restoring the limit; so does creating a store outside wasm.
- The recursion limit is process-wide, so it is managed in one place under
  a lock (``_enter_limit``/``_exit_limit``): every outermost entry, on any
  thread, registers the limit it needs; the limit in force is kept within
  ``[max(needs), max(needs) + LIMIT_SLACK]`` while entries run (never lowered
  under a running entry's need) and the embedder's value comes back when the
  last one leaves. On Python >= 3.12 (where the recursion limit guards only
  Python frames, not the C stack) the first store raises the limit once to
  ``BASE_LIMIT`` so that calls from shallow stacks with the default
  ``max_wasm_stack`` need no change at all.
- Counters ``instance_count``/``memory_count``/``table_count`` only count
  instantiated modules (host-created memories/tables do not count);
  ``close()`` releases every instance exactly once through the vm's one
  release path (``vm.instance.deallocate_module``), then the host-created
  memories' bytes (``LinearMemory.release``).
"""

from __future__ import annotations

import sys
import threading
from types import SimpleNamespace
from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import ResourceLimitExceeded, WasmtimeError
from wasmrt.observe import created
from wasmrt.trap import Trap, TrapCode
from wasmrt.vm.allocator.on_demand import OnDemandInstanceAllocator
from wasmrt.vm.backtrace import attach_frames, raised_in
from wasmrt.vm.cstack import stack_low as _stack_low
from wasmrt.vm.deferred import PENDING as _PENDING
from wasmrt.vm.deferred import RUNNING as _NEEDS
from wasmrt.vm.deferred import drain as _drain
from wasmrt.vm.global_ import GlobalInstance
from wasmrt.vm.instance import deallocate_module
from wasmrt.vm.memory import LinearMemory
from wasmrt.vm.table import TableInstance

__all__ = ["BASE_LIMIT", "DEFAULT_LIMIT", "FRAME_BYTES", "LIMIT_SLACK", "StoreCore"]

DEFAULT_LIMIT = 10_000
#: Bytes of ``max_wasm_stack`` one wasm frame is charged (512 KiB -> 8192 frames).
FRAME_BYTES = 64
#: Python frames allowed above the entry point besides wasm frames (host code, helpers).
HEADROOM = 200
#: Bytes charged for a store record.
STORE_SIZE = 512


#: How far above an entry's need the recursion limit may stay (frames).
LIMIT_SLACK = 1024
#: Limit installed once on Python >= 3.12: the default 512 KiB wasm stack plus
#: headroom, for callers up to ``LIMIT_SLACK // 2`` frames deep.
BASE_LIMIT = 512 * 1024 // FRAME_BYTES + HEADROOM + LIMIT_SLACK // 2

_getframe = sys._getframe
_getlimit = sys.getrecursionlimit
_setlimit = sys.setrecursionlimit
_LIMIT_LOCK = threading.Lock()
# ``_NEEDS`` (``wasmrt.vm.deferred.RUNNING``): the limits the outermost entries
# running now (all threads) need; finalizers defer while it is non-empty.
#: The embedder's limit, restored when ``_NEEDS`` empties.
_SAVED_LIMIT = [0]
_BASE_DONE = [sys.version_info < (3, 12)]
#: Stack depth seen last time (a hint for ``_stack_depth``; races only cost speed).
_DEPTH_HINT = [0]


def _stack_exhausted(e: MemoryError | SystemError) -> bool:
    """Whether ``e`` is the interpreter failing to grow the guest's stack (see module doc)."""
    origin = raised_in(e.__traceback__)
    return origin == "guest" or (origin == "runtime" and isinstance(e, SystemError))


def _stack_depth() -> int:
    """The number of Python frames on this thread's stack, the caller's included.

    Also records the answer as ``_DEPTH_HINT`` (the caller's
    ``sys._getframe`` index of the outermost frame), which the caller tries
    first next time.
    """
    f = _getframe(1)
    n = 1
    while (f := f.f_back) is not None:  # type: ignore[assignment]
        n += 1
    _DEPTH_HINT[0] = n - 1
    return n


def _raise_base_limit() -> None:
    with _LIMIT_LOCK:
        if not _BASE_DONE[0]:
            _BASE_DONE[0] = True
            if not _NEEDS and _getlimit() < BASE_LIMIT:
                _setlimit(BASE_LIMIT)


def _enter_locked(need: int) -> None:
    """Register ``need`` (``_LIMIT_LOCK`` held)."""
    cur = _getlimit()
    if not _NEEDS:
        _SAVED_LIMIT[0] = cur
        target = need
    else:
        target = max(need, *_NEEDS)
    _NEEDS.append(need)
    if not target <= cur <= target + LIMIT_SLACK:
        _setlimit(target)


def _exit_locked() -> None:
    """Re-establish the limit after an entry left ``_NEEDS`` (``_LIMIT_LOCK`` held)."""
    cur = _getlimit()
    if _NEEDS:
        target = max(_NEEDS)
        if not target <= cur <= target + LIMIT_SLACK:
            _setlimit(target)
    elif cur != _SAVED_LIMIT[0]:
        _setlimit(_SAVED_LIMIT[0])


def _default_engine() -> Any:
    return SimpleNamespace(
        config=SimpleNamespace(
            consume_fuel=False, epoch_interruption=False, max_wasm_stack=512 * 1024
        ),
        allocator=None,
        epoch=0,
    )


class StoreCore:
    def __init__(self, engine: Any = None, limiter: Any = None) -> None:
        try_alloc(STORE_SIZE, AllocKind.STORE)
        self.engine = engine if engine is not None else _default_engine()
        cfg = getattr(self.engine, "config", None)
        self.config = cfg
        self.consume_fuel = bool(getattr(cfg, "consume_fuel", False))
        self.epoch_interruption = bool(getattr(cfg, "epoch_interruption", False))
        self.max_wasm_stack = int(getattr(cfg, "max_wasm_stack", 512 * 1024))
        #: Python frames an outermost call may add: wasm frames plus ``HEADROOM``.
        self.frame_budget = max(1, self.max_wasm_stack // FRAME_BYTES) + HEADROOM
        alloc = getattr(self.engine, "allocator", None)
        if alloc is None:
            alloc = OnDemandInstanceAllocator()
        self.allocator = alloc
        self.limiter: Any = None
        self.instance_count = 0
        self.memory_count = 0
        self.table_count = 0
        self.instance_limit = DEFAULT_LIMIT
        self.memory_limit = DEFAULT_LIMIT
        self.table_limit = DEFAULT_LIMIT
        self.fuel_counter = 0
        self.epoch_deadline = 0
        self.depth = 0
        self.instances: list[Any] = []
        self.host_objects: list[Any] = []
        self.closed = False
        #: The runtime's opaque WASI context slot (``wasmrt.runtime.wasi_hook``).
        self.wasi: Any = None
        if limiter is not None:
            self.set_limiter(limiter)
        if not _BASE_DONE[0]:
            _raise_base_limit()
        if _PENDING and not _NEEDS:
            _drain()
        created(self)

    def __repr__(self) -> str:
        return f"StoreCore(instances={len(self.instances)}, closed={self.closed})"

    # ---------------------------------------------------------------- limits
    def set_limiter(self, limiter: Any) -> None:
        self.limiter = limiter
        if limiter is None:
            self.instance_limit = self.memory_limit = self.table_limit = DEFAULT_LIMIT
            return
        self.instance_limit = int(limiter.instances())
        self.table_limit = int(limiter.tables())
        self.memory_limit = int(limiter.memories())

    def bump_counts(self, memories: int, tables: int) -> None:
        """Wasmtime's ``bump_resource_counts``: instance, memories, tables, in that order."""
        checks = (
            ("instance", self.instance_count + 1, self.instance_limit),
            ("memory", self.memory_count + memories, self.memory_limit),
            ("table", self.table_count + tables, self.table_limit),
        )
        for what, new, limit in checks:
            if new > limit:
                raise ResourceLimitExceeded(
                    f"resource limit exceeded: {what} count too high at {new}"
                )
        self.instance_count += 1
        self.memory_count += memories
        self.table_count += tables

    def unbump_counts(self, memories: int, tables: int) -> None:
        self.instance_count -= 1
        self.memory_count -= memories
        self.table_count -= tables

    # ---------------------------------------------------------------- fuel
    def set_fuel(self, fuel: int) -> None:
        if not self.consume_fuel:
            raise WasmtimeError("fuel is not configured in this store")
        if fuel < 0:
            raise WasmtimeError("fuel must be non-negative")
        self.fuel_counter = -int(fuel)

    def get_fuel(self) -> int:
        if not self.consume_fuel:
            raise WasmtimeError("fuel is not configured in this store")
        return max(0, -self.fuel_counter)

    def set_epoch_deadline(self, ticks_after_current: int) -> None:
        self.epoch_deadline = int(getattr(self.engine, "epoch", 0)) + ticks_after_current

    # ---------------------------------------------------------------- calls
    @property
    def max_depth(self) -> int:
        return max(1, self.max_wasm_stack // FRAME_BYTES)

    def call(self, func: Any, args: list[Any] | tuple[Any, ...]) -> Any:
        """Call ``func`` with core ``args`` from the embedder (the wasm entry boundary)."""
        if self.closed:
            raise WasmtimeError("store is closed")
        if self.depth:
            if _stack_low():
                raise Trap(TrapCode.STACK_OVERFLOW)
            self.depth += 1
            try:
                return func.call(*args)
            except RecursionError:
                raise Trap(TrapCode.STACK_OVERFLOW) from None
            except (MemoryError, SystemError) as e:
                if not _stack_exhausted(e):
                    raise
                raise Trap(TrapCode.STACK_OVERFLOW) from None
            finally:
                self.depth -= 1
        if _NEEDS and _stack_low():  # wasm may be running below us (another store's)
            raise Trap(TrapCode.STACK_OVERFLOW)
        # Outermost entry: register the recursion limit this call needs (see module doc).
        hint = _DEPTH_HINT[0]
        try:
            depth = hint + 1 if _getframe(hint).f_back is None else _stack_depth()
        except ValueError:
            depth = _stack_depth()
        need = depth + self.frame_budget
        with _LIMIT_LOCK:
            if _NEEDS:
                _enter_locked(need)
            else:
                cur = _SAVED_LIMIT[0] = _getlimit()
                _NEEDS.append(need)
                if not need <= cur <= need + LIMIT_SLACK:
                    _setlimit(need)
        self.depth = 1
        try:
            return func.call(*args)
        except Trap as t:
            if t.trap_code is not None:
                attach_frames(t)
            raise
        except RecursionError as e:
            raise attach_frames(Trap(TrapCode.STACK_OVERFLOW), e.__traceback__) from None
        except (MemoryError, SystemError) as e:
            if not _stack_exhausted(e):
                raise
            raise attach_frames(Trap(TrapCode.STACK_OVERFLOW), e.__traceback__) from None
        finally:
            self.depth = 0
            with _LIMIT_LOCK:
                _NEEDS.remove(need)
                if _NEEDS or _getlimit() != _SAVED_LIMIT[0]:
                    _exit_locked()
            if _PENDING:
                _drain()

    # ---------------------------------------------------------------- host objects
    def new_host_memory(self, ty: ir.MemoryType) -> LinearMemory:
        mem = LinearMemory(self, ty)
        self.host_objects.append(mem)
        return mem

    def new_host_table(self, ty: ir.TableType, init: Any = None) -> TableInstance:
        tab = TableInstance(self, ty, init)
        self.host_objects.append(tab)
        return tab

    def new_host_global(self, ty: ir.GlobalType, value: Any) -> GlobalInstance:
        try_alloc(SLOT_SIZE * 2, AllocKind.GLOBAL)
        g = GlobalInstance(ty, value)
        self.host_objects.append(g)
        return g

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release every instance's memories/tables through the allocator, exactly once."""
        if self.closed:
            return
        self.closed = True
        instances, self.instances = self.instances, []
        hosted, self.host_objects = self.host_objects, []
        for inst in reversed(instances):
            deallocate_module(self.allocator, inst)
        for obj in hosted:
            if isinstance(obj, LinearMemory):
                obj.release()
