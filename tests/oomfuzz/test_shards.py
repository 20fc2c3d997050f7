"""Machine shards (``sweep --shard K/N``) merged by ``oomfuzz merge`` give the unsharded report.

The sweeps here run in this process (``oomfuzz.cli.main``), on a few small
corpus scenarios in both modes and with both allocators.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from oomfuzz import baseline as bl
from oomfuzz.cli import main
from oomfuzz.inject import Site
from oomfuzz.merge import Shard, canonical, merge_coverage
from oomfuzz.report import SweepReport
from oomfuzz.scenario import load_scenario
from oomfuzz.sites import Exclusion, StaticSite, Universe, coverage
from oomfuzz.sweep import shard_units, sweep_units

ROOT = Path(__file__).resolve().parents[2]
SMALL = ("global_ops.wast", "func_call.wast", "memory_grow_wasm.wast")


def _copy_corpus(d: Path) -> Path:
    d.mkdir()
    for name in SMALL:
        shutil.copy(ROOT / "corpus" / name, d / name)
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_corpus(tmp_path_factory.mktemp("shards") / "corpus")


def _sweep(corpus: Path, out: Path, *extra: str) -> SweepReport:
    """Sweep ``corpus`` from its parent directory, as a CI machine sweeps ``corpus/``: the
    scenario names (``corpus/NAME``) do not depend on where the checkout is."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(corpus.parent)
        rc = main(["sweep", corpus.name, "--mode", "both", "--engine", "replay", "-q",
                   "--json", str(out), *extra])  # fmt: skip
    assert rc == 0, f"sweep {extra} exited {rc}"
    return SweepReport.from_json(out.read_text())


def _merge(out: Path, *reports: Path) -> int:
    return main(["merge", *map(str, reports), "-o", str(out)])


@pytest.fixture(scope="module")
def shards(corpus: Path) -> list[Path]:
    paths = [corpus.parent / f"shard{k}.json" for k in (1, 2, 3)]
    for k, path in enumerate(paths, 1):
        _sweep(corpus, path, "--shard", f"{k}/3")
    return paths


def test_three_shards_merged_equal_the_unsharded_report(
    corpus: Path, shards: list[Path], tmp_path: Path
) -> None:
    whole = _sweep(corpus, tmp_path / "whole.json")
    parts = [SweepReport.from_json(p.read_text()) for p in shards]
    # Every shard did part of the work, and together exactly all of it.
    points = [p.summary().injection_points for p in parts]
    assert all(0 < n < whole.summary().injection_points for n in points)
    assert sum(points) == whole.summary().injection_points
    # Shards are given in any order.
    assert _merge(tmp_path / "merged.json", shards[2], shards[0], shards[1]) == 0
    merged = SweepReport.from_json((tmp_path / "merged.json").read_text())
    assert canonical(merged) == canonical(whole)
    assert merged.coverage is not None and whole.coverage is not None
    assert merged.coverage.to_dict() == whole.coverage.to_dict()
    assert [s.to_dict() for s in merged.site_table()] == [s.to_dict() for s in whole.site_table()]
    assert merged.identity is not None and merged.identity["shard"] == [1, 1]
    # The merged report is a whole report: the gate and `oomfuzz report` take it.
    assert main(["report", str(tmp_path / "merged.json")]) == 0


def test_the_partition_does_not_depend_on_the_worker_count(corpus: Path, tmp_path: Path) -> None:
    one = _sweep(corpus, tmp_path / "j1.json", "--shard", "2/3")
    two = _sweep(corpus, tmp_path / "j2.json", "--shard", "2/3", "--jobs", "2")
    assert canonical(one) == canonical(two)


