"""Sweeps on a real Dask cluster: a scheduler and two worker processes on loopback.

The clustered sweep of a few corpus scenarios must give the report a local
sweep gives (points, verdicts, sites, coverage), also when a worker is killed
while it runs units; ``pytest --oom-cluster`` and ``oomfuzz fuzz --cluster``
use the same cluster. Needs Dask's ``distributed`` (the ``cluster`` extra,
installed by ``./dev``); without it those tests skip and say so.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oomfuzz import cluster
from oomfuzz.campaign import CampaignConfig, describe, run_campaign
from oomfuzz.cli import main
from oomfuzz.cluster import DaskCluster
from oomfuzz.merge import canonical, canonical_order
from oomfuzz.oomtest import Iteration
from oomfuzz.report import RunReport, SweepReport
from oomfuzz.scenario import load_scenario
from oomfuzz.sweep import Unit, declared_sites, measure_coverage, run_units, sweep_units

ROOT = Path(__file__).resolve().parents[2]
SMALL = ("global_ops.wast", "func_call.wast", "memory_grow_wasm.wast")
NO_DASK = "Dask's 'distributed' is not installed (pip install -e '.[cluster]'; ./dev installs it)"
HAS_DASK = importlib.util.find_spec("distributed") is not None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cluster") / "corpus"
    d.mkdir()
    for name in SMALL:
        shutil.copy(ROOT / "corpus" / name, d / name)
    return d


@pytest.fixture(scope="module")
def scheduler() -> Iterator[Any]:
    """A local cluster: the scheduler here, two single-threaded worker processes."""
    if not HAS_DASK:
        pytest.skip(NO_DASK)
    import distributed

    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # any free port: never 8787 taken by another cluster
    ) as lc:
        yield lc


def _sweep_args(corpus: Path, out: Path) -> list[str]:
    return ["sweep", corpus.name, "--mode", "both", "--engine", "replay", "-q",
            "--json", str(out)]  # fmt: skip


@pytest.fixture(scope="module")
def local(corpus: Path) -> SweepReport:
    """The same sweep, in this process."""
    out = corpus.parent / "local.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(corpus.parent)
        assert main(_sweep_args(corpus, out)) == 0
    return SweepReport.from_json(out.read_text())


def _failures(report: Path) -> str:
    """What a report found, for an assertion message (a quiet sweep prints nothing)."""
    if not report.exists():
        return f"(no report at {report})"
    rep = SweepReport.from_json(report.read_text())
    lines = [
        f"{f.scenario} {f.allocator} {f.iteration.index}: {f.iteration.detail}"
        for f in rep.failures
    ]
    lines += [f"error {r.scenario} {r.mode} {r.allocator}: {r.error}" for r in rep.runs if r.error]
    return "\n".join(lines)


def test_a_clustered_sweep_gives_the_local_report(
    corpus: Path, scheduler: Any, local: SweepReport
) -> None:
    out = corpus.parent / "clustered.json"
    run = subprocess.run(
        [sys.executable, "-m", "oomfuzz", *_sweep_args(corpus, out),
         "--cluster", scheduler.scheduler_address],
        cwd=corpus.parent, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr + _failures(out)
    clustered = SweepReport.from_json(out.read_text())
    assert clustered.summary().injection_points > 0
    assert canonical(clustered) == canonical(local)


class _KillOneWorker:
    """Progress that kills (SIGKILL) a worker running units once the first unit is done."""

    def __init__(self, where: DaskCluster) -> None:
        self.where = where
        self.killed: list[str] = []
        self.lost: list[str] = []

    def unit_started(self, unit: Unit) -> None: ...

    def on_total(self, n: int) -> None: ...

    def on_iteration(self, it: Iteration, ordinal: int) -> None: ...

    def unit_done(self, report: RunReport) -> None:
        if self.killed:
            return
        busy = {w: keys for w, keys in self.where.client.processing().items() if keys}
        if not busy:
            return
        worker = sorted(busy)[0]
        pid = self.where.client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        self.killed.append(worker)
        self.lost.extend(busy[worker])


def test_killing_a_worker_mid_sweep_gives_the_same_report(
    corpus: Path, scheduler: Any, local: SweepReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(corpus.parent)
    scenarios = [load_scenario(f"corpus/{name}") for name in SMALL]
    report = SweepReport()
    with DaskCluster(scheduler.scheduler_address) as where:
        units = sweep_units(scenarios, "both", "both", where.jobs, engine="replay")
        killer = _KillOneWorker(where)
        done: list[int] = []
        for i, rep in run_units(units, where, killer):
            done.append(i)
            report.add(rep)
    assert killer.killed, "no worker was running a unit after the first one finished"
    assert killer.lost, "the killed worker had no unit to lose"
    # Each unit was taken exactly once, although the lost ones ran twice.
    assert sorted(done) == list(range(len(units)))
    canonical_order(report)
    report.coverage = measure_coverage(report, *declared_sites(["corpus"]))
    assert canonical(report) == canonical(local)


def test_pytest_oom_cluster_runs_the_items_on_the_cluster(
    corpus: Path, scheduler: Any, local: SweepReport
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST"))}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-c", os.devnull,
         "--rootdir", str(corpus.parent), "--oom-corpus", "corpus", "--oom-mode", "both",
         "--oom-cluster", scheduler.scheduler_address],
        cwd=corpus.parent, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    units = local.summary().runs
    assert f"{units} passed" in run.stdout
    points = local.summary().injection_points
    assert f"oomfuzz: {points} injection points in {units} swept item(s)" in run.stdout


def test_fuzz_cluster_spreads_campaign_workers_over_the_cluster(
    scheduler: Any, tmp_path: Path
) -> None:
    config = CampaignConfig(
        time_budget=30,
        max_examples=2,
        chunk=1,
        database=str(tmp_path / "examples"),
        regressions=None,
        cluster=scheduler.scheduler_address,
    )
    result = run_campaign(config)
    # One campaign worker per worker thread (2), each running its own Hypothesis runs
    # (chunk=1: one per example) until its budget of 2 examples is spent.
    assert result.chunks == result.examples == 4, "\n".join(describe(result))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not HAS_DASK, reason=NO_DASK)
def test_an_unreachable_scheduler_is_a_one_line_error(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    assert main(["sweep", str(corpus), "-q", "--cluster", address]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"oomfuzz: error: cannot reach the Dask scheduler at {address}")
    assert len(err.splitlines()) == 1


def test_without_distributed_cluster_options_say_how_to_install_it(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    for argv in (
        ["sweep", str(corpus), "-q", "--cluster", "tcp://127.0.0.1:8786"],
        ["fuzz", "--time", "1", "--cluster", "tcp://127.0.0.1:8786", "--regressions", ""],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "needs Dask's 'distributed' package" in err
        assert "pip install 'wasmrt-oomfuzz[cluster]'" in err


def test_workers_running_other_code_are_refused_before_any_work(
    corpus: Path,
    scheduler: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # This machine's sources "differ" from the workers' (their digest is the real one).
    monkeypatch.setattr(cluster, "code_digest", lambda: "0" * 64)
    assert main(["sweep", str(corpus), "-q", "--cluster", scheduler.scheduler_address]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "runs other oomfuzz/wasmrt code than this machine" in err
