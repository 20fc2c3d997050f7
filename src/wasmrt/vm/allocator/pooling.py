"""The pooling instance allocator: fixed pools of memory/table slots reused across instances.

Models Wasmtime's ``vm/instance/allocator/pooling*`` (WASMTIME-REFERENCE.md 2.5-2.8).

Invariants:
- ``PoolingAllocationConfig`` is a plain record: Rust's setter names (each
  returns ``self``), a ``get_*`` getter per setter, Wasmtime's 64-bit
  defaults. The allocator copies it at construction, so later changes to the
  config object do not affect a running engine.
- ``validate_module`` raises ``WasmtimeError`` with Wasmtime's messages (an
  outer "module memory|table|instance size does not fit in pooling allocator
  requirements" and the specific cause under ``Caused by:``).
- Live counters (core instances, memories, tables) change only under the
  allocator's lock and only in pairs: every successful increment/allocate is
  undone exactly once by its decrement/deallocate. A failed allocate leaves
  every counter and slot as it found them (the slot goes back to the free
  list before the exception propagates, unchanged).
- Concurrency caps raise ``PoolConcurrencyLimitError(limit, kind)`` with kind
  "core instances", "memory stripe 0" or "tables", after flushing pending
  decommits and retrying once.
- A memory's maximum is clamped to ``max_memory_size`` bytes and a table's to
  ``table_elements``, so growth past them fails (-1 / error). Memories get
  the engine's explicit ``Config.memory_reservation`` as reservation cap.
- Isolation: every tenant of a slot gets freshly zeroed storage from the vm
  constructors (then the module's data/elem segments), and ``deallocate_*``
  resets the slot: the departing ``LinearMemory`` is emptied (``data``,
  ``size``, ``pages``) and the departing table's element list cleared, so
  neither tenant can observe the other through a stale reference.
- Residency is accounting: a freed memory slot reports
  ``min(linear_memory_keep_resident rounded up to 4 KiB, its size)`` bytes, a
  table slot ``min(table_keep_resident, its element bytes)`` rounded to 4 KiB
  pages, and ``unused_*_bytes_resident`` sums free (warm) slots only.
- The allocator's own bookkeeping asks ``try_alloc`` at construction (one
  entry per slot), never during deallocation, which must not fail.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import PoolConcurrencyLimitError, WasmtimeError, format_context
from wasmrt.vm.allocator.base import InstanceAllocator
from wasmrt.vm.allocator.index_allocator import (
    ModuleAffinityIndexAllocator,
    SimpleIndexAllocator,
)
from wasmrt.vm.memory import LinearMemory
from wasmrt.vm.table import TableInstance

__all__ = [
    "Enabled",
    "MpkEnabled",
    "PoolingAllocationConfig",
    "PoolingAllocatorMetrics",
    "PoolingInstanceAllocator",
    "estimate_core_instance_size",
]

WASM_PAGE_SIZE = 65536
HOST_PAGE_SIZE = 4096
#: Bytes per table element (a pointer), as in Wasmtime.
TABLE_ELEMENT_SIZE = 8
_U32_MAX = 2**32 - 1
#: Wasmtime's instance alignment; ``max_core_instance_size`` is rounded up to it.
_INSTANCE_ALIGN = 16


class Enabled(enum.Enum):
    """Wasmtime's ``Enabled`` (used by ``pagemap_scan``)."""

    YES = "yes"
    NO = "no"
    AUTO = "auto"


class MpkEnabled(enum.Enum):
    """Wasmtime's ``MpkEnabled`` (``memory_protection_keys``)."""

    AUTO = "auto"
    ENABLE = "enable"
    DISABLE = "disable"


def _count(name: str, value: object, bits: int = 64) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} expects an int, not {type(value).__name__}")
    if value < 0 or value >= 2**bits:
        raise WasmtimeError(f"{name} must be between 0 and {2**bits - 1}, got {value}")
    return value


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


