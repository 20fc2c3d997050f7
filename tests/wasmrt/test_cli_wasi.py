"""``wasmrt run`` of a WASI program, as a subprocess: argv, ``--env``, ``--dir``, exit code, stdio.

The program (WAT) prints its arguments and environment one per line, then
the contents of ``in.txt`` from its first preopened directory (fd 3) — or
``no preopen`` when fd 3 is not one — and exits with its argument count
through ``proc_exit``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

PROGRAM = """
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "in.txt")
  (data (i32.const 120) "no preopen\\n")
  (func $lines (param $p i32) (param $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (if (i32.eqz (i32.load8_u (local.get $p)))
        (then (i32.store8 (local.get $p) (i32.const 10))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next))))
  (func $print (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $argc i32)
    (drop (call $args_sizes (i32.const 16) (i32.const 20)))
    (local.set $argc (i32.load (i32.const 16)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (call $lines (i32.const 2048) (i32.load (i32.const 20)))
    (call $print (i32.const 2048) (i32.load (i32.const 20)))
    (drop (call $env_sizes (i32.const 16) (i32.const 20)))
    (drop (call $env_get (i32.const 1024) (i32.const 2048)))
    (call $lines (i32.const 2048) (i32.load (i32.const 20)))
    (call $print (i32.const 2048) (i32.load (i32.const 20)))
    (if (call $prestat (i32.const 3) (i32.const 16))
      (then (call $print (i32.const 120) (i32.const 11)))
      (else
        (if (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 6) (i32.const 0)
              (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 24))
          (then (call $exit (i32.const 100))))
        (i32.store (i32.const 32) (i32.const 4096))
        (i32.store (i32.const 36) (i32.const 256))
        (drop (call $read (i32.load (i32.const 24)) (i32.const 32) (i32.const 1) (i32.const 40)))
        (call $print (i32.const 4096) (i32.load (i32.const 40)))))
    (call $exit (local.get $argc))))
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(SRC)
    env["INHERITED"] = "from-parent"
    return subprocess.run(
        [sys.executable, "-m", "wasmrt.cli", "run", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "prog.wat"
    path.write_text(PROGRAM)
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("file contents\n")
    return path


def test_args_env_dir_and_exit_code(program: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "--env",
        "A=1",
        "--env",
        "INHERITED",
        "--dir",
        f"{tmp_path / 'data'}::/data",
        str(program),
        "x",
        "--y",
        cwd=tmp_path,
    )
    assert proc.stdout == f"{program}\nx\n--y\nA=1\nINHERITED=from-parent\nfile contents\n"
    assert proc.stderr == ""
    assert proc.returncode == 3


def test_dir_without_guest_name_and_no_env(program: Path, tmp_path: Path) -> None:
    proc = run_cli("--dir", "data", str(program), cwd=tmp_path)
    assert proc.stdout == f"{program}\nfile contents\n"
    assert proc.returncode == 1


def test_no_preopen_and_no_environment_leak(program: Path, tmp_path: Path) -> None:
    proc = run_cli(str(program), "only", cwd=tmp_path)
    assert proc.stdout == f"{program}\nonly\nno preopen\n"
    assert proc.returncode == 2


def test_missing_dir_is_an_error(program: Path, tmp_path: Path) -> None:
    proc = run_cli("--dir", str(tmp_path / "nowhere"), str(program), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("wasmrt: error:")
    assert "Traceback" not in proc.stderr


SUITE = Path(os.environ.get("WASI_TESTSUITE_DIR", SRC.parents[1] / "shared" / "wasi-testsuite"))
needs_suite = pytest.mark.skipif(
    not SUITE.is_dir(), reason=f"WASI testsuite not found at {SUITE} (set WASI_TESTSUITE_DIR)"
)


@needs_suite
def test_testsuite_programs_through_the_cli(tmp_path: Path) -> None:
    """Compiled programs: stdout, exit codes, arguments and a preopened fixture copy."""
    a = SUITE / "assemblyscript"
    proc = run_cli(str(a / "fd_write-to-stdout.wasm"), cwd=tmp_path)
    assert (proc.stdout, proc.returncode) == ("hello", 0)
    proc = run_cli(str(a / "proc_exit-failure.wasm"), cwd=tmp_path)
    assert proc.returncode == 33
    proc = run_cli(
        "--env", "a=b", "--env", "b=c", "--env", "c=d",
        str(a / "environ_sizes_get-multiple-variables.wasm"),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    args = ["first", 'the "second" arg', "3"]
    proc = run_cli(str(a / "args_get-multiple-arguments.wasm"), *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "fs"
    shutil.copytree(SUITE / "c" / "fs-tests.dir", root, symlinks=True)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o600)
    proc = run_cli(
        "--dir", f"{root}::/", str(SUITE / "c" / "pwrite-with-append.wasm"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