def test_shard_units_partition_every_index_exactly_once() -> None:
    scns = [load_scenario(ROOT / "corpus" / name) for name in SMALL]
    for jobs in (1, 2, 5):
        units = sweep_units(scns, "both", "both", jobs)
        owners: dict[tuple[str, str, str, int], list[int]] = {}
        for k in (1, 2, 3):
            shard = Shard(k, 3)
            for u in shard_units(units, shard):
                assert (u.shards, u.machines) == (jobs * 3, 3)
                for i in range(97):
                    if i % u.shards == u.shard:
                        owners.setdefault((u.scenario, u.mode, u.allocator, i), []).append(k)
                        assert shard.owns(u.scenario, u.mode, u.allocator, i)
        keys = {(u.scenario, u.mode, u.allocator) for u in units}
        assert len(owners) == len(keys) * 97
        assert all(len(v) == 1 for v in owners.values())


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_missing_and_overlapping_shards_are_refused_by_name(
    shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = tmp_path / "m.json"
    assert _merge(out, shards[0], shards[2]) == 2
    assert "missing shard(s) 2/3 of 3" in _one_line_error(capsys)
    assert _merge(out, shards[0], shards[1], shards[1], shards[2]) == 2
    assert "shard 2/3 given twice" in _one_line_error(capsys)
    assert not out.exists()


def _edited(path: Path, tmp_path: Path, edit: str, value: object) -> Path:
    """A copy of the report at ``path`` whose sweep identity has ``edit`` set to ``value``."""
    doc = json.loads(path.read_text())
    section, _, key = edit.partition(".")
    if key:
        doc["sweep"][section][key] = value
    else:
        doc["sweep"][section] = value
    out = tmp_path / f"edited-{section}-{key}.json"
    out.write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize(
    ("edit", "value", "message"),
    [
        ("versions.code", "0" * 64, "ran different versions (code:"),
        ("versions.python", "3.99", "ran different versions (python:"),
        ("options.seed", 7, "ran with different options (seed: 0 vs 7)"),
    ],
)
def test_shards_of_other_versions_or_options_are_refused(
    shards: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: str,
    value: object,
    message: str,
) -> None:
    capsys.readouterr()
    other = _edited(shards[1], tmp_path, edit, value)
    assert _merge(tmp_path / "m.json", shards[0], other, shards[2]) == 2
    assert message in _one_line_error(capsys)


def test_shards_of_other_inputs_or_splits_are_refused(
    shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same scenario names, one with other content: a different input.
    corpus = _copy_corpus(tmp_path / "corpus")
    changed = corpus / "func_call.wast"
    changed.write_text(changed.read_text() + "\n;; edited\n")
    other = tmp_path / "other2.json"
    _sweep(corpus, other, "--shard", "2/3")
    capsys.readouterr()
    assert _merge(tmp_path / "m.json", shards[0], other, shards[2]) == 2
    assert "swept different inputs: different content of" in _one_line_error(capsys)
    # A different scenario set, another number of shards.
    doc = json.loads(shards[1].read_text())
    doc["sweep"]["inputs"].pop(next(iter(doc["sweep"]["inputs"])))
    fewer = tmp_path / "fewer.json"
    fewer.write_text(json.dumps(doc))
    assert _merge(tmp_path / "m.json", shards[0], fewer, shards[2]) == 2
    assert "different scenario sets (only in the first:" in _one_line_error(capsys)
    half = _edited(shards[1], tmp_path, "shard", [2, 2])
    assert _merge(tmp_path / "m.json", shards[0], half) == 2
    assert "split the sweep differently: shard 1/3 vs shard 2/2" in _one_line_error(capsys)


def test_a_report_without_identity_and_bad_shard_specs_are_usage_errors(
    corpus: Path, shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(shards[0].read_text())
    doc.pop("sweep")
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    capsys.readouterr()
    assert _merge(tmp_path / "m.json", old, shards[1], shards[2]) == 2
    assert "not a shard report" in _one_line_error(capsys)
    for spec in ("0/3", "4/3", "3", "a/b"):
        assert main(["sweep", str(corpus), "--shard", spec]) == 2
        assert f"shard {spec}" in _one_line_error(capsys)


def test_the_gate_takes_the_merged_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "regressions").mkdir(parents=True)
    for name in ("func_call.wast", "global_ops.wast"):
        shutil.copy(ROOT / "corpus" / name, corpus / name)
    cfg = bl.BaselineConfig(allocator="ondemand", sample=2, site_roots=())
    assert bl.update(tmp_path, cfg).passed
    monkeypatch.chdir(tmp_path)
    parts = [tmp_path / f"s{k}.json" for k in (1, 2)]
    for k, part in enumerate(parts, 1):
        assert main(["sweep", "corpus", "-q", "--allocator", "ondemand", "--engine", "replay",
                     "--shard", f"{k}/2", "--json", str(part)]) == 0  # fmt: skip
    assert _merge(tmp_path / "merged.json", *parts) == 0
    merged = SweepReport.from_json((tmp_path / "merged.json").read_text())
    capsys.readouterr()
    gate = ["baseline", "--check", "--root", str(tmp_path), "--report"]
    assert main([*gate, "merged.json"]) == 0
    out = capsys.readouterr().out
    # The gate judged the merged sweep (every index), not a bounded sweep of its own.
    assert f"{merged.summary().injection_points} injections" in out, out
    # One shard is not the whole sweep.
    assert main([*gate, "s1.json"]) == 2
    assert "s1.json is shard 1/2 of a sweep" in _one_line_error(capsys)
    # A merged sweep that lost a scenario fails the gate like a bounded sweep would.
    (corpus / "global_ops.wast").unlink()
    for k, part in enumerate(parts, 1):
        assert main(["sweep", "corpus", "-q", "--allocator", "ondemand", "--engine", "replay",
                     "--shard", f"{k}/2", "--json", str(part)]) == 0  # fmt: skip
    assert _merge(tmp_path / "merged.json", *parts) == 0
    capsys.readouterr()
    assert main([*gate, "merged.json"]) == 1
    assert "no longer hit" in capsys.readouterr().out


def test_merged_coverage_is_the_coverage_of_all_injections() -> None:
    a, b, c = (StaticSite(Site("pkg/m.py", n, f"f{n}"), "try_alloc") for n in (1, 2, 3))
    universe = Universe(("pkg",), (a, b, c), frozenset({"pkg/m.py", "pkg/n.py"}))
    missed = Site("pkg/n.py", 9, "g")  # injected, but the scan did not declare it
    excl = [Exclusion(b.id, "reached only by hand"), Exclusion("pkg/gone.py:h", "gone")]
    whole = coverage(universe, [a.site, b.site, missed], excl)
    # b is excluded in the first shard (not injected there), injected in the second:
    # the merge must find the exclusion stale, as the whole sweep does.
    parts = [coverage(universe, [a.site], excl), coverage(universe, [b.site, missed], excl)]
    assert parts[0].excluded and not whole.excluded
    merged = merge_coverage(parts)
    assert merged.to_dict() == whole.to_dict() | {
        "stale_exclusions": sorted(whole.to_dict()["stale_exclusions"], key=lambda e: e["site"])
    }
    assert [s.site for s in merged.unreached] == [c.site]
