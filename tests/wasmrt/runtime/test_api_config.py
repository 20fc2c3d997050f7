"""``Config``: write-only knobs, validation classes/messages, consumption by Engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt


def _set(attr: str, value: Any) -> Any:
    def run(w: Any) -> Any:
        c = w.Config()
        setattr(c, attr, value)
        return "set"

    return run


BOOL_KNOBS = [
    "wasm_threads", "wasm_tail_call", "wasm_reference_types", "wasm_simd", "wasm_relaxed_simd",
    "wasm_relaxed_simd_deterministic", "wasm_bulk_memory", "wasm_multi_value", "wasm_multi_memory",
    "wasm_memory64", "wasm_exceptions", "wasm_function_references", "wasm_gc",
    "wasm_wide_arithmetic", "wasm_custom_page_sizes", "wasm_stack_switching",
    "wasm_component_model", "wasm_component_model_map", "consume_fuel", "memory_may_move",
    "memory_init_cow", "cranelift_debug_verifier", "cranelift_nan_canonicalization",
    "debug_info", "native_unwind_info", "parallel_compilation", "gc_support",
    "signals_based_traps", "macos_use_mach_ports", "shared_memory",
]  # fmt: skip


@pytest.mark.parametrize("knob", BOOL_KNOBS)
def test_bool_knobs(knob: str) -> None:
    same_outcome(_set(knob, True))
    same_outcome(_set(knob, 1))
    same_outcome(lambda w: getattr(w.Config(), knob))


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("epoch_interruption", 1),
        ("epoch_interruption", []),
        ("max_wasm_stack", "x"),
        ("max_wasm_stack", 1 << 20),
        ("memory_reservation", "x"),
        ("memory_guard_size", 1.0),
        ("memory_reservation_for_growth", 1 << 20),
        ("strategy", "cranelift"),
        ("strategy", "winch"),
        ("cranelift_opt_level", "speed_and_size"),
        ("cranelift_opt_level", "fast"),
        ("profiler", "perfmap"),
        ("profiler", "gdb"),
        ("target", "foo"),
        ("target", 1),
        ("target", "x86_64-unknown-linux-gnu"),
        ("cache", False),
        ("cache", 1),
        ("cache", True),
    ],
)
def test_other_knobs(knob: str, value: Any) -> None:
    same_outcome(_set(knob, value))


def test_cache_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    same_outcome(_set("cache", str(missing)))
    good = tmp_path / "cache.toml"
    good.write_text("[cache]\nenabled = false\n")
    c = wasmrt.Config()
    c.cache = str(good)
    bad = tmp_path / "bad.toml"
    bad.write_text("[cache\n")
    with pytest.raises(wasmrt.WasmtimeError, match="failed to parse config file"):
        wasmrt.Config().cache = str(bad)


def test_methods() -> None:
    same_outcome(lambda w: w.Config().cranelift_flag_enable(1))
    same_outcome(lambda w: w.Config().cranelift_flag_set("a", 1))
    same_outcome(lambda w: w.Config().cranelift_flag_set(1, "a"))
    same_outcome(lambda w: w.Config().cranelift_flag_set("opt_level", "speed"))


def test_engine_consumes_config() -> None:
    def run(w: Any) -> Any:
        c = w.Config()
        w.Engine(c)
        c.wasm_simd = True

    same_outcome(run)

    def again(w: Any) -> Any:
        c = w.Config()
        w.Engine(c)
        w.Engine(c)

    same_outcome(again)


def test_close_and_with() -> None:
    with wasmrt.Config() as c:
        c.consume_fuel = True
    with pytest.raises(ValueError, match="already closed"):
        c.consume_fuel = True


def test_allocation_strategy() -> None:
    c = wasmrt.Config()
    c.allocation_strategy = wasmrt.PoolingAllocationConfig()
    e = wasmrt.Engine(c)
    assert e.pooling_allocator_metrics() is not None
    assert wasmrt.Engine().pooling_allocator_metrics() is None
    c2 = wasmrt.Config()
    with pytest.raises(wasmrt.WasmtimeError):
        c2.allocation_strategy = "bogus"
    c2.allocation_strategy = "pooling"
    assert wasmrt.Engine(c2).pooling_allocator_metrics() is not None


def test_rejected_value_leaves_config_unchanged() -> None:
    c = wasmrt.Config()
    with pytest.raises(TypeError):
        c.consume_fuel = 1
    values = c.ptr()
    assert values.consume_fuel is False
    c.consume_fuel = True
    assert values.consume_fuel is True
