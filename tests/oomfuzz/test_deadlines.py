"""Never hang: every run has a deadline in both engines; a run past it is a ``timeout``
finding naming where the guest was, and the sweep goes on; a dry run that never ends
is a setup error naming the remedy (``;; oomfuzz: fuel=N``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oomfuzz.checks import FailureClass
from oomfuzz.cli import main
from oomfuzz.deadline import RunTimeout, deadline
from oomfuzz.oomtest import DryRunError, OomTest
from oomfuzz.sweep import ProcessPool, Unit, WorkerLost, run_unit
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory

DATA = Path(__file__).parent / "data"
LOOP = DATA / "grow_retry_loop.wast"  # loops forever once memory.grow is refused for good
NEVER_ENDS = DATA / "never_ends.wast"  # loops forever even fault-free


@pytest.mark.parametrize("engine", ["replay", "fork"])
def test_a_guest_looping_after_an_injection_is_a_timeout_and_the_sweep_goes_on(
    engine: str,
) -> None:
    unit = Unit(str(LOOP), "persistent", "ondemand", engine=engine, run_timeout=1.5)
    rep = run_unit(unit)
    assert rep.error is None
    assert rep.engine == engine
    timeouts = [f for f in rep.failures if f.cls is FailureClass.TIMEOUT]
    assert len(timeouts) == 1
    (f,) = timeouts
    detail = f.iteration.detail
    assert "did not finish within 1.5s" in detail
    assert "wasm function $grow_until_ok" in detail  # where the guest was...
    assert "Python frame wasmrt/" in detail  # ...and the Python frame it was in
    assert f.iteration.injected is not None and f.iteration.injected.kind == "memory"
    assert f.iteration.exc_type == "oomfuzz.deadline.RunTimeout"
    # The sweep went on: every index was judged, all the others handled.
    assert rep.total > 1 and rep.iterations == rep.total
    assert rep.counts == {"handled": rep.total - 1, "timeout": 1}


def test_a_dry_run_that_never_ends_is_a_setup_error_naming_fuel(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rep = run_unit(Unit(str(NEVER_ENDS), "transient", "ondemand", run_timeout=1.0))
    assert rep.error is not None and rep.error.startswith("input error")
    assert "did not finish within 1s" in rep.error
    assert ";; oomfuzz: fuel=N" in rep.error
    rc = main(["sweep", str(NEVER_ENDS), "--allocator", "ondemand", "--max-duration", "2", "-q"])
    assert rc == 2  # a setup problem, like bad input
    err = capsys.readouterr().err
    assert "the dry run (no injection) did not finish within" in err
    assert "(--max-duration " in err  # the sweep's budget was the limit
    assert "fuel=N" in err


def test_oomtest_run_timeout_stops_a_python_function_that_hangs_after_an_oom() -> None:
    def fn() -> int:
        try_alloc(8, AllocKind.OTHER)
        try:
            try_alloc(8, AllocKind.OTHER)
        except OutOfMemory:
            while True:  # a "retry until it works" loop that never gives up
                pass
        return 1

    res = OomTest(raise_on_failure=False, run_timeout=0.5).test(fn)
    assert [it.verdict for it in res.iterations] == [FailureClass.HANDLED, FailureClass.TIMEOUT]
    assert "test_deadlines.py" in res.iterations[1].detail
    with pytest.raises(DryRunError, match="fuel=N"):
        OomTest(run_timeout=0.5).test(lambda: time.sleep(30))


def test_a_deadline_outside_the_main_thread_stops_a_pure_python_loop() -> None:
    caught: list[BaseException] = []

    def spin() -> None:
        try:
            with deadline(0.3):
                while True:
                    pass
        except RunTimeout as e:
            caught.append(e)

    t = threading.Thread(target=spin)
    t.start()
    t.join(30)
    assert not t.is_alive()
    assert len(caught) == 1 and "test_deadlines.py" in caught[0].location


def test_a_finished_run_leaves_no_timer_behind() -> None:
    with deadline(0.2):
        pass
    time.sleep(0.4)  # a stray alarm would raise here
    with deadline(None):
        time.sleep(0.01)


def test_a_worker_that_never_returns_does_not_hang_the_pool() -> None:
    pool = ProcessPool(2, until=time.time() + 0.5, grace=1.0)
    got: list[tuple[int, object]] = []
    with pytest.raises(WorkerLost) as lost:
        for item in pool.map(time.sleep, [0.0, 3600.0]):
            got.append(item)
    assert got == [(0, None)]
    assert lost.value.positions == [1]


def test_max_duration_is_the_whole_sweeps_budget(tmp_path: Path) -> None:
    spent = Unit(str(LOOP), "persistent", "ondemand", until=time.time() - 1)
    rep = run_unit(spent)
    assert rep.error is None and rep.iterations == 0
    assert "budget was spent" in rep.stopped


def test_an_enclosing_deadline_survives_an_inner_one() -> None:
    with pytest.raises(RunTimeout) as stopped:
        with deadline(0.8):
            with deadline(5.0):
                pass
            while True:
                pass
    assert stopped.value.seconds == 0.8


def test_a_fired_thread_deadline_does_not_wedge_the_interpreter() -> None:
    """Cancelling a pending async exception with NULL left CPython 3.11's eval loop
    on a slow path for good: a Hypothesis shrink run after such a deadline in the
    same process never finished (it takes about a second otherwise)."""
    script = """
import threading
from hypothesis import find, settings
from oomfuzz.deadline import RunTimeout, deadline
from oomfuzz.strategies import module_features, modules

def spin():
    try:
        with deadline(0.2):
            while True:
                pass
    except RunTimeout:
        pass

t = threading.Thread(target=spin)
t.start()
t.join(30)
find(
    modules(max_funcs=2),
    lambda m: "call_indirect" in module_features(m),
    settings=settings(database=None, max_examples=1000, derandomize=True),
)
print("done")
"""
    src = str(Path(__file__).resolve().parents[2] / "src")
    try:
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=240,
            env=dict(os.environ, PYTHONPATH=src),
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a search that takes about a second did not end in 240 s after a deadline")
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr
