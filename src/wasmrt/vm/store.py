"""``StoreCore``: the per-store state the vm and the generated code share.

Invariants:
- ``config`` values come from the engine (``engine.config``): ``consume_fuel``,
  ``epoch_interruption``, ``max_wasm_stack``; ``allocator`` is the engine's
  (``engine.allocator``), else an ``OnDemandInstanceAllocator``.
- ``fuel_counter`` is consumed-minus-injected fuel (Wasmtime's negative
  counter); generated code traps OUT_OF_FUEL at function entry and loop
  headers once it is ``>= 0``. ``get_fuel() == max(0, -fuel_counter)``.
- ``epoch_deadline`` is compared with ``engine.epoch`` (an int attribute).
- ``call`` is the embedder->wasm boundary: the outermost call bounds wasm
  call depth to ``max_wasm_stack // FRAME_BYTES`` frames by setting the
  Python recursion limit (restored afterwards), and turns ``RecursionError``
  into ``Trap(STACK_OVERFLOW)``; the store stays usable after.
- Counters ``instance_count``/``memory_count``/``table_count`` only count
  instantiated modules (host-created memories/tables do not count);
  ``close()`` releases every instance through the allocator exactly once.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import ResourceLimitExceeded, WasmtimeError
from wasmrt.trap import Trap, TrapCode
from wasmrt.vm.global_ import GlobalInstance
from wasmrt.vm.memory import LinearMemory
from wasmrt.vm.table import TableInstance

__all__ = ["DEFAULT_LIMIT", "FRAME_BYTES", "StoreCore"]

DEFAULT_LIMIT = 10_000
#: Bytes of ``max_wasm_stack`` one wasm frame is charged (512 KiB -> 8192 frames).
FRAME_BYTES = 64
#: Python frames allowed above the entry point besides wasm frames (host code, helpers).
HEADROOM = 200
#: Bytes charged for a store record.
STORE_SIZE = 512


def _py_depth() -> int:
    f = sys._getframe(1)
    n = 1
    while f is not None:
        n += 1
        f = f.f_back  # type: ignore[assignment]
    return n


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
        alloc = getattr(self.engine, "allocator", None)
        if alloc is None:
            from wasmrt.runtime.allocator import OnDemandInstanceAllocator

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
        if limiter is not None:
            self.set_limiter(limiter)

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
            self.depth += 1
            try:
                return func.call(*args)
            except RecursionError:
                raise Trap(TrapCode.STACK_OVERFLOW) from None
            finally:
                self.depth -= 1
        old = sys.getrecursionlimit()
        limit = _py_depth() + self.max_depth + HEADROOM
        self.depth = 1
        try:
            sys.setrecursionlimit(limit)
            return func.call(*args)
        except RecursionError:
            raise Trap(TrapCode.STACK_OVERFLOW) from None
        finally:
            self.depth = 0
            sys.setrecursionlimit(old)

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
        self.host_objects = []
        for inst in reversed(instances):
            if not inst.released:
                inst.release(self.allocator)
                self.allocator.decrement_core_instance_count()
