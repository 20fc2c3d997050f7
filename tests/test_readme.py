"""README.md's commands and Python blocks, run as written, so the README cannot drift.

Every line of every ``sh`` block and every ``python`` block is run from a
scratch directory whose entries link to this checkout (and ``../shared`` to
the shared testsuites), so the relative paths the README uses resolve as in a
fresh clone and whatever a command writes (``out.json``) stays in the scratch
directory. ``.venv/bin/X`` is the console script ``X`` of the interpreter
running the tests (``python -m X``). What a comment promises is checked:
``# prints X`` is the command's whole output, and a ``print(...)`` line's
``# X`` is that output line (numbers and durations may differ). The
commands that take minutes are marked slow (``--run-slow``), as the README
says; ``./dev test`` is this suite itself and is the one command not run.
A command exits 0 unless its comment promises another ``exit status N``.
"""

from __future__ import annotations

import _thread
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from wasmrt import cli as wasmrt_cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED = ROOT.parent / "shared"

#: How ``.venv/bin/X`` runs with the interpreter running the tests.
CONSOLE_SCRIPTS = {
    ".venv/bin/oomfuzz": [sys.executable, "-m", "oomfuzz"],
    ".venv/bin/pytest": [sys.executable, "-m", "pytest"],
    ".venv/bin/wasmrt": [sys.executable, "-m", "wasmrt.cli"],
}
#: Commands that take minutes: run with --run-slow (the README says which).
SLOW = (
    "./dev sweep",
    ".venv/bin/oomfuzz sweep corpus/ ",
    ".venv/bin/oomfuzz sweep ../shared/",
    ".venv/bin/oomfuzz fuzz",
    ".venv/bin/oomfuzz baseline",
    ".venv/bin/pytest",
)
#: The suite running this test.
SELF = "./dev test"


def sh_commands() -> list[tuple[str, str]]:
    """(command, its trailing comment) for every line of every ``sh`` block."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            command, _, comment = line.partition("#")
            if command.strip():
                out.append((command.strip(), comment.strip()))
    return out


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def expected_prints(block: str) -> list[str]:
    """The output a block's comments promise, one entry per ``print`` line."""
    out = []
    lines = block.splitlines()
    for i, line in enumerate(lines):
        if "print(" not in line:
            continue
        if "  # " in line:
            out.append(line.split("  # ", 1)[1].strip())
        elif i + 1 < len(lines) and lines[i + 1].startswith("# "):
            out.append(lines[i + 1][2:].strip())
    return out


def _numbers_free(text: str) -> str:
    return re.sub(r"\d+(?:[.,]\d+)*", "N", text)


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    """A scratch directory laid out like a fresh clone next to ``../shared``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".venv", ".git") and not entry.name.startswith("."):
            (repo / entry.name).symlink_to(entry)
    if SHARED.exists():
        (tmp_path / "shared").symlink_to(SHARED.resolve())
    return repo


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONIOENCODING": "utf-8"}


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    return [*CONSOLE_SCRIPTS.get(words[0], [words[0]]), *words[1:]]


def _run(command: str, cwd: Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(command), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _prerequisites(command: str) -> list[str]:
    """Earlier README commands writing a file this command reads (``report out.json``)."""
    words = shlex.split(command)
    out = []
    for earlier, _ in sh_commands():
        if earlier == command:
            break
        writes = re.findall(r"--(?:json|html) (\S+)", earlier)
        if any(w in words for w in writes):
            out.append(earlier)
    return out


def _cases() -> list[object]:
    cases: list[object] = []
    for i, (command, comment) in enumerate(sh_commands()):
        marks: list[pytest.MarkDecorator] = []
        if command.startswith(SLOW):
            marks.append(pytest.mark.slow)
        if command == SELF:
            marks.append(pytest.mark.skip(reason="./dev test is the test suite running this test"))
        cases.append(pytest.param(command, comment, id=f"{i}:{command[:60]}", marks=marks))
    return cases


def test_the_readme_shows_commands_and_python() -> None:
    commands = [c for c, _ in sh_commands()]
    assert "./dev sweep" in commands and SELF in commands
    assert any(c.startswith(".venv/bin/wasmrt run") for c in commands)
    assert len(python_blocks()) >= 3
    for command in commands:
        first = shlex.split(command)[0]
        assert first in CONSOLE_SCRIPTS or first == "./dev", f"cannot run {command!r} as written"


@pytest.mark.parametrize(("command", "comment"), _cases())
def test_readme_command_works_as_written(
    command: str, comment: str, checkout: Path, request: pytest.FixtureRequest
) -> None:
    if "../shared/" in command and not SHARED.exists():
        pytest.skip(f"{SHARED} (the shared testsuites) is absent")
    slow = bool(request.config.getoption("--run-slow"))
    for before in _prerequisites(command):
        if before.startswith(SLOW) and not slow:
            before += (
                " --max-iters 2"  # only the input for this command; itself run with --run-slow
            )
        done = _run(before, checkout)
        assert done.returncode in (0, 1), done.stdout + done.stderr
    proc = _run(command, checkout)
    promised = re.search(r"exit status (\d+)", comment)
    status = int(promised.group(1)) if promised else 0
    assert proc.returncode == status, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    if comment.startswith("prints "):
        assert proc.stdout.strip() == comment.removeprefix("prints ")


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_works_as_written(index: int, checkout: Path) -> None:
    block = python_blocks()[index]
    proc = subprocess.run(
        [sys.executable, "-c", block],
        cwd=checkout,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    got = [_numbers_free(ln) for ln in proc.stdout.splitlines()]
    assert got == [_numbers_free(x) for x in expected_prints(block)]


def test_ctrl_c_stops_a_guest_that_never_terminates(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the README says: ``wasmrt run --invoke spin docs/spin.wat``, then Ctrl-C."""
    monkeypatch.chdir(ROOT)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        status = wasmrt_cli.main(["run", "--invoke", "spin", "docs/spin.wat"])
    finally:
        timer.cancel()
    assert status == 130
    assert capsys.readouterr().err == "wasmrt: interrupted\n"
