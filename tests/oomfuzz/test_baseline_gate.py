"""The CI gate: the committed site baseline still holds, and the gate can fail.

Also ``oomfuzz sweep --sample K --seed S`` over a few spec-testsuite files
(reproducible and bounded).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from oomfuzz import baseline as bl
from oomfuzz.cli import main
from oomfuzz.inject import Site
from oomfuzz.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "wasm-testsuite"


def test_committed_baseline_gate_passes(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    result = bl.check(ROOT, jobs=2)
    with capsys.disabled():
        print(
            f"\nbaseline gate: {result.regressions} regressions, {len(result.sites)} sites, "
            f"{result.injections} injections, {time.monotonic() - start:.1f}s"
        )
    assert result.passed, "\n".join(result.problems)


def test_site_ids_ignore_lines_and_checkout_location() -> None:
    a = Site("/home/ci/checkout/src/wasmrt/vm/table.py", 57, "TableInstance.grow")
    b = Site("wasmrt/vm/table.py", 91, "TableInstance.grow")
    assert bl.site_id(a) == bl.site_id(b) == "wasmrt/vm/table.py:TableInstance.grow"


def test_gate_rules_fail_on_lost_and_unhandled_sites() -> None:
    old = {
        "wasmrt/a.py:f": {"hits": 3, "injected": 3, "failures": 0},
        "wasmrt/a.py:g": {"hits": 1, "injected": 1, "failures": 0},
    }
    same = {
        "wasmrt/a.py:f": bl.SiteRow({"table"}, 5, 2, 0),
        "wasmrt/a.py:g": bl.SiteRow({"table"}, 1, 1, 0),
    }
    assert bl.compare(old, same) == []
    lost = {"wasmrt/a.py:f": same["wasmrt/a.py:f"]}
    assert any("wasmrt/a.py:g is no longer hit" in p for p in bl.compare(old, lost))
    failing = {**same, "wasmrt/b.py:h": bl.SiteRow({"memory"}, 2, 2, 1)}
    assert any("new site wasmrt/b.py:h" in p for p in bl.compare(old, failing))
    handled = {**same, "wasmrt/b.py:h": bl.SiteRow({"memory"}, 2, 2, 0)}
    assert bl.compare(old, handled) == []
    never = {**same, "wasmrt/b.py:h": bl.SiteRow({"memory"}, 2, 0, 0)}
    assert any("never injected" in p for p in bl.compare(old, never))


def test_update_then_check_on_a_small_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "regressions").mkdir(parents=True)
    for name in ("func_call.wast", "table_set_get.wast"):
        (corpus / name).write_text((ROOT / "corpus" / name).read_text())
    # Two scenarios reach few of wasmrt's declared sites: this test is about the other rules.
    cfg = bl.BaselineConfig(allocator="ondemand", sample=2, site_roots=())
    assert bl.update(tmp_path, cfg).passed
    doc = json.loads((corpus / "sites-baseline.json").read_text())
    assert all(row["injected"] >= 1 for row in doc["sites"].values())  # every site injected
    first = bl.check(tmp_path)
    assert first.passed, first.problems
    assert first.sites == bl.check(tmp_path).sites  # deterministic
    # A corpus that loses a scenario loses sites: the gate fails and names them.
    (corpus / "table_set_get.wast").unlink()
    lost = bl.check(tmp_path)
    assert not lost.passed and any("no longer hit" in p for p in lost.problems)
    # A regression that fails again fails the gate.
    (corpus / "table_set_get.wast").write_text((ROOT / "corpus" / "table_set_get.wast").read_text())
    bad = corpus / "regressions" / "wrong.wast"
    bad.write_text(
        ";; oomfuzz: allocator=ondemand mode=transient index=0\n"
        '(module (func (export "f") (result i32) (i32.const 1)))\n'
        '(assert_return (invoke "f") (i32.const 2))\n'
    )
    regressed = bl.check(tmp_path)
    assert any("regression wrong.wast" in p for p in regressed.problems)


@pytest.mark.skipif(not SPEC.is_dir(), reason=f"spec testsuite not checked out at {SPEC}")
def test_sampled_sweep_over_spec_files_is_bounded_and_reproducible(tmp_path: Path) -> None:
    files = [str(SPEC / n) for n in ("address.wast", "br_table.wast", "memory_grow.wast")]
    runs = []
    for k in range(2):
        out = tmp_path / f"r{k}.json"
        main(["sweep", *files, "--sample", "6", "--seed", "7", "--allocator", "ondemand",
              "-q", "--json", str(out), "--check-every", "3"])  # fmt: skip
        runs.append(json.loads(out.read_text()))
    a, b = runs
    assert a["summary"]["injection_points"] == b["summary"]["injection_points"]
    for ra, rb in zip(a["runs"], b["runs"], strict=True):
        assert ra["error"] is None, ra["error"]
        assert sum(ra["counts"].values()) == min(6, ra["total"])
        assert [s["site"] for s in ra["sites"]] == [s["site"] for s in rb["sites"]]
        assert [f["index"] for f in ra["failures"]] == [f["index"] for f in rb["failures"]]


def test_gate_fails_on_a_declared_site_no_scenario_reaches(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "func_call.wast").write_text((ROOT / "corpus" / "func_call.wast").read_text())
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "grow.py").write_text(
        "from wasmrt.alloc import AllocKind, try_alloc\n\n\n"
        "def grow(n: int) -> None:\n    try_alloc(n, AllocKind.OTHER)\n"
    )
    cfg = bl.BaselineConfig(allocator="ondemand", sample=0, site_roots=("mypkg",))
    refused = bl.update(tmp_path, cfg)
    assert not refused.passed
    assert refused.coverage is not None and refused.coverage.text() == "0/1 (0.0%)"
    (problem,) = refused.problems
    assert "mypkg/grow.py:5 in grow (try_alloc)" in problem
    assert "no scenario reaches it" in problem
    assert not (corpus / "sites-baseline.json").exists()  # nothing recorded
    exclusions = corpus / "sites-exclusions.json"
    rows = [{"site": "mypkg/grow.py:grow", "reason": "only a host embedding calls it"}]
    exclusions.write_text(json.dumps({"schema": "oomfuzz-site-exclusions/1", "exclusions": rows}))
    assert bl.update(tmp_path, cfg).passed
    ok = bl.check(tmp_path)
    assert ok.passed, ok.problems
    assert ok.coverage is not None and [r for _, r in ok.coverage.excluded] == [rows[0]["reason"]]
    rows.append({"site": "mypkg/gone.py:old", "reason": "deleted last year"})
    exclusions.write_text(json.dumps({"schema": "oomfuzz-site-exclusions/1", "exclusions": rows}))
    stale = bl.check(tmp_path)
    assert any("mypkg/gone.py:old is stale" in p for p in stale.problems)
    rows[:] = [{"site": "mypkg/grow.py:grow"}]
    exclusions.write_text(json.dumps({"schema": "oomfuzz-site-exclusions/1", "exclusions": rows}))
    with pytest.raises(ScenarioError, match="no reason"):
        bl.check(tmp_path)
