"""Two real sweep reports of one seeded bug: before and after fixing it.

The bug is the example plugin host's (``examples/plugin_host/buggy_host.py``:
``load`` registers a plugin before instantiating it, so an OOM in
instantiation leaves a dead plugin registered, ``post_oom_failure``). The
example is copied to a directory of its own, swept with ``oomfuzz sweep``
from there (scenario paths relative, as a user types them), then the two
lines are swapped (the fix) and it is swept again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin_host"
SCENARIO = "scenario_buggy_host.py"

BUG = """\
        self.plugins[name] = plugin  # the bug: registered before it can fail
        plugin.instance = linker.instantiate(store, module)
"""
FIX = """\
        plugin.instance = linker.instantiate(store, module)
        self.plugins[name] = plugin  # fixed: registered once it exists
"""


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "PYTHONIOENCODING": "utf-8",
        "COLUMNS": "100",
    }


def run(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m ARGS...`` in ``cwd``, as a user runs it."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def oomfuzz(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, "-m", "oomfuzz", *args)


def copy_example(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in EXAMPLE.glob("*.py"):
        shutil.copy(f, dest / f.name)
    return dest


def fix_bug(example: Path) -> None:
    host = example / "buggy_host.py"
    text = host.read_text()
    assert BUG in text, "the example's seeded bug moved: update BUG"
    host.write_text(text.replace(BUG, FIX))


@dataclass(frozen=True)
class Reports:
    example: Path  # the copy, with the bug fixed once both sweeps ran
    before: Path
    fixed: Path

    def before_data(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.before.read_text())
        return data


def make_reports(base: Path) -> Reports:
    example = copy_example(base / "example")
    before, fixed = base / "before.json", base / "fixed.json"  # written as ../NAME from example
    sweep = (SCENARIO, "--allocator", "ondemand", "-q", "--json")
    proc = oomfuzz(example, "sweep", *sweep, "../before.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the bug is found
    fix_bug(example)
    proc = oomfuzz(example, "sweep", *sweep, "../fixed.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # and gone
    return Reports(example, before, fixed)
