"""The first hour with the ``oomfuzz`` command (issue 15): what a newcomer runs, run as they do.

Every test starts ``python -m oomfuzz`` in a fresh process on real files and
looks at what a user sees: the exit status, stdout and stderr.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oomfuzz import plugin
from oomfuzz.cli import build_parser
from support.scenario_texts import OK

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "corpus"


#: Ignores every one of its 24 allocation failures: 24 missed_oom failures per mode.
IGNORES_24 = """\
# oomfuzz: allocator=ondemand
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory


def scenario(ctx):
    for _ in range(24):
        try:
            try_alloc(16, AllocKind.LIST)  # an ignored allocation failure
        except OutOfMemory:
            pass
"""


def oomfuzz(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "PYTHONIOENCODING": "utf-8",
        "COLUMNS": "80",
    }
    return subprocess.run(
        [sys.executable, "-m", "oomfuzz", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The run failed with usage/input status 2 and exactly one error line, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("oomfuzz: error: ")
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


@pytest.fixture()
def failing(tmp_path: Path) -> Path:
    # A long directory name: a reproducer wider than any terminal.
    d = tmp_path / ("a-directory-name-long-enough-to-push-every-reproducer-past-80-columns")
    d.mkdir()
    (d / "ignores_24.py").write_text(IGNORES_24)
    return d / "ignores_24.py"


# -- item 2: an unreachable example database ------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens here once the socket is closed


def test_unreachable_redis_database_is_one_line_naming_the_url() -> None:
    pytest.importorskip("redis", reason="the redis package is not installed (test extra)")
    url = f"redis://127.0.0.1:{_closed_port()}"
    proc = oomfuzz("fuzz", "--time", "60", "--database", url, "--regressions", "")
    line = one_line_error(proc)
    assert url in line
    assert "campaign:" not in proc.stdout  # refused before any example ran


# -- item 3: output paths are checked before the work -----------------------------------------


@pytest.mark.parametrize("option", ["--json", "--html"])
def test_unwritable_sweep_output_is_refused_before_the_sweep(tmp_path: Path, option: str) -> None:
    (tmp_path / "ok.py").write_text(OK)
    out = tmp_path / "no" / "such" / "dir" / "out"
    proc = oomfuzz("sweep", str(tmp_path / "ok.py"), option, str(out))
    line = one_line_error(proc)
    assert option in line and str(out) in line and "no such directory" in line
    assert proc.stdout == ""  # no progress, no summary: nothing ran


def test_unwritable_report_and_minimize_outputs_are_refused(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    (tmp_path / "ok.py").write_text(OK)
    assert oomfuzz("sweep", str(tmp_path / "ok.py"), "-q", "--json", str(report)).returncode == 0
    one_line_error(oomfuzz("report", str(report), "--html", str(tmp_path / "x" / "r.html")))
    line = one_line_error(
        oomfuzz(
            "minimize",
            str(tmp_path / "ok.py"),
            "--allocator",
            "ondemand",
            "--index",
            "0",
            "--output",
            str(tmp_path),
        )
    )
    assert "is a directory" in line


# -- item 4: every failure reachable --------------------------------------------------------------


_REPRODUCER = re.compile(
    r"^  reproduce: oomfuzz replay (\S+) --mode (transient|persistent) "
    r"--allocator (ondemand|pooling) --index (\d+)$"
)


def test_every_failure_is_reachable_from_the_terminal(failing: Path, tmp_path: Path) -> None:
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    proc = oomfuzz("sweep", str(failing), "--json", str(out_json), "--html", str(out_html))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "failures (first 20 of 24)" in out
    # Ten detail blocks, each with its traceback and a reproducer on one line.
    blocks = re.findall(r"^missed_oom in .*?^  reproduce: .*?$", out, re.M | re.S)
    assert len(blocks) == 10
    for block in blocks:
        assert "allocation traceback (most recent call last):" in block
        assert "try_alloc(16, AllocKind.LIST)" in block
        reproducer = block.splitlines()[-1]
        m = _REPRODUCER.match(reproducer)
        assert m and m.group(1) == str(failing), reproducer
        assert len(reproducer) > 80  # would have wrapped at the terminal's width
    # What was left out is counted, and where all of it is, is said.
    assert (
        f"24 failures: 20 in the table, 10 in detail above; --show 0 prints every one; "
        f"all 24, with tracebacks, are in {out_json} and {out_html}"
    ) in out
    data = json.loads(out_json.read_text())
    fails = [f for r in data["runs"] for f in r["failures"]]
    assert len(fails) == 24
    assert all(f["iteration"]["injected"]["traceback"] for f in fails)
    html = out_html.read_text()
    assert html.count("oomfuzz replay ") == 24 and html.count("Allocation traceback") == 24


def test_show_0_prints_every_failure_and_report_does_the_same(
    failing: Path, tmp_path: Path
) -> None:
    proc = oomfuzz("sweep", str(failing), "--show", "0")
    assert proc.returncode == 1
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("  reproduce: ")]
    assert sorted(int(_REPRODUCER.match(ln).group(4)) for ln in lines) == list(range(24))  # type: ignore[union-attr]
    assert "--json OUT or --html OUT keeps all of them" in proc.stdout  # table elides 4
    out_json = tmp_path / "r.json"
    assert oomfuzz("sweep", str(failing), "-q", "--json", str(out_json)).returncode == 1
    rep = oomfuzz("report", str(out_json))
    assert rep.returncode == 1
    assert len(re.findall(r"^  reproduce: ", rep.stdout, re.M)) == 10
    assert f"all 24, with tracebacks, are in {out_json}" in rep.stdout


# -- item 5: a closed pipe ------------------------------------------------------------------------


def _with_closed_stdout(*args: str) -> tuple[int, str]:
    """Run oomfuzz with its stdout a pipe nobody reads (``… | head`` that has exited)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oomfuzz", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read()
    return proc.wait(timeout=600), err


