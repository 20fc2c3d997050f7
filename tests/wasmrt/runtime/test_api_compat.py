"""A program written for wasmtime-py runs unchanged with ``import wasmrt as wasmtime``."""

from __future__ import annotations

from typing import Any


def program(wasmtime: Any) -> Any:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(
        engine,
        """
        (module
          (import "env" "log" (func $log (param i32 i32)))
          (memory (export "memory") 1)
          (func (export "greet") (param $ptr i32) (param $len i32) (result i32)
            local.get $ptr
            local.get $len
            call $log
            local.get $len
            i32.const -1
            i32.add))
        """,
    )
    logged: list[bytes] = []
    linker = wasmtime.Linker(engine)

    def log(caller: Any, ptr: int, length: int) -> None:
        mem = caller["memory"]
        logged.append(bytes(mem.read(caller, ptr, ptr + length)))

    linker.define_func(
        "env",
        "log",
        wasmtime.FuncType([wasmtime.ValType.i32(), wasmtime.ValType.i32()], []),
        log,
        access_caller=True,
    )
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    memory = exports["memory"]
    written = memory.write(store, b"hello, wasm", 16)
    result = exports["greet"](store, 16, written)
    return (result, logged, bytes(memory.read(store, 16, 21)), memory.size(store))


def test_same_program_runs_on_both() -> None:
    import wasmtime

    import wasmrt

    assert program(wasmrt) == program(wasmtime) == (10, [b"hello, wasm"], b"hello", 1)