def _coerce_enum(name: str, value: object, cls: type[enum.Enum], true: Any, false: Any) -> Any:
    if isinstance(value, cls):
        return value
    if value is True:
        return true
    if value is False:
        return false
    if isinstance(value, str):
        for member in cls:
            if member.value == value.lower():
                return member
    raise WasmtimeError(f"invalid value for {name}: {value!r}")


_DEFAULTS: dict[str, Any] = {
    "total_component_instances": 1000,
    "max_component_instance_size": 1 << 20,
    "max_core_instances_per_component": _U32_MAX,
    "max_memories_per_component": _U32_MAX,
    "max_tables_per_component": _U32_MAX,
    "total_core_instances": 1000,
    "total_memories": 1000,
    "total_tables": 1000,
    "total_stacks": 1000,
    "total_gc_heaps": 1000,
    "max_core_instance_size": 1 << 20,
    "max_memories_per_module": 1,
    "max_tables_per_module": 1,
    "max_memory_size": 1 << 32,
    "table_elements": 20_000,
    "max_unused_warm_slots": 100,
    "decommit_batch_size": 1,
    "linear_memory_keep_resident": 0,
    "table_keep_resident": 0,
    "async_stack_keep_resident": 0,
    "async_stack_zeroing": False,
    "memory_protection_keys": MpkEnabled.DISABLE,
    "max_memory_protection_keys": 16,
    "pagemap_scan": Enabled.NO,
}


