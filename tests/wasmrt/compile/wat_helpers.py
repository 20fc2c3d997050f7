"""Helpers for the compiler/vm unit tests: WAT -> compiled module -> instance, via the vm core."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace
from typing import Any

from support.testsuite import wasm_tools
from wasmrt.binary import decode_module
from wasmrt.compile import CompiledModule, compile_module
from wasmrt.validate import validate_module
from wasmrt.vm import ModuleInstance, StoreCore, instantiate


def wat_to_compiled(wat: str) -> CompiledModule:
    out = subprocess.run(
        [wasm_tools(), "parse", "-"], input=wat.encode(), capture_output=True, check=True
    )
    m = decode_module(out.stdout)
    validate_module(m)
    return compile_module(m)


def engine(
    *,
    fuel: bool = False,
    epoch: bool = False,
    max_wasm_stack: int = 512 * 1024,
    allocator: Any = None,
) -> Any:
    cfg = SimpleNamespace(
        consume_fuel=fuel, epoch_interruption=epoch, max_wasm_stack=max_wasm_stack
    )
    return SimpleNamespace(config=cfg, allocator=allocator, epoch=0)


def instance(wat: str, **kw: Any) -> tuple[StoreCore, ModuleInstance]:
    store = StoreCore(engine(**kw))
    return store, instantiate(store, wat_to_compiled(wat), [])
