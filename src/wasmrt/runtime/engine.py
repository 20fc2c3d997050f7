"""``Engine``: the compilation and configuration context shared by stores.

Invariants:
- An engine owns the ``ConfigValues`` it consumed from its ``Config`` and
  never changes them; every store and module created from it sees the same
  settings.
- It owns the instance allocator built once from ``allocation_strategy``
  (on-demand unless configured; any form ``InstanceAllocationStrategy.coerce``
  accepts), with the explicit ``memory_reservation`` (if any) as the cap on
  every memory it creates, and the global epoch counter that
  ``increment_epoch`` advances and stores compare their deadlines with.
- Engine-level validation (``max_wasm_stack`` of zero, a pooling
  ``max_memory_size`` above an explicit ``memory_reservation``) raises
  ``WasmtimeError`` from the constructor, before anything is kept.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import WasmtimeError
from wasmrt.runtime._managed import Managed
from wasmrt.runtime.config import Config, ConfigValues
from wasmrt.vm.allocator import InstanceAllocationStrategy

__all__ = ["Engine", "EngineCore"]

_ENGINE_IDS = itertools.count(1)


class EngineCore:
    """The engine state the vm reads: ``config``, ``allocator`` and ``epoch``."""

    __slots__ = ("_lock", "allocator", "config", "epoch", "id")

    def __init__(self, config: ConfigValues, allocator: Any) -> None:
        self.config = config
        self.allocator = allocator
        self.epoch = 0
        self.id = next(_ENGINE_IDS)
        self._lock = threading.Lock()

    def increment_epoch(self) -> None:
        with self._lock:
            self.epoch += 1

    @property
    def current_epoch(self) -> int:
        return self.epoch


def _build_allocator(values: ConfigValues) -> Any:
    strategy = InstanceAllocationStrategy.coerce(values.allocation_strategy)
    reservation = values.memory_reservation if "memory_reservation" in values.explicit else None
    return strategy.build_allocator(memory_reservation=reservation)


class Engine(Managed[EngineCore]):
    """Shared configuration for stores and modules: ``Engine(config=None)``."""

    def __init__(self, config: Config | None = None) -> None:
        if config is None:
            values = ConfigValues()
        elif not isinstance(config, Config):
            raise TypeError("expected Config")
        else:
            values = config.ptr()
        if values.max_wasm_stack == 0:
            raise WasmtimeError("max_wasm_stack size cannot be zero")
        try_alloc(512, AllocKind.ENGINE)
        allocator = _build_allocator(values)
        if config is not None:
            config._consume()
        self._set_ptr(EngineCore(values, allocator))

    @property
    def _core(self) -> EngineCore:
        return self.ptr()

    def increment_epoch(self) -> None:
        """Advance the engine's epoch; stores whose deadline is reached interrupt wasm."""
        self.ptr().increment_epoch()

    def is_pulley(self) -> bool:
        """wasmrt never uses Pulley (or any native backend)."""
        self.ptr()
        return False

    def pooling_allocator_metrics(self) -> Any:
        """wasmrt addition: the pooling allocator's metrics, or ``None`` when on-demand."""
        pooling = self.ptr().allocator.as_pooling()
        if pooling is None:
            return None
        return pooling.metrics()
