"""``Config``: write-only engine settings, consumed by ``Engine(config)``.

Invariants:
- Every knob is a write-only property: reading it raises ``AttributeError``;
  a bool knob rejects non-bools with ``TypeError('expected a bool')``
  (``epoch_interruption`` takes any truthy value, as in wasmtime-py); an
  unknown string choice raises ``WasmtimeError``. A rejected value leaves the
  config unchanged.
- The settings live in one ``ConfigValues`` record; ``Engine(config)`` takes
  it with ``_consume()``, after which the config raises
  ``ValueError('already closed')`` on any use.
- Knobs Wasmtime uses only for native code generation (cranelift, profiler,
  unwind info, signals...) are accepted and recorded but change nothing in
  this pure-Python runtime.
- wasmrt additions under the Rust names: ``allocation_strategy`` (on-demand
  or a ``PoolingAllocationConfig``), and ``memory_reservation`` which the vm
  uses as the cap on a linear memory's reserved bytes.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import WasmtimeError
from wasmrt.runtime._managed import Managed
from wasmrt.vm.allocator import InstanceAllocationStrategy

__all__ = ["Config", "ConfigValues"]

#: Rust's default ``max_wasm_stack`` (512 KiB); wasmtime-py's docstring says 2 MB.
DEFAULT_MAX_WASM_STACK = 512 * 1024
#: Rust's default ``async_stack_size``.
DEFAULT_ASYNC_STACK_SIZE = 2 * 1024 * 1024
#: Rust's 64-bit default ``memory_reservation`` (4 GiB).
DEFAULT_MEMORY_RESERVATION = 4 << 30
DEFAULT_MEMORY_GUARD_SIZE = 32 << 20
DEFAULT_MEMORY_RESERVATION_FOR_GROWTH = 2 << 30

_BOOL_KNOBS: dict[str, bool] = {
    # proposals (Wasmtime's defaults)
    "wasm_threads": True,
    "wasm_tail_call": True,
    "wasm_reference_types": True,
    "wasm_simd": True,
    "wasm_relaxed_simd": True,
    "wasm_relaxed_simd_deterministic": False,
    "wasm_bulk_memory": True,
    "wasm_multi_value": True,
    "wasm_multi_memory": True,
    "wasm_memory64": True,
    "wasm_exceptions": False,
    "wasm_function_references": False,
    "wasm_gc": False,
    "wasm_wide_arithmetic": False,
    "wasm_custom_page_sizes": False,
    "wasm_stack_switching": False,
    "wasm_component_model": True,
    "wasm_component_model_map": False,
    "wasm_component_model_implements": False,
    # execution and memory
    "consume_fuel": False,
    "memory_may_move": True,
    "memory_init_cow": True,
    # code generation (recorded only)
    "cranelift_debug_verifier": False,
    "cranelift_nan_canonicalization": False,
    "debug_info": False,
    "native_unwind_info": True,
    "parallel_compilation": True,
    "gc_support": True,
    "signals_based_traps": True,
    "macos_use_mach_ports": True,
    "shared_memory": False,
}

_INT_KNOBS: dict[str, int] = {
    "max_wasm_stack": DEFAULT_MAX_WASM_STACK,
    "memory_reservation": DEFAULT_MEMORY_RESERVATION,
    "memory_guard_size": DEFAULT_MEMORY_GUARD_SIZE,
    "memory_reservation_for_growth": DEFAULT_MEMORY_RESERVATION_FOR_GROWTH,
}

_CHOICES: dict[str, tuple[str, tuple[str, ...], str]] = {
    # knob: (default, accepted values, error prefix)
    "strategy": ("auto", ("auto", "cranelift"), "unknown strategy: "),
    "cranelift_opt_level": ("speed", ("none", "speed", "speed_and_size"), "unknown opt level: "),
    "profiler": ("none", ("none", "jitdump", "vtune", "perfmap"), "unknown profiler: "),
}

#: Architectures a target triple may name (target-lexicon's spelling).
_KNOWN_ARCHS = frozenset(
    {
        "x86_64",
        "i686",
        "i586",
        "i386",
        "aarch64",
        "arm64",
        "arm",
        "armv7",
        "riscv64",
        "riscv64gc",
        "riscv32",
        "s390x",
        "wasm32",
        "wasm64",
        "pulley32",
        "pulley64",
        "pulley32be",
        "pulley64be",
        "powerpc64",
        "powerpc64le",
        "mips64",
    }
)


@dataclass(slots=True)
class ConfigValues:
    """Everything a ``Config`` records; owned by the ``Engine`` once consumed."""

    flags: dict[str, bool] = field(default_factory=lambda: dict(_BOOL_KNOBS))
    ints: dict[str, int] = field(default_factory=lambda: dict(_INT_KNOBS))
    choices: dict[str, str] = field(default_factory=lambda: {k: v[0] for k, v in _CHOICES.items()})
    epoch_interruption: bool = False
    target: str | None = None
    cache: bool | str = False
    cranelift_flags: dict[str, str] = field(default_factory=dict)
    #: ``None`` (on-demand), or an ``InstanceAllocationStrategy``.
    allocation_strategy: Any = None
    #: Names of the knobs the embedder set explicitly.
    explicit: set[str] = field(default_factory=set)

    # Shorthands the vm and the Store read.
    @property
    def consume_fuel(self) -> bool:
        return self.flags["consume_fuel"]

    @property
    def max_wasm_stack(self) -> int:
        return self.ints["max_wasm_stack"]

    @property
    def memory_reservation(self) -> int:
        return self.ints["memory_reservation"]

    @property
    def memory_guard_size(self) -> int:
        return self.ints["memory_guard_size"]

    @property
    def memory_reservation_for_growth(self) -> int:
        return self.ints["memory_reservation_for_growth"]

    @property
    def memory_may_move(self) -> bool:
        return self.flags["memory_may_move"]


def _write_only(fset: Callable[[Config, Any], None]) -> property:
    prop = property(fset=fset)
    prop.__doc__ = (fset.__doc__ or "") + "\n\nThis knob can only be set, not read."
    return prop


def _bool_knob(name: str) -> property:
    def fset(self: Config, enable: bool) -> None:
        if not isinstance(enable, bool):
            raise TypeError("expected an bool" if name == "consume_fuel" else "expected a bool")
        self.ptr().flags[name] = enable

    fset.__doc__ = f"Enable or disable ``{name}``."
    fset.__name__ = name
    return _write_only(fset)


def _int_knob(name: str) -> property:
    def fset(self: Config, size: int) -> None:
        if not isinstance(size, int):
            raise TypeError("expected an int")
        values = self.ptr()
        values.ints[name] = size
        values.explicit.add(name)

    fset.__doc__ = f"Set ``{name}`` (bytes)."
    fset.__name__ = name
    return _write_only(fset)


def _choice_knob(name: str) -> property:
    _, accepted, prefix = _CHOICES[name]

    def fset(self: Config, value: str) -> None:
        values = self.ptr()
        if value not in accepted:
            raise WasmtimeError(prefix + str(value))
        values.choices[name] = value

    fset.__doc__ = f"Choose ``{name}``: one of {', '.join(accepted)}."
    fset.__name__ = name
    return _write_only(fset)


def _load_cache_config(path: str) -> None:
    """Check a cache TOML file the way Wasmtime does (readable, parseable)."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        reason = e.strerror or str(e)
        raise WasmtimeError(
            f"failed to read config file: {path}\n\nCaused by:\n    {reason} (os error {e.errno})\n"
        ) from None
    try:
        table = tomllib.loads(text.decode("utf-8")).get("cache", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise WasmtimeError(
            f"failed to parse config file: {path}\n\nCaused by:\n    {e}\n"
        ) from None
    directory = table.get("directory") if isinstance(table, dict) else None
    if isinstance(directory, str) and not os.path.isabs(directory):
        raise WasmtimeError(f"Cache directory path has to be absolute, path: {directory}")


class Config(Managed[ConfigValues]):
    """Global configuration used to create an ``Engine``."""

    def __init__(self) -> None:
        try_alloc(256, AllocKind.ENGINE)
        self._set_ptr(ConfigValues())

    # Proposal flags, execution and code generation bools.
    wasm_threads = _bool_knob("wasm_threads")
    wasm_tail_call = _bool_knob("wasm_tail_call")
    wasm_reference_types = _bool_knob("wasm_reference_types")
    wasm_simd = _bool_knob("wasm_simd")
    wasm_relaxed_simd = _bool_knob("wasm_relaxed_simd")
    wasm_relaxed_simd_deterministic = _bool_knob("wasm_relaxed_simd_deterministic")
    wasm_bulk_memory = _bool_knob("wasm_bulk_memory")
    wasm_multi_value = _bool_knob("wasm_multi_value")
    wasm_multi_memory = _bool_knob("wasm_multi_memory")
    wasm_memory64 = _bool_knob("wasm_memory64")
    wasm_exceptions = _bool_knob("wasm_exceptions")
    wasm_function_references = _bool_knob("wasm_function_references")
    wasm_gc = _bool_knob("wasm_gc")
    wasm_wide_arithmetic = _bool_knob("wasm_wide_arithmetic")
    wasm_custom_page_sizes = _bool_knob("wasm_custom_page_sizes")
    wasm_stack_switching = _bool_knob("wasm_stack_switching")
    wasm_component_model = _bool_knob("wasm_component_model")
    wasm_component_model_map = _bool_knob("wasm_component_model_map")
    wasm_component_model_implements = _bool_knob("wasm_component_model_implements")
    consume_fuel = _bool_knob("consume_fuel")
    memory_may_move = _bool_knob("memory_may_move")
    memory_init_cow = _bool_knob("memory_init_cow")
    cranelift_debug_verifier = _bool_knob("cranelift_debug_verifier")
    cranelift_nan_canonicalization = _bool_knob("cranelift_nan_canonicalization")
    debug_info = _bool_knob("debug_info")
    native_unwind_info = _bool_knob("native_unwind_info")
    parallel_compilation = _bool_knob("parallel_compilation")
    gc_support = _bool_knob("gc_support")
    signals_based_traps = _bool_knob("signals_based_traps")
    macos_use_mach_ports = _bool_knob("macos_use_mach_ports")
    shared_memory = _bool_knob("shared_memory")

    # Sizes in bytes.
    max_wasm_stack = _int_knob("max_wasm_stack")
    memory_reservation = _int_knob("memory_reservation")
    memory_guard_size = _int_knob("memory_guard_size")
    memory_reservation_for_growth = _int_knob("memory_reservation_for_growth")

    # String choices.
    strategy = _choice_knob("strategy")
    cranelift_opt_level = _choice_knob("cranelift_opt_level")
    profiler = _choice_knob("profiler")

    def _set_epoch_interruption(self, enabled: bool) -> None:
        """Enable epoch-based interruption (any truthy value enables it)."""
        self.ptr().epoch_interruption = bool(enabled)

    epoch_interruption = _write_only(_set_epoch_interruption)

    def _set_target(self, triple: str) -> None:
        """Set the target triple; an unknown architecture raises ``WasmtimeError``."""
        if not isinstance(triple, str):
            raise TypeError("expected a str")
        values = self.ptr()
        arch = triple.split("-", 1)[0]
        if arch not in _KNOWN_ARCHS:
            raise WasmtimeError(f"Unrecognized architecture: {arch}")
        values.target = triple

    target = _write_only(_set_target)

    def _set_cache(self, enabled: bool | str) -> None:
        """``True`` for the default cache, or the path of a cache TOML file."""
        if isinstance(enabled, bool):
            if not enabled:
                raise WasmtimeError("caching cannot be explicitly disabled")
            self.ptr().cache = True
        elif isinstance(enabled, str):
            values = self.ptr()
            _load_cache_config(os.fspath(enabled))
            values.cache = enabled
        else:
            raise TypeError("expected string or bool")

    cache = _write_only(_set_cache)

    def _set_allocation_strategy(self, strategy: Any) -> None:
        """wasmrt addition (Rust's ``Config::allocation_strategy``).

        Accepts an ``InstanceAllocationStrategy``, a ``PoolingAllocationConfig``
        (meaning pooling with it), ``"on-demand"``/``"pooling"`` or ``None``.
        """
        values = self.ptr()
        if strategy is None:
            values.allocation_strategy = None
            return
        values.allocation_strategy = InstanceAllocationStrategy.coerce(strategy)

    allocation_strategy = _write_only(_set_allocation_strategy)

    def cranelift_flag_enable(self, flag: str) -> None:
        if not isinstance(flag, str):
            raise TypeError("expected a str")
        self.ptr().cranelift_flags[flag] = "true"

    def cranelift_flag_set(self, key: str, value: str) -> None:
        if not isinstance(key, str):
            raise TypeError("expected a str for key")
        if not isinstance(value, str):
            raise TypeError("expected a str for value")
        self.ptr().cranelift_flags[key] = value