class PoolingAllocationConfig:
    """Wasmtime's ``PoolingAllocationConfig``: setters return ``self``; ``get_*`` read back."""

    __slots__ = ("_v",)

    def __init__(self) -> None:
        self._v: dict[str, Any] = dict(_DEFAULTS)

    def _set(self, name: str, value: Any) -> PoolingAllocationConfig:
        self._v[name] = value
        return self

    def copy(self) -> PoolingAllocationConfig:
        out = PoolingAllocationConfig()
        out._v = dict(self._v)
        return out

    def build_allocator(self, memory_reservation: int | None = None) -> InstanceAllocator:
        """Same as ``InstanceAllocationStrategy.pooling(self).build_allocator(...)``."""
        return PoolingInstanceAllocator(self, memory_reservation=memory_reservation)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PoolingAllocationConfig):
            return NotImplemented
        return self._v == other._v

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in self._v.items() if _DEFAULTS[k] != v)
        return f"PoolingAllocationConfig({changed})"

    @staticmethod
    def are_memory_protection_keys_available() -> bool:
        """MPK needs native memory; never available in a pure-Python runtime."""
        return False

    @staticmethod
    def is_pagemap_scan_available() -> bool:
        return False

    # Reuse and reset tuning.

    def max_unused_warm_slots(self, max: int) -> PoolingAllocationConfig:
        return self._set("max_unused_warm_slots", _count("max_unused_warm_slots", max, 32))

    def get_max_unused_warm_slots(self) -> int:
        return int(self._v["max_unused_warm_slots"])

    def decommit_batch_size(self, batch_size: int) -> PoolingAllocationConfig:
        return self._set("decommit_batch_size", _count("decommit_batch_size", batch_size))

    def get_decommit_batch_size(self) -> int:
        return int(self._v["decommit_batch_size"])

    def async_stack_keep_resident(self, size: int) -> PoolingAllocationConfig:
        return self._set("async_stack_keep_resident", _count("async_stack_keep_resident", size))

    def get_async_stack_keep_resident(self) -> int:
        return int(self._v["async_stack_keep_resident"])

    def linear_memory_keep_resident(self, size: int) -> PoolingAllocationConfig:
        return self._set("linear_memory_keep_resident", _count("linear_memory_keep_resident", size))

    def get_linear_memory_keep_resident(self) -> int:
        return int(self._v["linear_memory_keep_resident"])

    def table_keep_resident(self, size: int) -> PoolingAllocationConfig:
        return self._set("table_keep_resident", _count("table_keep_resident", size))

    def get_table_keep_resident(self) -> int:
        return int(self._v["table_keep_resident"])

    def async_stack_zeroing(self, enable: bool) -> PoolingAllocationConfig:
        if not isinstance(enable, bool):
            raise TypeError("expected a bool")
        return self._set("async_stack_zeroing", enable)

    def get_async_stack_zeroing(self) -> bool:
        return bool(self._v["async_stack_zeroing"])

    # Concurrency caps.

    def total_component_instances(self, count: int) -> PoolingAllocationConfig:
        return self._set(
            "total_component_instances", _count("total_component_instances", count, 32)
        )

    def get_total_component_instances(self) -> int:
        return int(self._v["total_component_instances"])

    def total_core_instances(self, count: int) -> PoolingAllocationConfig:
        return self._set("total_core_instances", _count("total_core_instances", count, 32))

    def get_total_core_instances(self) -> int:
        return int(self._v["total_core_instances"])

    def total_memories(self, count: int) -> PoolingAllocationConfig:
        return self._set("total_memories", _count("total_memories", count, 32))

    def get_total_memories(self) -> int:
        return int(self._v["total_memories"])

    def total_tables(self, count: int) -> PoolingAllocationConfig:
        return self._set("total_tables", _count("total_tables", count, 32))

    def get_total_tables(self) -> int:
        return int(self._v["total_tables"])

    def total_stacks(self, count: int) -> PoolingAllocationConfig:
        return self._set("total_stacks", _count("total_stacks", count, 32))

    def get_total_stacks(self) -> int:
        return int(self._v["total_stacks"])

    def total_gc_heaps(self, count: int) -> PoolingAllocationConfig:
        return self._set("total_gc_heaps", _count("total_gc_heaps", count, 32))

    def get_total_gc_heaps(self) -> int:
        return int(self._v["total_gc_heaps"])

    # Per-module limits checked at Module creation.

    def max_core_instance_size(self, size: int) -> PoolingAllocationConfig:
        return self._set("max_core_instance_size", _count("max_core_instance_size", size))

    def get_max_core_instance_size(self) -> int:
        return int(self._v["max_core_instance_size"])

    def max_memories_per_module(self, memories: int) -> PoolingAllocationConfig:
        return self._set("max_memories_per_module", _count("max_memories_per_module", memories, 32))

    def get_max_memories_per_module(self) -> int:
        return int(self._v["max_memories_per_module"])

    def max_tables_per_module(self, tables: int) -> PoolingAllocationConfig:
        return self._set("max_tables_per_module", _count("max_tables_per_module", tables, 32))

    def get_max_tables_per_module(self) -> int:
        return int(self._v["max_tables_per_module"])

    def max_memory_size(self, bytes_: int) -> PoolingAllocationConfig:
        return self._set("max_memory_size", _count("max_memory_size", bytes_))

    def get_max_memory_size(self) -> int:
        return int(self._v["max_memory_size"])

    def table_elements(self, elements: int) -> PoolingAllocationConfig:
        return self._set("table_elements", _count("table_elements", elements))

    def get_table_elements(self) -> int:
        return int(self._v["table_elements"])

    # Component limits (component model is out of scope; recorded only).

    def max_component_instance_size(self, size: int) -> PoolingAllocationConfig:
        return self._set("max_component_instance_size", _count("max_component_instance_size", size))

    def get_max_component_instance_size(self) -> int:
        return int(self._v["max_component_instance_size"])

    def max_core_instances_per_component(self, count: int) -> PoolingAllocationConfig:
        return self._set(
            "max_core_instances_per_component",
            _count("max_core_instances_per_component", count, 32),
        )

    def get_max_core_instances_per_component(self) -> int:
        return int(self._v["max_core_instances_per_component"])

    def max_memories_per_component(self, count: int) -> PoolingAllocationConfig:
        return self._set(
            "max_memories_per_component", _count("max_memories_per_component", count, 32)
        )

    def get_max_memories_per_component(self) -> int:
        return int(self._v["max_memories_per_component"])

    def max_tables_per_component(self, count: int) -> PoolingAllocationConfig:
        return self._set("max_tables_per_component", _count("max_tables_per_component", count, 32))

    def get_max_tables_per_component(self) -> int:
        return int(self._v["max_tables_per_component"])

    # Memory protection keys and pagemap (never available here).

    def memory_protection_keys(self, enable: MpkEnabled | str | bool) -> PoolingAllocationConfig:
        value = _coerce_enum(
            "memory_protection_keys", enable, MpkEnabled, MpkEnabled.ENABLE, MpkEnabled.DISABLE
        )
        return self._set("memory_protection_keys", value)

    def get_memory_protection_keys(self) -> MpkEnabled:
        value: MpkEnabled = self._v["memory_protection_keys"]
        return value

    def max_memory_protection_keys(self, max: int) -> PoolingAllocationConfig:
        return self._set("max_memory_protection_keys", _count("max_memory_protection_keys", max))

    def get_max_memory_protection_keys(self) -> int:
        return int(self._v["max_memory_protection_keys"])

    def pagemap_scan(self, enable: Enabled | str | bool) -> PoolingAllocationConfig:
        value = _coerce_enum("pagemap_scan", enable, Enabled, Enabled.YES, Enabled.NO)
        return self._set("pagemap_scan", value)

    def get_pagemap_scan(self) -> Enabled:
        value: Enabled = self._v["pagemap_scan"]
        return value


