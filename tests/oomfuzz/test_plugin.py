"""The oomfuzz pytest plugin: inert by default, sweep items, sharding, marker, fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import seeded

#: Options of the in-process pytest runs below. No faulthandler: its teardown restores
#: the signal handlers it found when the outer session started, which removes the ones
#: wasmtime (the test oracle) installed since, and a later wasm trap in the oracle
#: then kills the worker with SIGILL.
INNER_PYTEST = ["-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:faulthandler"]
ROOT = Path(__file__).resolve().parents[2]
SUBSET = ("api_store.py", "func_call.wast")


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A separate pytest run in ``cwd`` (its own rootdir, no project config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST"))}
    (cwd / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _subset(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for name in SUBSET:
        (d / name).write_text((ROOT / "corpus" / name).read_text())
    return d


def test_project_config_keeps_corpus_out_of_the_suite() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # The suite and the examples' own tests; never the corpus (the plugin sweeps that).
    assert cfg["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests", "examples"]
    eps = cfg["project"]["entry-points"]["pytest11"]
    assert eps == {"oomfuzz": "oomfuzz.plugin"}


def test_inert_without_options(tmp_path: Path) -> None:
    _subset(tmp_path)
    (tmp_path / "test_plain.py").write_text("def test_one():\n    pass\n")
    run = _pytest(tmp_path, "--collect-only", "-q", ".")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_plain.py::test_one" in run.stdout
    assert "corpus" not in run.stdout and "oomfuzz" not in run.stdout


def test_injection_total_across_xdist_shards_equals_sweep(tmp_path: Path) -> None:
    corpus = _subset(tmp_path)
    out = tmp_path / "sweep.json"
    # A fresh process, like the xdist workers: allocation counts depend on what this
    # process already warmed (wasmrt's process-wide caches), so not in-process.
    sweep = subprocess.run(
        [sys.executable, "-m", "oomfuzz", "sweep", str(corpus), "-q", "--allocator", "ondemand",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    expected = json.loads(out.read_text())["summary"]["injection_points"]
    run = _pytest(
        tmp_path, "-n", "2", "-q", "--oom-corpus", "corpus", "--oom-allocator", "ondemand",
        "--oom-shards", "3",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout[-400:])
    assert "6 passed" in run.stdout  # 2 scenarios x 1 mode x 1 allocator x 3 shards
    assert f"oomfuzz: {expected} injection points in 6 swept item(s)" in run.stdout
    assert expected > 0


def test_sites_schedule_items_inject_what_the_exhaustive_ones_do(tmp_path: Path) -> None:
    _subset(tmp_path)
    base = ("--oom-corpus", "corpus", "--oom-allocator", "ondemand")
    plain = _pytest(tmp_path, "-q", *base)
    sites = _pytest(tmp_path, "-v", *base, "--oom-schedule", "sites")
    assert plain.returncode == 0 and sites.returncode == 0, sites.stdout + sites.stderr
    # Two items per unit (the schedule's two passes), together every injection point once.
    assert "func_call.wast::transient-ondemand-firsts PASSED" in sites.stdout
    assert "func_call.wast::transient-ondemand-rest PASSED" in sites.stdout
    total = plain.stdout.split("oomfuzz: ")[1].split(" injection points")[0]
    assert f"oomfuzz: {total} injection points in 4 swept item(s)" in sites.stdout


def test_contiguous_shards_and_explicit_file(tmp_path: Path) -> None:
    corpus = _subset(tmp_path)
    run = _pytest(
        tmp_path, "-q", str(corpus / "api_store.py"), "--oom-allocator", "ondemand",
        "--oom-shards", "2", "--oom-shard-kind", "contiguous",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout and "injection points in 2 swept item(s)" in run.stdout


def test_failure_is_the_harness_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded.oom_becomes_wasmtime_error(monkeypatch)  # the seeded bug
    p = tmp_path / "call.wast"
    p.write_text(
        '(module (func (export "f") (result i32) (i32.const 1)))\n'
        '(assert_return (invoke "f") (i32.const 1))\n'
    )
    rc = pytest.main(
        [str(p), *INNER_PYTEST, "--oom-allocator", "ondemand",
         "--rootdir", str(tmp_path), "-c", os.devnull],
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1
    assert "wrong_error" in out and "injected allocation:" in out
    assert "reproduce: oomfuzz replay" in out and "AssertionError" not in out


def test_oom_marker_and_fixture_sweep_user_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "test_user.py").write_text(
        "import pytest\n"
        "import wasmrt\n"
        "\n"
        "def instantiate():\n"
        "    engine = wasmrt.Engine()\n"
        "    with wasmrt.Store(engine) as store:\n"
        "        m = wasmrt.Module(engine, '(module (memory 1) (func (export \"f\")))')\n"
        "        wasmrt.Instance(store, m, [])\n"
        "\n"
        "@pytest.mark.oom(max_iters=8)\n"
        "def test_marked():\n"
        "    instantiate()\n"
        "\n"
        "def test_fixture(oom_test):\n"
        "    result = oom_test.test(instantiate)\n"
        "    assert result.passed and len(result.iterations) == 5\n"
        "\n"
        "@pytest.mark.oom(max_iters=3)\n"
        "def test_swallowing_is_caught():\n"
        "    try:\n"
        "        instantiate()\n"
        "    except wasmrt.OutOfMemory:\n"
        "        pass\n"
    )
    rc = pytest.main(
        [str(tmp_path / "test_user.py"), *INNER_PYTEST,
         "--oom-max-iters", "5", "--rootdir", str(tmp_path), "-c", os.devnull],
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "2 passed" in out and "1 failed" in out
    assert "missed_oom" in out and "injected allocation:" in out
    assert "reproduce: pytest" in out and "indices=[0]" in out
    # 8 (marker) + 5 (fixture, --oom-max-iters) + 1 (stops at the first failure)
    assert "oomfuzz: 14 injection points in 3 swept item(s)" in out


def test_oom_marker_sweeps_async_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "test_async_user.py").write_text(
        "import asyncio\n"
        "import pytest\n"
        "from wasmrt.alloc import AllocKind, try_alloc\n"
        "from wasmrt.errors import OutOfMemory\n"
        "\n"
        "@pytest.fixture\n"
        "def sizes():\n"
        "    return [8, 16, 32]\n"
        "\n"
        "@pytest.mark.oom\n"
        "async def test_async_ok(sizes):\n"
        "    for n in sizes:\n"
        "        await asyncio.sleep(0)\n"
        "        try_alloc(n, AllocKind.CALL)\n"
        "\n"
        "@pytest.mark.oom(mode='both')\n"
        "async def test_async_swallows():\n"
        "    try_alloc(8, AllocKind.CALL)\n"
        "    await asyncio.sleep(0)\n"
        "    try:\n"
        "        try_alloc(16, AllocKind.LIST)\n"
        "    except OutOfMemory:\n"
        "        pass\n"
    )
    rc = pytest.main(
        [str(tmp_path / "test_async_user.py"), *INNER_PYTEST,
         "--rootdir", str(tmp_path), "-c", os.devnull],
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "1 passed" in out and "1 failed" in out
    assert "missed_oom at injection index 1 (transient)" in out
    assert "async def functions are not natively supported" not in out
    # 3 injections (async_ok) + 3 (index 0 both modes, index 1 transient: fail fast)
    assert "oomfuzz: 6 injection points in 2 swept item(s)" in out
