"""``Engine``: construction rules, epochs, pulley, pooling metrics, lifecycle."""

from __future__ import annotations

import pytest
from wasmrt_api_support import same_outcome

import wasmrt
from wasmrt.alloc import install_hook, refusing_after


def test_engine_arguments() -> None:
    same_outcome(lambda w: w.Engine(3))
    same_outcome(lambda w: w.Engine().is_pulley())
    same_outcome(lambda w: w.Engine(w.Config()).increment_epoch())


def test_epoch_counter() -> None:
    e = wasmrt.Engine()
    before = e.ptr().epoch
    e.increment_epoch()
    e.increment_epoch()
    assert e.ptr().epoch == before + 2


def test_zero_stack_is_rejected() -> None:
    c = wasmrt.Config()
    c.max_wasm_stack = 0
    with pytest.raises(wasmrt.WasmtimeError, match="max_wasm_stack size cannot be zero"):
        wasmrt.Engine(c)


def test_pooling_reservation_check() -> None:
    pool = wasmrt.PoolingAllocationConfig()
    pool.max_memory_size(1 << 20)
    c = wasmrt.Config()
    c.memory_reservation = 1 << 16
    c.allocation_strategy = pool
    with pytest.raises(wasmrt.WasmtimeError):
        wasmrt.Engine(c)


def test_closed_engine() -> None:
    e = wasmrt.Engine()
    e.close()
    with pytest.raises(ValueError, match="already closed"):
        e.increment_epoch()
    with pytest.raises(ValueError, match="already closed"):
        wasmrt.Store(e)


def test_engine_creation_oom() -> None:
    with install_hook(refusing_after(0)), pytest.raises(wasmrt.OutOfMemory):
        wasmrt.Engine()
    assert wasmrt.Engine().is_pulley() is False