def estimate_core_instance_size(module: ir.Module) -> list[tuple[str, int]]:
    """A simple model of Wasmtime's ``VMContext`` layout: ``(region, bytes)`` pairs.

    Pointer-sized fields are 8 bytes. It only has to be monotonic in the
    module's index spaces so that ``max_core_instance_size`` behaves as in
    Wasmtime: bigger modules need more bytes.
    """
    imported = {"func": 0, "table": 0, "memory": 0, "global": 0}
    for imp in module.imports:
        imported[imp.kind] += 1
    n_funcs = imported["func"] + len(module.funcs)
    return [
        ("instance state management", 160),
        ("static vmctx data", 96),
        ("type ids", 4 * len(module.types)),
        ("imported functions", 24 * imported["func"]),
        ("imported tables", 16 * imported["table"]),
        ("imported memories", 24 * imported["memory"]),
        ("imported globals", 16 * imported["global"]),
        ("defined tables", 16 * len(module.tables)),
        ("defined memories", 8 * len(module.mems)),
        ("owned memories", 16 * len(module.mems)),
        ("defined globals", 16 * len(module.globals)),
        ("func refs", 32 * n_funcs),
    ]


@dataclass(slots=True)
class _MemorySlot:
    #: Resident byte count reported while the slot is free.
    resident: int = 0
    #: The LinearMemory living in the slot while it is in use.
    tenant: Any = None


@dataclass(slots=True)
class _TableSlot:
    resident: int = 0
    tenant: Any = None