def test_a_closed_pipe_is_not_a_failure(failing: Path) -> None:
    rc, err = _with_closed_stdout(
        "sweep", str(CORPUS / "func_call.wast"), "--allocator", "ondemand"
    )
    assert rc == 0, err
    assert err == ""
    # The status stays the sweep's own: failures are still reported as failures.
    rc, err = _with_closed_stdout("sweep", str(failing))
    assert rc == 1 and err == ""


def test_head_of_a_sweep_exits_0() -> None:
    shell = (
        f"{sys.executable} -m oomfuzz sweep corpus/func_call.wast | head -2 >/dev/null; "
        'exit "${PIPESTATUS[0]}"'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


# -- item 6: bad input says what is wrong, once ------------------------------------------------------


def test_a_malformed_wasm_file_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "prog.wasm"
    f.write_bytes(b"\0asm\1\0\0\0\x80\xff")
    line = one_line_error(oomfuzz("sweep", str(f)))
    assert "codec" not in line and str(f) in line and "malformed" in line.lower()


def test_an_unknown_suffix_is_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "prog.c"
    f.write_text("int main(void) { return 0; }\n")
    line = one_line_error(oomfuzz("sweep", str(f)))
    assert "codec" not in line and "a scenario is a .wast or .py" in line and "not .c" in line


def test_an_empty_script_is_an_input_error(tmp_path: Path) -> None:
    f = tmp_path / "empty.wast"
    f.write_text(";; nothing here\n")
    line = one_line_error(oomfuzz("sweep", str(f)))
    assert "empty script" in line and str(f) in line


@pytest.mark.parametrize(
    ("name", "text", "line_no"),
    [("broken.wast", "(module (func)\n", 1), ("broken.py", "def scenario(ctx):\n    x = (\n", 2)],
)
def test_a_syntax_error_names_the_file_once(
    tmp_path: Path, name: str, text: str, line_no: int
) -> None:
    f = tmp_path / name
    f.write_text(text)
    line = one_line_error(oomfuzz("sweep", str(f)))
    assert line.count(f.name) == 1 and f"{f}:{line_no}:" in line


def test_jobs_0_means_every_core(tmp_path: Path) -> None:
    assert "0: one per CPU core" in oomfuzz("sweep", "--help").stdout
    (tmp_path / "ok.py").write_text(OK)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert (
        oomfuzz("sweep", str(tmp_path / "ok.py"), "--jobs", "0", "--json", str(a)).returncode == 0
    )
    assert oomfuzz("sweep", str(tmp_path / "ok.py"), "-q", "--json", str(b)).returncode == 0
    assert json.loads(a.read_text())["summary"] == json.loads(b.read_text())["summary"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"hello\n", "not JSON: Expecting value at line 1 column 1"),
        (b"\0asm\1\0\0\0\xff", "not text"),
        (b'{"schema": "something else"}', "not an oomfuzz report"),
    ],
)
def test_report_on_a_file_that_is_not_a_report(tmp_path: Path, content: bytes, says: str) -> None:
    f = tmp_path / "out.json"
    f.write_bytes(content)
    line = one_line_error(oomfuzz("report", str(f)))
    assert str(f) in line and says in line


