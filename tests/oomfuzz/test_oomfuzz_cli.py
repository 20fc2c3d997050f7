"""The oomfuzz command line on Python scenarios (no runtime needed): exit codes, outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from oomfuzz.checks import FailureClass, Finding
from oomfuzz.cli import main
from oomfuzz.oomtest import Iteration, OomTestResult
from oomfuzz.report import RunReport, SweepReport
from support.scenario_texts import OK

MISSED = """\
# oomfuzz: allocator=ondemand
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory


def scenario(ctx):
    try_alloc(8, AllocKind.STORE)
    try:
        try_alloc(16, AllocKind.LIST)  # an ignored allocation failure
    except OutOfMemory:
        pass
    try_alloc(24, AllocKind.FUNC)
"""


@pytest.fixture()
def scenarios(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    (d / "ok.py").write_text(OK)
    (d / "sub" / "missed.py").write_text(MISSED)
    (d / "helper.py").write_text("X = 1\n")  # not a scenario: no scenario(ctx)
    return d


def one_line_error(err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("oomfuzz: error:")
    assert "Traceback" not in err


def test_sweep_all_handled_exits_0(
    scenarios: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    rc = main(
        [
            "sweep",
            str(scenarios / "ok.py"),
            "--mode",
            "both",
            "--json",
            str(out_json),
            "--html",
            str(out_html),
        ]
    )
    assert rc == 0
    data = json.loads(out_json.read_text())
    assert data["summary"]["failures"] == 0
    assert data["summary"]["injection_points"] == 2 * data["runs"][0]["total"] > 0
    assert {r["mode"] for r in data["runs"]} == {"transient", "persistent"}
    assert "<html>" in out_html.read_text()
    assert "oomfuzz summary" in capsys.readouterr().out


def test_sweep_reports_static_site_coverage_in_terminal_json_and_html(
    scenarios: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The scenarios' own try_alloc calls are the code under test here: ok.py's two
    # sites are reached, missed.py's three are not (only ok.py is swept).
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    argv = ["sweep", str(scenarios / "ok.py"), "--sites-root", str(scenarios)]
    rc = main([*argv, "--json", str(out_json), "--html", str(out_html)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "site coverage" in out and "2/5 (40.0%)" in out
    data = json.loads(out_json.read_text())
    assert data["summary"]["sites_declared"] == 5
    assert data["summary"]["site_coverage"] == 0.4
    unreached = data["coverage"]["unreached"]
    assert sorted(u["line"] for u in unreached) == [7, 9, 12]
    assert {u["function"] for u in unreached} == {"scenario"}
    assert all(u["file"].endswith("sub/missed.py") for u in unreached)
    for u in unreached:  # every unreached site, by file:line, in all three outputs
        where = f"missed.py:{u['line']}"
        assert where in out
        assert where in out_html.read_text()
    assert "Unreached sites (3 of 5 declared)" in out_html.read_text()
    # The saved report keeps the coverage: `oomfuzz report` prints the same.
    assert main(["report", str(out_json)]) == 0
    assert "2/5 (40.0%)" in capsys.readouterr().out
    # An exclusion with a reason moves a site out of the unreached list.
    ex = tmp_path / "ex.json"
    ex.write_text(
        json.dumps(
            {
                "schema": "oomfuzz-site-exclusions/1",
                "exclusions": [{"site": "missed.py:scenario", "reason": "swept elsewhere"}],
            }
        )
    )
    assert main([*argv, "--exclusions", str(ex), "--json", str(out_json)]) == 0
    cov = json.loads(out_json.read_text())["coverage"]
    assert cov["unreached"] == [] and len(cov["excluded"]) == 3
    out = capsys.readouterr().out
    assert "unreached sites" in out and "none, 3 excluded" in out
    assert "excluded: swept elsewhere" in out
    ex.write_text('{"schema": "oomfuzz-site-exclusions/1", "exclusions": [{"site": "x"}]}')
    assert main([*argv, "--exclusions", str(ex), "-q"]) == 2
    one_line_error(capsys.readouterr().err)


def test_sweep_with_failures_exits_1_and_reports_reproducer(
    scenarios: Path, tmp_path: Path
) -> None:
    out_json = tmp_path / "r.json"
    rc = main(["sweep", str(scenarios), "--json", str(out_json), "-q"])
    assert rc == 1
    data = json.loads(out_json.read_text())
    assert data["summary"]["scenarios"] == 2
    assert data["summary"]["failures_by_class"] == {"missed_oom": 1}
    (fail,) = [f for r in data["runs"] for f in r["failures"]]
    assert fail["index"] == 1 and fail["kind"] == "list" and fail["size"] == 16
    assert fail["site"].endswith("in scenario") and "missed.py" in fail["site"]
    assert fail["reproducer"] == (
        f"oomfuzz replay {scenarios / 'sub' / 'missed.py'} --mode transient --allocator ondemand --index 1"
    )
    assert "try_alloc(16" in fail["iteration"]["injected"]["traceback"]
    sites = {s["site"]["line"]: s for s in data["sites"] if "missed.py" in s["site"]["file"]}
    assert sites[9]["status"] == "failing" and sites[7]["status"] == "handled"


def test_jobs_give_the_same_report(scenarios: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["sweep", str(scenarios), "-q", "--mode", "both", "--json", str(a)]) == 1
    assert (
        main(["sweep", str(scenarios), "-q", "--mode", "both", "--jobs", "2", "--json", str(b)])
        == 1
    )
    sa, sb = json.loads(a.read_text())["summary"], json.loads(b.read_text())["summary"]
    assert sa == sb


def test_replay(scenarios: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missed = str(scenarios / "sub" / "missed.py")
    assert (
        main(["replay", missed, "--mode", "transient", "--allocator", "ondemand", "--index", "1"])
        == 1
    )
    out = capsys.readouterr().out
    assert "verdict: missed_oom" in out and "try_alloc(16" in out
    assert main(["replay", missed, "--allocator", "ondemand", "--index", "2"]) == 0
    assert "verdict: handled" in capsys.readouterr().out
    assert main(["replay", missed, "--allocator", "ondemand", "--index", "99"]) == 2
    one_line_error(capsys.readouterr().err)


def test_report_command(
    scenarios: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    main(["sweep", str(scenarios), "-q", "--json", str(out_json)])
    capsys.readouterr()
    assert main(["report", str(out_json), "--html", str(out_html)]) == 1
    assert "missed_oom" in capsys.readouterr().out
    assert "oomfuzz replay" in out_html.read_text()
    rep = SweepReport.from_json(out_json.read_text())
    assert rep.summary().failures_by_class == {"missed_oom": 1}
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["report", str(bad)]) == 2
    one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "/nonexistent/scenario.wast"],
        ["sweep", "--bogus", "x"],
        ["frobnicate"],
        [],
        ["replay", "x.wast", "--index", "-3"],
        ["sweep", "x.wast", "--mode", "sometimes"],
        ["report", "/nonexistent.json"],
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    one_line_error(capsys.readouterr().err)


def test_bad_directive_and_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bad.py"
    p.write_text("# oomfuzz: colour=blue\ndef scenario(ctx):\n    pass\n")
    assert main(["sweep", str(p)]) == 2
    err = capsys.readouterr().err
    one_line_error(err)
    assert "unknown oomfuzz directive 'colour'" in err
    q = tmp_path / "broken.py"
    q.write_text("def scenario(ctx):\n    return (\n")
    assert main(["sweep", str(q)]) == 2
    one_line_error(capsys.readouterr().err)
    r = tmp_path / "notes.txt"
    r.write_text("hello")
    assert main(["sweep", str(r)]) == 2
    one_line_error(capsys.readouterr().err)


def test_python_m_oomfuzz(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oomfuzz", "sweep", str(tmp_path / "missing.wast")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    one_line_error(proc.stderr)


def test_report_records_the_engine_per_unit(scenarios: Path, tmp_path: Path) -> None:
    engines = {}
    for engine in ("replay", "fork"):
        out = tmp_path / f"{engine}.json"
        argv = ["sweep", str(scenarios / "ok.py"), "-q", "--mode", "both", "--engine", engine]
        assert main([*argv, "--jobs", "2", "--json", str(out)]) == 0
        data = json.loads(out.read_text())
        engines[engine] = ({r["engine"] for r in data["runs"]}, data["summary"]["engines"])
        rep = SweepReport.from_json(out.read_text())
        assert {r.engine for r in rep.runs} == engines[engine][0]  # round-trips
    assert engines["replay"] == ({"replay"}, {"replay": 2})
    assert engines["fork"] == ({"fork"}, {"fork": 2})


def _unit(engine: str, iterations: list[Iteration]) -> RunReport:
    res = OomTestResult(label="s.wast", total=len(iterations), engine=engine)
    res.iterations = iterations
    return RunReport.from_result("corpus/sub/s.wast", "transient", "ondemand", res)


def test_shards_with_different_engines_merge_and_crashes_are_counted() -> None:
    crashed = Iteration(
        0, "transient", FailureClass.CRASHED, [Finding(FailureClass.CRASHED, "x")], 0
    )
    timeout = Iteration(
        1, "transient", FailureClass.TIMEOUT, [Finding(FailureClass.TIMEOUT, "y")], 0
    )
    ok = Iteration(2, "transient", FailureClass.HANDLED, [], 3)
    rep = SweepReport()
    rep.add(_unit("fork", [crashed, timeout]))
    rep.add(_unit("replay", [ok]))
    (unit,) = rep.runs
    assert unit.engine == "fork+replay"
    s = rep.summary()
    assert s.engines == {"fork+replay": 1} and s.forked and s.no_verdict == (1, 1)
    assert s.failures_by_class == {"crashed": 1, "timeout": 1}
    assert SweepReport.from_json(rep.to_json()).summary() == s
    console = Console(width=80, record=True, color_system=None)
    for table in rep.rich_tables():
        console.print(table)
    text = console.export_text()
    assert "fork+replay 1" in text and "crashed / timed out" in text and "1 / 1" in text


def test_tables_fit_80_columns(scenarios: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["sweep", str(scenarios), "-q", "--mode", "both", "--json", str(out)]) == 1
    rep = SweepReport.from_json(out.read_text())
    console = Console(width=80, record=True, color_system=None)
    for table in rep.rich_tables():
        console.print(table)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "sub/missed.py" in text and "[transient/ondemand #1]" in text  # relative paths
    assert "engine (units)" in text and "missed_oom" in text