class PoolingInstanceAllocator:
    """Wasmtime's ``PoolingInstanceAllocator``; create it via ``InstanceAllocationStrategy``."""

    def __init__(
        self,
        config: PoolingAllocationConfig | None = None,
        *,
        memory_reservation: int | None = None,
    ) -> None:
        cfg = (config or PoolingAllocationConfig()).copy()
        max_memory_size = cfg.get_max_memory_size()
        if memory_reservation is not None and max_memory_size > memory_reservation:
            raise WasmtimeError(
                f"maximum memory size of {max_memory_size:#x} bytes exceeds the configured "
                f"memory reservation of {memory_reservation:#x} bytes"
            )
        if cfg.get_memory_protection_keys() is MpkEnabled.ENABLE:
            raise WasmtimeError("mpk is disabled on this system")
        total_memories = cfg.get_total_memories()
        total_tables = cfg.get_total_tables()
        # Bookkeeping: a state entry per slot in each pool.
        try_alloc((total_memories + total_tables) * SLOT_SIZE, AllocKind.ENGINE)
        self._config = cfg
        self._lock = threading.Lock()
        self._live_core_instances = 0
        self._live_component_instances = 0
        self._live_memories = 0
        self._live_tables = 0
        self._memory_index = ModuleAffinityIndexAllocator(
            total_memories, cfg.get_max_unused_warm_slots()
        )
        self._table_index = SimpleIndexAllocator(total_tables)
        self._memory_slots: dict[int, _MemorySlot] = {}
        self._table_slots: dict[int, _TableSlot] = {}
        #: Slots reset but not yet returned to their index allocator.
        self._decommit_queue: list[tuple[str, int]] = []
        self._memory_keep = _round_up(cfg.get_linear_memory_keep_resident(), HOST_PAGE_SIZE)
        self._table_keep = _round_up(cfg.get_table_keep_resident(), HOST_PAGE_SIZE)
        self._max_memory_pages = max_memory_size // WASM_PAGE_SIZE
        self._memory_reservation = memory_reservation
        self._instance_size = _round_up(cfg.get_max_core_instance_size(), _INSTANCE_ALIGN)

    @property
    def config(self) -> PoolingAllocationConfig:
        """A copy of the configuration this allocator was built with."""
        return self._config.copy()

    def as_pooling(self) -> PoolingInstanceAllocator | None:
        return self

    def metrics(self) -> PoolingAllocatorMetrics:
        return PoolingAllocatorMetrics(self)

    def __repr__(self) -> str:
        return f"PoolingInstanceAllocator({self._config!r})"

    # Validation (Module creation).

    def validate_module(self, module: ir.Module) -> None:
        cause = self._memory_problem(module)
        if cause is not None:
            raise WasmtimeError(
                format_context(
                    "module memory does not fit in pooling allocator requirements", *cause
                )
            )
        cause = self._table_problem(module)
        if cause is not None:
            raise WasmtimeError(
                format_context(
                    "module table does not fit in pooling allocator requirements", *cause
                )
            )
        cause = self._instance_size_problem(module)
        if cause is not None:
            raise WasmtimeError(
                format_context(
                    "module instance size does not fit in pooling allocator requirements", *cause
                )
            )

    def _memory_problem(self, module: ir.Module) -> tuple[str, ...] | None:
        defined = len(module.mems)
        limit = self._config.get_max_memories_per_module()
        if defined > limit:
            return (
                f"defined memories count of {defined} exceeds the per-instance limit of {limit}",
            )
        num_imported = sum(1 for imp in module.imports if imp.kind == "memory")
        max_bytes = self._config.get_max_memory_size()
        for i, mt in enumerate(module.mems):
            min_bytes = mt.limits.min * WASM_PAGE_SIZE
            if min_bytes > max_bytes:
                return (
                    f"memory index {num_imported + i} is unsupported in this pooling allocator "
                    "configuration",
                    f"memory has a minimum byte size of {min_bytes} which exceeds the limit of "
                    f"{max_bytes} bytes",
                )
        return None

    def _table_problem(self, module: ir.Module) -> tuple[str, ...] | None:
        defined = len(module.tables)
        per_module = self._config.get_max_tables_per_module()
        if defined > per_module:
            return (
                f"defined tables count of {defined} exceeds the per-instance limit of {per_module}",
            )
        total = self._config.get_total_tables()
        if defined > total:
            return (f"defined tables count of {defined} exceeds the total tables limit of {total}",)
        num_imported = sum(1 for imp in module.imports if imp.kind == "table")
        limit = self._config.get_table_elements()
        for i, tt in enumerate(module.tables):
            if tt.limits.min > limit:
                return (
                    f"table index {num_imported + i} has a minimum element size of "
                    f"{tt.limits.min} which exceeds the limit of {limit}",
                )
        return None

    def _instance_size_problem(self, module: ir.Module) -> tuple[str, ...] | None:
        regions = estimate_core_instance_size(module)
        total = sum(size for _, size in regions)
        if total <= self._instance_size:
            return None
        lines = [
            f"instance allocation for this module requires {total} bytes which exceeds the "
            f"configured maximum of {self._instance_size} bytes; breakdown of allocation "
            "requirement:",
            "",
        ]
        for name, size in regions:
            if size > total // 20:
                lines.append(f" * {size / total * 100:.2f}% - {size} bytes - {name}")
        return ("\n".join(lines) + "\n",)

    # Instance counts.

    def increment_core_instance_count(self) -> None:
        limit = self._config.get_total_core_instances()
        with self._lock:
            old = self._live_core_instances
            self._live_core_instances = old + 1
            if old >= limit:
                self._live_core_instances -= 1
                raise PoolConcurrencyLimitError(limit, "core instances")

    def decrement_core_instance_count(self) -> None:
        with self._lock:
            if self._live_core_instances <= 0:
                raise ValueError("core instance count would become negative")
            self._live_core_instances -= 1

    def increment_component_instance_count(self) -> None:
        limit = self._config.get_total_component_instances()
        with self._lock:
            old = self._live_component_instances
            self._live_component_instances = old + 1
            if old >= limit:
                self._live_component_instances -= 1
                raise PoolConcurrencyLimitError(limit, "component instances")

    def decrement_component_instance_count(self) -> None:
        with self._lock:
            if self._live_component_instances <= 0:
                raise ValueError("component instance count would become negative")
            self._live_component_instances -= 1

    # Slots.

    def _take_slot(
        self, index: ModuleAffinityIndexAllocator, affinity: Hashable | None
    ) -> int | None:
        """Under the lock: a free slot, flushing pending decommits once if needed."""
        slot = index.alloc(affinity)
        if slot is None and self._decommit_queue:
            self._flush_locked()
            slot = index.alloc(affinity)
        return slot

    def _flush_locked(self) -> None:
        queue, self._decommit_queue = self._decommit_queue, []
        for kind, slot in queue:
            if kind == "memory":
                self._memory_index.free(slot)
            else:
                self._table_index.free(slot)

    def flush_decommit_queue(self) -> None:
        """Return every reset-but-pending slot to its pool now."""
        with self._lock:
            self._flush_locked()

    def _enqueue_locked(self, kind: str, slot: int) -> None:
        self._decommit_queue.append((kind, slot))
        if len(self._decommit_queue) >= max(1, self._config.get_decommit_batch_size()):
            self._flush_locked()

    def memory_max_pages(self, ty: ir.MemoryType) -> int:
        """The effective maximum of a pooled memory of type ``ty``, in pages."""
        declared = ty.limits.max if ty.limits.max is not None else 65536
        return min(declared, self._max_memory_pages)

    def table_max_elements(self, ty: ir.TableType) -> int:
        """The effective maximum of a pooled table of type ``ty``, in elements."""
        declared = ty.limits.max if ty.limits.max is not None else _U32_MAX
        return min(declared, self._config.get_table_elements())

    def allocate_memory(
        self, store: Any, ty: ir.MemoryType, module_key: Hashable, index: int
    ) -> tuple[int, Any]:
        min_bytes = ty.limits.min * WASM_PAGE_SIZE
        max_bytes = self._config.get_max_memory_size()
        if min_bytes > max_bytes:
            raise WasmtimeError(
                f"memory has a minimum byte size of {min_bytes} which exceeds the limit of "
                f"{max_bytes} bytes"
            )
        with self._lock:
            slot = self._take_slot(self._memory_index, (module_key, index))
            if slot is None:
                raise PoolConcurrencyLimitError(len(self._memory_index), "memory stripe 0")
            state = self._memory_slots.get(slot)
        try:
            memory = LinearMemory(
                store,
                ty,
                max_pages_cap=self.memory_max_pages(ty),
                reservation_cap=self._memory_reservation,
            )
        except BaseException:
            with self._lock:
                self._memory_index.free(slot)
            raise
        with self._lock:
            if state is None:
                state = self._memory_slots[slot] = _MemorySlot()
            state.tenant = memory
            state.resident = 0
            self._live_memories += 1
        return slot, memory

    def deallocate_memory(self, slot: int, memory: Any) -> None:
        with self._lock:
            state = self._memory_slots.get(slot)
            if state is None or state.tenant is not memory or not self._memory_index.is_used(slot):
                raise ValueError(f"memory slot {slot} is not allocated to this memory")
            state.tenant = None
            state.resident = self._reset_memory(memory)
            self._live_memories -= 1
            self._enqueue_locked("memory", slot)

    def _reset_memory(self, memory: Any) -> int:
        """Detach the tenant's bytes from the slot; return the bytes kept "resident".

        Every tenant gets a fresh zeroed buffer from ``LinearMemory``, so the
        slot never hands one tenant's bytes to the next; residency is
        accounting (what Wasmtime would keep mapped after its memset). The
        departing ``LinearMemory`` is emptied so that no stale reference into
        the slot can read the old contents either.
        """
        data = getattr(memory, "data", None)
        size = int(getattr(memory, "size", 0) or 0)
        resident = min(self._memory_keep, size)
        release = getattr(memory, "release", None)
        if callable(release):  # the vm's LinearMemory (mmap- or bytearray-backed)
            release()
        elif isinstance(data, bytearray):
            try:
                memory.data = bytearray()
                memory.size = 0
                memory.pages = 0
            except AttributeError:
                pass
        return resident

    def allocate_table(
        self, store: Any, ty: ir.TableType, module_key: Hashable, index: int
    ) -> tuple[int, Any]:
        with self._lock:
            slot = self._take_slot(self._table_index, None)
            if slot is None:
                raise PoolConcurrencyLimitError(len(self._table_index), "tables")
        try:
            table = TableInstance(store, ty, None, max_cap=self.table_max_elements(ty))
        except BaseException:
            with self._lock:
                self._table_index.free(slot)
            raise
        with self._lock:
            state = self._table_slots.get(slot)
            if state is None:
                state = self._table_slots[slot] = _TableSlot()
            state.tenant = table
            state.resident = 0
            self._live_tables += 1
        return slot, table

    def deallocate_table(self, slot: int, table: Any) -> None:
        with self._lock:
            state = self._table_slots.get(slot)
            if state is None or state.tenant is not table or not self._table_index.is_used(slot):
                raise ValueError(f"table slot {slot} is not allocated to this table")
            state.tenant = None
            elements = getattr(table, "elements", None)
            n = len(elements) if isinstance(elements, list) else 0
            state.resident = min(
                self._table_keep, _round_up(n * TABLE_ELEMENT_SIZE, HOST_PAGE_SIZE)
            )
            if isinstance(elements, list):
                # Drop every reference the old tenant's table held.
                elements.clear()
            self._live_tables -= 1
            self._enqueue_locked("table", slot)

    def purge_module(self, module_key: Hashable) -> None:
        """Clear the affinity of every free memory slot warm for ``module_key``."""
        with self._lock:
            keys = [
                k
                for k in self._memory_index.affine_keys()
                if isinstance(k, tuple) and len(k) == 2 and k[0] == module_key
            ]
            for key in keys:
                while True:
                    slot = self._memory_index.alloc_affine_and_clear_affinity(key)
                    if slot is None:
                        break
                    self._memory_index.free(slot)

    # Introspection (metrics and baseline checks).

    def is_empty(self) -> bool:
        """No live instance, memory or table (pending decommits are flushed first)."""
        with self._lock:
            self._flush_locked()
            return (
                self._live_core_instances == 0
                and self._live_component_instances == 0
                and self._live_memories == 0
                and self._live_tables == 0
                and self._memory_index.is_empty()
                and self._table_index.is_empty()
            )

    def slot_state(self) -> dict[str, object]:
        """Slot occupancy and bookkeeping as plain data, for diagnostics and OOM testing.

        ``*_slots_used``: slots handed out and not yet queued for decommit;
        ``decommit_queue``: the pending (kind, slot) entries; ``problems``:
        broken invariants (a tenant without a used slot, a slot queued twice or
        queued while free, inconsistent warm/cold/affinity lists).
        """
        with self._lock:
            queued = list(self._decommit_queue)
            problems = [f"memory index: {p}" for p in self._memory_index.problems()]
            problems += [f"table index: {p}" for p in self._table_index.problems()]
            if len(set(queued)) != len(queued):
                problems.append(f"a slot queued for decommit twice: {queued}")
            for kind, index, slots in (
                ("memory", self._memory_index, self._memory_slots),
                ("table", self._table_index, self._table_slots),
            ):
                pending = {slot for k, slot in queued if k == kind}
                for slot in pending:
                    if not index.is_used(slot):
                        problems.append(f"{kind} slot {slot} queued for decommit but free")
                for slot, st in slots.items():
                    if st.tenant is not None and (not index.is_used(slot) or slot in pending):
                        problems.append(f"{kind} slot {slot} has a tenant but is not in use")
                used = [s for s in index.used_slots() if s not in pending]
                for slot in used:
                    held = slots.get(slot)
                    if held is None or held.tenant is None:
                        problems.append(f"{kind} slot {slot} in use without a tenant")
            return {
                "memory_slots_used": [
                    s for s in self._memory_index.used_slots() if ("memory", s) not in queued
                ],
                "table_slots_used": [
                    s for s in self._table_index.used_slots() if ("table", s) not in queued
                ],
                "warm_memory_slots": self._memory_index.warm_slots(),
                "warm_table_slots": self._table_index.warm_slots(),
                "decommit_queue": queued,
                "problems": sorted(set(problems)),
            }

    def _unused_memory_bytes_resident(self) -> int:
        with self._lock:
            return sum(
                s.resident
                for slot, s in self._memory_slots.items()
                if not self._memory_index.is_used(slot)
            )

    def _unused_table_bytes_resident(self) -> int:
        with self._lock:
            return sum(
                s.resident
                for slot, s in self._table_slots.items()
                if not self._table_index.is_used(slot)
            )


