"""examples/README.md's walkthrough, run: every ``$ oomfuzz ...`` command and its pasted output.

Each ```console block holds one command (``$ ...``), the lines it printed
(``...`` marks lines left out) and ``(exit status N)``. The commands run in a
copy of ``examples/`` (so ``-o`` files land there), with ``oomfuzz`` as
``python -m oomfuzz`` from this checkout; every pasted line must be a line of
the real output, in order, and the exit status must match.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "examples" / "README.md"


@dataclass
class Step:
    command: str
    lines: list[str]
    status: int


def walkthrough() -> list[Step]:
    steps = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        lines = block.rstrip("\n").splitlines()
        assert lines[0].startswith("$ "), block
        status = re.fullmatch(r"\(exit status (\d+)\)", lines[-1])
        assert status, f"no (exit status N) line closing: {lines[0]}"
        steps.append(Step(lines[0][2:], lines[1:-1], int(status.group(1))))
    return steps


def _norm(line: str) -> str:
    return " ".join(line.split())


def test_the_walkthrough_has_every_stage() -> None:
    commands = [s.command.split()[1] for s in walkthrough()]
    assert commands == ["sweep", "replay", "minimize", "replay", "sweep"]


def test_walkthrough_commands_print_what_the_readme_says(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="200")
    env.pop("PLUGIN_HOST_BUGS", None)
    for step in walkthrough():
        argv = shlex.split(step.command)
        assert argv[0] == "oomfuzz"
        proc = subprocess.run(
            [sys.executable, "-m", "oomfuzz", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        got = [_norm(x) for x in (proc.stdout + proc.stderr).splitlines()]
        assert proc.returncode == step.status, f"{step.command}\n{proc.stdout}\n{proc.stderr}"
        pos = 0
        for want in step.lines:
            if want.strip() == "...":
                continue
            try:
                pos = got.index(_norm(want), pos) + 1
            except ValueError:
                pytest.fail(f"{step.command}: line not printed (in order): {want!r}\n{proc.stdout}")