# -- item 8: one vocabulary, one set of numbers --------------------------------------------------------


def _row(text: str, label: str) -> int:
    m = re.search(re.escape(label) + r"\s+(\d+)", text)
    assert m, (label, text)
    return int(m.group(1))


def test_terminal_json_and_html_use_the_same_words_and_numbers(
    tmp_path: Path, failing: Path
) -> None:
    (tmp_path / "ok.py").write_text(OK)
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    proc = oomfuzz(
        "sweep",
        str(tmp_path / "ok.py"),
        str(failing),
        "--mode",
        "both",
        "--jobs",
        "2",
        "--json",
        str(out_json),
        "--html",
        str(out_html),
    )
    assert proc.returncode == 1, proc.stderr
    out, html = proc.stdout, out_html.read_text()
    summary = json.loads(out_json.read_text())["summary"]
    units = 2 * 2  # two scenarios x two modes x one allocator; --jobs 2 shards each in two
    assert summary["units"] == units
    assert _row(out, "units (scenario × mode × allocator)") == units
    assert f"<th>units (scenario × mode × allocator)</th><td>{units}</td>" in html
    # The progress counts the same units, against a total known before the work started.
    assert re.search(rf"units, 2 jobs .* {units}/{units}", out), out
    points = summary["injection_points"]
    assert _row(out, "injection points") == points
    assert f"<th>injection points</th><td>{points}</td>" in html
    assert _row(out, "handled") == summary["handled"]
    assert f"<th>handled</th><td>{summary['handled']}</td>" in html
    for other in ("work units", "runs (", "injections "):
        assert other not in out and other not in html
    if "forked children crashed / timed out" in out:
        assert "<th>forked children crashed / timed out</th><td>0 / 0</td>" in html


def test_in_process_progress_totals_are_known_up_front(tmp_path: Path, failing: Path) -> None:
    (tmp_path / "ok.py").write_text(OK)
    proc = oomfuzz("sweep", str(tmp_path / "ok.py"), str(failing), "--mode", "both")
    units = re.findall(r"^units\s.*?(\d+)/(\d+)", proc.stdout, re.M)
    assert units == [("4", "4")], proc.stdout
    # The last unit's own bar: its injection points, all of them done.
    assert re.search(r"ignores_24\.py persistent/ondemand: injection points .* 24/24", proc.stdout)


# -- item 9: the pytest plugin and the CLI share their defaults ---------------------------------------


class _Options:
    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {}

    def getgroup(self, *args: Any, **kwargs: Any) -> _Options:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.defaults[names[0]] = kwargs.get("default")


def test_plugin_defaults_are_the_sweep_defaults() -> None:
    opts = _Options()
    plugin.pytest_addoption(opts)  # type: ignore[arg-type]
    parser = build_parser()
    sweep = parser._subparsers._group_actions[0].choices["sweep"]  # type: ignore[union-attr]
    cli = {a.dest: a.default for a in sweep._actions}
    pairs = {
        "mode": "--oom-mode",
        "allocator": "--oom-allocator",
        "max_iters": "--oom-max-iters",
        "max_duration": "--oom-max-duration",
        "sample": "--oom-sample",
        "seed": "--oom-seed",
    }
    for dest, option in pairs.items():
        assert cli[dest] == opts.defaults[option], (dest, option)
    readme = (ROOT / "README.md").read_text()
    # The README says why ./dev sweep differs from the defaults (it asks for both modes).
    assert "--oom-mode both" in readme and "--mode both" in readme