class PoolingAllocatorMetrics:
    """Wasmtime's ``PoolingAllocatorMetrics``: a cheap live view of a pooling allocator."""

    __slots__ = ("_allocator",)

    def __init__(self, allocator: PoolingInstanceAllocator) -> None:
        self._allocator = allocator

    def core_instances(self) -> int:
        return self._allocator._live_core_instances

    def component_instances(self) -> int:
        return self._allocator._live_component_instances

    def memories(self) -> int:
        return self._allocator._live_memories

    def tables(self) -> int:
        return self._allocator._live_tables

    def stacks(self) -> int:
        return 0

    def gc_heaps(self) -> int:
        return 0

    def unused_warm_memories(self) -> int:
        return self._allocator._memory_index.unused_warm_slots()

    def unused_warm_tables(self) -> int:
        return self._allocator._table_index.unused_warm_slots()

    def unused_warm_stacks(self) -> int:
        return 0

    def unused_memory_bytes_resident(self) -> int:
        return self._allocator._unused_memory_bytes_resident()

    def unused_table_bytes_resident(self) -> int:
        return self._allocator._unused_table_bytes_resident()

    def unused_stack_bytes_resident(self) -> int | None:
        return None

    def snapshot(self) -> dict[str, int | None]:
        """Every metric by name (handy for baseline comparisons)."""
        return {
            "core_instances": self.core_instances(),
            "component_instances": self.component_instances(),
            "memories": self.memories(),
            "tables": self.tables(),
            "stacks": self.stacks(),
            "gc_heaps": self.gc_heaps(),
            "unused_warm_memories": self.unused_warm_memories(),
            "unused_warm_tables": self.unused_warm_tables(),
            "unused_warm_stacks": self.unused_warm_stacks(),
            "unused_memory_bytes_resident": self.unused_memory_bytes_resident(),
            "unused_table_bytes_resident": self.unused_table_bytes_resident(),
            "unused_stack_bytes_resident": self.unused_stack_bytes_resident(),
        }

    def __repr__(self) -> str:
        return f"PoolingAllocatorMetrics({self.snapshot()})"
