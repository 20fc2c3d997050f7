"""The official WASI preview 1 testsuite (``../shared/wasi-testsuite``), judged by its specification.

Every ``*.wasm`` of every suite directory (``c``, ``rust``, ``assemblyscript``)
is one test: its ``NAME.json`` (legacy or operation-based; defaults when
absent) gives the arguments, environment and the directory to preopen as
``/``; the program runs in wasmrt with exactly that environment, its own
copy of the fixture directory (``.cleanup`` files removed first), and is
judged on the exit code and the stdout/stderr payloads
(``doc/specification.md``). ``WASI_TESTSUITE_DIR`` overrides the location;
without the suite every test skips saying where it looked.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

import wasmrt

ROOT = Path(__file__).resolve().parents[3]
SUITE = Path(os.environ.get("WASI_TESTSUITE_DIR", ROOT.parent / "shared" / "wasi-testsuite"))
SUITE_DIRS = ("assemblyscript", "c", "rust")


def _cases() -> list[Any]:
    if not SUITE.is_dir():
        return [
            pytest.param(
                None,
                marks=pytest.mark.skip(
                    reason=f"WASI testsuite not found at {SUITE} (set WASI_TESTSUITE_DIR)"
                ),
                id="wasi-testsuite-absent",
            )
        ]
    out = []
    for name in SUITE_DIRS:
        for wasm in sorted((SUITE / name).glob("*.wasm")):
            out.append(pytest.param(wasm, id=f"{name}/{wasm.stem}"))
    return out


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's operations; a legacy spec becomes run / read stdout / read stderr / wait."""
    if "operations" in spec:
        return list(spec["operations"])
    ops: list[dict[str, Any]] = [
        {
            "type": "run",
            "args": spec.get("args", []),
            "env": spec.get("env", {}),
            "root": spec.get("root"),
        }
    ]
    if "stdout" in spec:
        ops.append({"type": "read", "id": "stdout", "payload": spec["stdout"]})
    if "stderr" in spec:
        ops.append({"type": "read", "id": "stderr", "payload": spec["stderr"]})
    ops.append({"type": "wait", "exit_code": spec.get("exit_code", 0)})
    return ops


def _copy_fixture(src: Path, dst: Path) -> None:
    """A writable copy of ``src`` without ``*.cleanup`` artifacts (symlinks kept as links)."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("*.cleanup"))
    for path in [dst, *dst.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR | stat.S_IRUSR)


def run_program(
    wasm: Path, args: list[str], env: dict[str, str], root: Path | None, out_dir: Path
) -> tuple[int, str, str]:
    """Run ``wasm`` like ``wasmtime run``; (exit code, stdout, stderr)."""
    engine = wasmrt.Engine()
    module = wasmrt.Module.from_file(engine, str(wasm))
    linker = wasmrt.Linker(engine)
    linker.define_wasi()
    config = wasmrt.WasiConfig()
    config.argv = [wasm.name, *args]
    config.env = list(env.items())
    if root is not None:
        config.preopen_dir(str(root), "/")
    stdout, stderr = out_dir / "stdout", out_dir / "stderr"
    config.stdout_file = str(stdout)
    config.stderr_file = str(stderr)
    with wasmrt.Store(engine) as store:
        store.set_wasi(config)
        try:
            instance = linker.instantiate(store, module)
            start = instance.exports(store)["_start"]
            assert isinstance(start, wasmrt.Func)
            start(store)
            code = 0
        except wasmrt.ExitTrap as e:
            code = e.code
        except (wasmrt.Trap, wasmrt.WasmtimeError) as e:
            code = 134
            with stderr.open("a") as f:
                f.write(f"\nwasmrt: {e}\n")
    return code, stdout.read_text(errors="replace"), stderr.read_text(errors="replace")


@pytest.mark.parametrize("wasm", _cases())
def test_wasi_testsuite(wasm: Path, tmp_path: Path) -> None:
    spec_path = wasm.with_suffix(".json")
    spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
    result: tuple[int, str, str] | None = None
    read_pos = {"stdout": 0, "stderr": 0}
    for n, op in enumerate(_operations(spec)):
        kind = op["type"]
        if kind == "run":
            root = None
            if op.get("root"):
                root = tmp_path / f"root{n}"
                _copy_fixture(wasm.parent / op["root"], root)
            out_dir = tmp_path / f"out{n}"
            out_dir.mkdir()
            result = run_program(wasm, op.get("args", []), op.get("env", {}), root, out_dir)
            read_pos = {"stdout": 0, "stderr": 0}
        elif kind == "read":
            assert result is not None, "read before run"
            stream = op.get("id", "stdout")
            text = result[1] if stream == "stdout" else result[2]
            payload = op.get("payload", "")
            got = text[read_pos[stream] : read_pos[stream] + len(payload)]
            assert got == payload, f"{stream}: expected {payload!r}, got {text!r}"
            read_pos[stream] += len(payload)
        elif kind == "wait":
            assert result is not None, "wait before run"
            code, out, err = result
            expected = op.get("exit_code", 0)
            assert code == expected, f"exit code {code}, expected {expected}\n{out}\n{err}"
        else:
            pytest.skip(f"operation {kind!r} needs a WASI proposal wasmrt does not implement")
