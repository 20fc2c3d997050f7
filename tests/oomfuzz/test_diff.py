"""``oomfuzz diff`` (issue 18): what changed between two reports, and the CI gate on it.

The two reports are real sweeps of one seeded bug before and after its fix
(``buggy_host_reports``); a pytest run with ``--oom-json`` is compared with
the CLI sweep of the same scenario.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from buggy_host_reports import SCENARIO, Reports, make_reports, oomfuzz, run

from oomfuzz.diff import compare
from oomfuzz.inject import Site
from oomfuzz.report import SweepReport
from oomfuzz.sites import line_free_id


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    return make_reports(tmp_path_factory.mktemp("buggy"))


def failure_ids(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (f["class"], line_free_id(Site.from_dict(f["iteration"]["injected"]["site"])))
        for run in data["runs"]
        for f in run["failures"]
    }


def test_diff_after_the_fix_shows_exactly_the_fixed_failures(
    reports: Reports, tmp_path: Path
) -> None:
    out = tmp_path / "diff.json"
    proc = oomfuzz(
        reports.example, "diff", str(reports.before), str(reports.fixed), "--json", str(out)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    expected = failure_ids(reports.before_data())
    assert expected  # the bug failed somewhere
    assert {(c["class"], c["site"]) for c in data["fixed_failures"]} == expected
    assert sum(c["count"] for c in data["fixed_failures"]) == len(
        reports.before_data()["runs"][0]["failures"]  # type: ignore[index]
    )
    assert data["new_failures"] == [] and data["regressed"] is False
    assert data["sites_appeared"] == data["sites_disappeared"] == []
    assert data["sites_no_longer_injected"] == []
    assert data["cost"]["points"]["old"] == data["cost"]["points"]["new"] > 0
    lines = proc.stdout.splitlines()
    assert "new failures (0; 0 injections):" in lines
    fixed = [ln for ln in lines if ln.startswith("  - ")]
    assert len(fixed) == len(expected)
    assert all(f"in {SCENARIO} [transient/ondemand]" in ln for ln in fixed)
    assert lines[-1] == "no regression"


def test_diff_the_other_way_is_a_regression(reports: Reports) -> None:
    proc = oomfuzz(reports.example, "diff", str(reports.fixed), str(reports.before))
    assert proc.returncode == 1
    new = [ln for ln in proc.stdout.splitlines() if ln.startswith("  + ")]
    assert len(new) == len(failure_ids(reports.before_data()))
    assert proc.stdout.splitlines()[-1].startswith("regressed: ")
    # Each new failure comes with a reproducer that works from where the sweep ran.
    repro = next(ln for ln in proc.stdout.splitlines() if "reproduce: " in ln)
    args = repro.split("reproduce: oomfuzz ", 1)[1].split()
    assert args[:2] == ["replay", SCENARIO]


def test_a_report_against_itself_changes_nothing(reports: Reports) -> None:
    rep = SweepReport.from_json(reports.before.read_text())
    d = compare(rep, rep)
    assert not (d.new_failures or d.fixed_failures or d.sites_appeared or d.newly_unreached)
    assert not d.regressed and d.coverage[0] == d.coverage[1]


def test_a_site_no_longer_injected_is_a_regression(reports: Reports, tmp_path: Path) -> None:
    old = json.loads(reports.fixed.read_text())
    new = json.loads(reports.fixed.read_text())
    cov = new["coverage"]
    declared = cov["injected_sites"] + cov["unreached"]
    ids = [line_free_id(Site.from_dict(s)) for s in declared]
    lost = next(
        s
        for s, i in zip(declared, ids, strict=True)
        if ids.count(i) == 1 and s in cov["injected_sites"]
    )
    cov["injected_sites"].remove(lost)
    cov["unreached"].append(lost)
    key = {k: lost[k] for k in ("file", "line", "function")}
    for r in new["runs"]:
        r["sites"] = [s for s in r["sites"] if s["site"] != key]
    d = compare(SweepReport.from_json(json.dumps(old)), SweepReport.from_json(json.dumps(new)))
    assert d.regressed and not d.new_failures
    assert d.newly_unreached == [line_free_id(Site.from_dict(key))]
    edited = tmp_path / "lost.json"
    edited.write_text(json.dumps(new))
    proc = oomfuzz(reports.example, "diff", str(reports.fixed), str(edited))
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == "regressed: 1 site(s) no longer injected"


def test_bad_input_is_one_line_and_exit_2(reports: Reports, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in (
        ("diff", str(tmp_path / "missing.json"), str(reports.fixed)),
        ("diff", str(reports.before), str(bad)),
        ("diff", str(reports.before), str(tmp_path)),
        ("diff", str(reports.before)),
    ):
        proc = oomfuzz(reports.example, *args)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("oomfuzz: error: ")
        assert "Traceback" not in proc.stderr


def test_the_html_index_shows_what_changed_since_a_baseline(
    reports: Reports, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    proc = oomfuzz(
        reports.example,
        "report",
        str(reports.fixed),
        "--html",
        str(out),
        "--baseline",
        str(reports.before),
    )
    assert proc.returncode == 0, proc.stderr
    index = (out / "index.html").read_text()
    n = len(failure_ids(reports.before_data()))
    assert "What changed" in index and "No regression." in index
    assert f"<h3>Fixed failures ({n})</h3>" in index
    assert "<h3>New failures (0)</h3>" in index


@pytest.mark.parametrize(
    "spread", [("-n", "0"), ("-n", "2", "--oom-shards", "3")], ids=["serial", "xdist-shards"]
)
def test_a_pytest_run_and_a_cli_sweep_write_comparable_reports(
    reports: Reports, tmp_path: Path, spread: tuple[str, ...]
) -> None:
    cli, pt = tmp_path / "cli.json", tmp_path / "pytest.json"
    args = ("--allocator", "ondemand", "-q", "--json", str(cli))
    assert oomfuzz(reports.example, "sweep", SCENARIO, *args).returncode == 0
    proc = run(
        reports.example,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *spread,
        "--oom-corpus",
        SCENARIO,
        "--oom-allocator",
        "ondemand",
        "--oom-json",
        str(pt),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    a, b = SweepReport.from_json(cli.read_text()), SweepReport.from_json(pt.read_text())
    assert (
        [r.key for r in a.runs] == [r.key for r in b.runs] == [(SCENARIO, "transient", "ondemand")]
    )
    assert a.summary().injection_points == b.summary().injection_points > 0
    assert a.coverage is not None and b.coverage is not None
    assert a.coverage.text() == b.coverage.text()
    proc = oomfuzz(reports.example, "diff", str(cli), str(pt))
    assert proc.returncode == 0
    assert "new failures (0; 0 injections):" in proc.stdout
    assert "fixed failures (0; 0 injections):" in proc.stdout
