"""wasmrt adapter for the WASI testsuite's own runner (``wasi-testsuite/test-runner``).

Usage (the runner needs Python >= 3.12 with ``colorama`` and ``requests``)::

    cd ../shared/wasi-testsuite
    python3.12 test-runner/wasi_test_runner.py -r /path/to/repo/tools/wasi_adapter.py \\
        -t assemblyscript c rust

The runner loads this file as a module (the adapter protocol of
``wasi-testsuite/adapters/``) and runs each test with the argv that
``compute_argv`` returns: ``wasmrt run`` (``--env``, ``--dir ROOT::/``, the
module, its arguments). That argv starts this same file with ``--run``, which
puts the repository's ``src`` on ``sys.path`` and hands over to
``wasmrt.cli``, so the runner's interpreter needs nothing installed. Set
``WASMRT`` (e.g. ``WASMRT="wasmrt"``) to run another command instead.
Run without ``--run`` (the runner's "legacy adapter" probe) it prints nothing.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _command() -> list[str]:
    custom = os.environ.get("WASMRT")
    if custom:
        return shlex.split(custom)
    return [sys.executable, str(Path(__file__).resolve()), "--run"]


def get_name() -> str:
    return "wasmrt"


def get_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else "unknown"


def get_wasi_versions() -> list[str]:
    return ["wasm32-wasip1"]


def get_wasi_worlds() -> list[str]:
    return ["wasi:cli/command"]


def get_timeout_seconds() -> float:
    # A pure-Python runtime: allow far more than the runner's default 5 s.
    return float(os.environ.get("WASMRT_TEST_TIMEOUT", "300"))


def compute_argv(
    test_path: str,
    args_env_root: tuple[list[str], dict[str, str], str | None],
    proposals: list[str],
    wasi_world: str,
    wasi_version: str,
) -> list[str]:
    args, env, root = args_env_root
    argv = [*_command(), "run"]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    if root:
        argv += ["--dir", f"{root}::/"]
    argv.append(test_path)
    argv += args
    return argv


def _run(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO / "src"))
    from wasmrt.cli import main  # noqa: PLC0415 - only once src is on the path

    return main(argv)


if __name__ == "__main__" and sys.argv[1:2] == ["--run"]:
    raise SystemExit(_run(sys.argv[2:]))
