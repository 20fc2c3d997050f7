"""wasmtime-py's WASI behaviour (its ``test_wasi.py``, ``test_define_wasi``, ``test_wasi_exit``).

Written against ``import wasmrt as wasmtime`` so each check reads as the
wasmtime-py test it mirrors: configuration setters and their errors, a
preview 1 import resolved by ``Linker.define_wasi``, custom stdout/stderr
callbacks fed by a start function, and ``proc_exit`` surfacing as
``ExitTrap`` with its code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import wasmrt as wasmtime

PRINT_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $print
    (i32.store (i32.const 300) (i32.const 100))
    (i32.store (i32.const 304) (i32.const 14))
    (call $write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 400))
    if unreachable end
    (i32.store (i32.const 300) (i32.const 200))
    (i32.store (i32.const 304) (i32.const 14))
    (call $write (i32.const 2) (i32.const 300) (i32.const 1) (i32.const 400))
    if unreachable end)
  (start $print)
  (data (i32.const 100) "Hello, stdout!")
  (data (i32.const 200) "Hello, stderr!"))
"""

EXIT_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "exit") (param i32)
    local.get 0
    call $exit))
"""


def test_config_setters(tmp_path: Path) -> None:
    config = wasmtime.WasiConfig()
    config.argv = ["a", "b"]
    config.inherit_argv()
    config.env = [["a", "b"]]
    config.inherit_env()
    f = tmp_path / "file"
    f.write_bytes(b"")
    config.stdin_file = str(f)
    config.stdin_file = f
    config.inherit_stdin()
    config.stdout_file = str(f)
    config.stdout_file = f
    config.inherit_stdout()
    config.stderr_file = str(f)
    config.stderr_file = f
    config.inherit_stderr()
    with pytest.raises(wasmtime.WasmtimeError):
        config.stdin_file = str(tmp_path / "somewhere-over-the-rainbow")
    with pytest.raises(wasmtime.WasmtimeError):
        config.stdout_file = str(tmp_path / "some-directory" / "without-a-rainbow")
    with pytest.raises(wasmtime.WasmtimeError):
        config.stderr_file = str(tmp_path / "some-directory" / "without-a-rainbow")
    config.preopen_dir(
        str(tmp_path), "other", wasmtime.DirPerms.READ_WRITE, wasmtime.FilePerms.READ_WRITE
    )
    config.preopen_dir(str(tmp_path), "other2")


def test_preopen_nonexistent_dir(tmp_path: Path) -> None:
    config = wasmtime.WasiConfig()
    with pytest.raises(wasmtime.WasmtimeError):
        config.preopen_dir(
            str(tmp_path / "nowhere"),
            "/",
            wasmtime.DirPerms.READ_ONLY,
            wasmtime.FilePerms.READ_ONLY,
        )


def test_define_wasi() -> None:
    linker = wasmtime.Linker(wasmtime.Engine())
    linker.define_wasi()


def test_preview1_import_resolves() -> None:
    linker = wasmtime.Linker(wasmtime.Engine())
    linker.define_wasi()
    module = wasmtime.Module(
        linker.engine,
        """(module (import "wasi_snapshot_preview1" "random_get"
                     (func (param i32 i32) (result i32))))""",
    )
    store = wasmtime.Store(linker.engine)
    store.set_wasi(wasmtime.WasiConfig())
    linker.instantiate(store, module)


def test_custom_print_from_start_function() -> None:
    linker = wasmtime.Linker(wasmtime.Engine())
    linker.define_wasi()
    out: list[bytes] = []
    err: list[bytes] = []
    module = wasmtime.Module(linker.engine, PRINT_WAT)
    wasi = wasmtime.WasiConfig()
    wasi.stdout_custom = out.append
    wasi.stderr_custom = err.append
    store = wasmtime.Store(linker.engine)
    store.set_wasi(wasi)
    linker.instantiate(store, module)
    assert b"".join(out) == b"Hello, stdout!"
    assert b"".join(err) == b"Hello, stderr!"


def test_wasi_exit_is_exit_trap() -> None:
    linker = wasmtime.Linker(wasmtime.Engine())
    linker.define_wasi()
    module = wasmtime.Module(linker.engine, EXIT_WAT)
    store = wasmtime.Store(linker.engine)
    store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, module)
    exit_ = instance.exports(store)["exit"]
    assert isinstance(exit_, wasmtime.Func)
    with pytest.raises(wasmtime.ExitTrap) as exn:
        exit_(store, 0)
    assert exn.value.code == 0
    assert "Exited with i32 exit status 0" in str(exn.value)
    with pytest.raises(wasmtime.ExitTrap) as exn:
        exit_(store, 1)
    assert exn.value.code == 1


def test_wasi_call_without_set_wasi_is_an_error() -> None:
    linker = wasmtime.Linker(wasmtime.Engine())
    linker.define_wasi()
    store = wasmtime.Store(linker.engine)
    instance = linker.instantiate(store, wasmtime.Module(linker.engine, EXIT_WAT))
    with pytest.raises(wasmtime.WasmtimeError):
        instance.exports(store)["exit"](store, 0)
