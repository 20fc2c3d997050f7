"""Real-exhaustion sweeps (``oomfuzz sweep --exhaust``): RLIMIT_AS ladders in forked children.

Seeded bugs (monkeypatched before the fork, so every child inherits them):
the host's ``MemoryError`` no longer mapped to ``OutOfMemory`` (the stray
``MemoryError`` the mode exists to find), a segfault and a hang under a limit.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import wasmrt.alloc
from oomfuzz.checks import FailureClass
from oomfuzz.cli import main
from oomfuzz.exhaust import ExhaustOptions, exhaust_scenario, unavailable_reason
from oomfuzz.scenario import load_scenario
from wasmrt.alloc import HostAlloc
from wasmrt.vm.memory import LinearMemory

pytestmark = pytest.mark.skipif(
    unavailable_reason() is not None, reason=f"real exhaustion: {unavailable_reason()}"
)

#: Grows a memory by 2000 pages (125 MiB) from wasm: far above the interpreter's floor.
BIG_GROW = """\
;; oomfuzz: allocator=ondemand
(module
  (memory (export "memory") 1 3000)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
(assert_return (invoke "grow" (i32.const 2000)) (i32.const 1))
"""

OPTIONS = ExhaustOptions(points=6, min_step=1 << 20)


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "big_grow.wast"
    path.write_text(BIG_GROW)
    return path


def _limited() -> bool:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft != resource.RLIM_INFINITY


def _seed_unmapped_memory_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's MemoryError passes HostAlloc unchanged (the mapping to OutOfMemory is lost)."""

    def leaky_exit(self: Any, *exc: object) -> None:
        return None

    monkeypatch.setattr(HostAlloc, "__exit__", leaky_exit)


def _seed_on_grow(monkeypatch: pytest.MonkeyPatch, action: Any) -> None:
    real = LinearMemory.grow

    def grow(self: LinearMemory, *args: Any, **kw: Any) -> int:
        if _limited():
            action()
        return real(self, *args, **kw)

    monkeypatch.setattr(LinearMemory, "grow", grow)


def test_clean_scenario_has_no_finding_and_the_limits_bite(tmp_path: Path) -> None:
    rep = exhaust_scenario(load_scenario(str(_scenario(tmp_path))), "ondemand", OPTIONS)
    assert rep.error is None
    assert rep.findings == [], [s.describe() for s in rep.findings]
    limited = [s for s in rep.steps if s.limit is not None]
    assert len(limited) == OPTIONS.points
    assert {s.outcome for s in limited} >= {"ok", "handled"}
    assert rep.peak - rep.base >= 100 << 20  # the 125 MiB growth is measured
    assert rep.ok_from is not None and rep.ok_from > rep.base


def test_finds_a_seeded_stray_memory_error_and_names_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_unmapped_memory_error(monkeypatch)
    rep = exhaust_scenario(load_scenario(str(_scenario(tmp_path))), "ondemand", OPTIONS)
    found = rep.findings
    assert found, [s.describe() for s in rep.steps]
    assert {s.outcome for s in found} == {FailureClass.HOST_MEMORY_ERROR.value}
    for s in found:
        assert s.limit is not None and rep.base <= s.limit < rep.peak
        assert "bare builtins.MemoryError" in s.detail
        assert "LinearMemory" in s.traceback or "memory.py" in s.traceback
        assert f"RLIMIT_AS={s.limit / (1 << 20):.2f}MiB" in s.describe()
    records = rep.finding_records()
    assert [f.cls for f in records] == [FailureClass.HOST_MEMORY_ERROR] * len(found)


def test_finds_a_seeded_struct_error_raised_inside_wasmrt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The seeded bug's code is compiled as wasmrt's own (alloc.py), as a real bug would be.
    # (Not a RecursionError: inside a wasm call wasmrt rightly maps that to a stack trap.)
    source = (
        "def __exit__(self, exc_type, exc, tb):\n"
        "    if exc_type is not None and issubclass(exc_type, MemoryError):\n"
        "        import struct\n"
        "        raise struct.error('seeded: unpack requires a buffer of 8 bytes')\n"
    )
    ns: dict[str, Any] = {}
    exec(compile(source, wasmrt.alloc.__file__, "exec"), ns)
    monkeypatch.setattr(HostAlloc, "__exit__", ns["__exit__"])
    rep = exhaust_scenario(load_scenario(str(_scenario(tmp_path))), "ondemand", OPTIONS)
    assert rep.findings, [s.describe() for s in rep.steps]
    assert {s.outcome for s in rep.findings} == {FailureClass.HOST_ERROR.value}
    assert all("struct.error" in s.detail for s in rep.findings)


def test_an_error_raised_by_the_harness_is_no_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def harness_runs_out() -> None:
        raise MemoryError("the harness's own allocation")

    _seed_on_grow(monkeypatch, harness_runs_out)
    options = ExhaustOptions(points=3, min_step=1 << 20)
    rep = exhaust_scenario(load_scenario(str(_scenario(tmp_path))), "ondemand", options)
    assert rep.findings == []
    assert rep.floor is not None


def test_a_segfault_under_a_limit_is_a_crash_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_on_grow(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGSEGV))
    rep = exhaust_scenario(load_scenario(str(_scenario(tmp_path))), "ondemand", OPTIONS)
    assert rep.findings
    for s in rep.findings:
        assert s.outcome == FailureClass.CRASHED.value
        assert "SIGSEGV" in s.detail and s.limit is not None


def test_a_hang_under_a_limit_is_killed_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_on_grow(monkeypatch, lambda: time.sleep(3600))
    options = ExhaustOptions(points=3, min_step=1 << 20, timeout=1.0)
    start = time.monotonic()
    rep = exhaust_scenario(load_scenario(str(_scenario(tmp_path))), "ondemand", options)
    assert time.monotonic() - start < 60
    assert rep.findings
    assert {s.outcome for s in rep.findings} == {FailureClass.TIMEOUT.value}


def test_the_floor_is_reported_not_a_finding(tmp_path: Path) -> None:
    # A probe no limit of the ladder can grant: the harness "cannot run" at every limit.
    options = ExhaustOptions(points=4, min_step=1 << 20, probe_bytes=1 << 40)
    rep = exhaust_scenario(load_scenario(str(_scenario(tmp_path))), "ondemand", options)
    assert rep.findings == []
    assert rep.floor is not None and rep.floor == max(s.limit or 0 for s in rep.steps)
    assert {s.outcome for s in rep.steps if s.limit is not None} == {"floor"}


def test_cli_exhaust_exit_codes_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_scenario(tmp_path))
    out = tmp_path / "clean.json"
    args = ["sweep", path, "--exhaust", "--points", "4", "--min-step", "1024", "-q"]
    assert main([*args, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["kind"] == "exhaust" and len(doc["units"]) == 1
    assert len(doc["units"][0]["steps"]) == 5  # the reference and 4 limits
    _seed_unmapped_memory_error(monkeypatch)
    assert main([*args, "--json", str(out)]) == 1
    steps = json.loads(out.read_text())["units"][0]["steps"]
    assert any(s["outcome"] == "host_memory_error" for s in steps)


def test_cli_rejects_a_ladder_of_one_point(tmp_path: Path) -> None:
    assert main(["sweep", str(_scenario(tmp_path)), "--exhaust", "--points", "1", "-q"]) == 2
