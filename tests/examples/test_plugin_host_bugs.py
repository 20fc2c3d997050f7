"""The example plugin host's seeded embedder bugs, each found with the right class.

Every bug (``examples/plugin_host/plugin_host.py``, ``BUGS``) is switched on
through ``PLUGIN_HOST_BUGS`` and the example's own test suite, unchanged, is
run on it (a subprocess: the suite's failure is what a user sees); the clean
host's suite runs in ``./dev test`` itself (``testpaths`` includes
``examples``), so it must report nothing. Issue 20's six points:
1 ``half_write`` -> not_atomic; 2 ``early_linker`` -> post_oom_failure
(long-lived form); 3 ``early_register``/``quota_leak``/``cache_placeholder``/
``pool_closed_store`` (registry entry, quota counter, cache entry, a dead store
back in the pool) -> post_oom_failure (long-lived form); 4 ``retry_call`` -> alloc_after_oom (with missed_oom: the retry
succeeds) although the host's
rollback is in a benign region (and the rollback without the region is
flagged, with it not); 5 ``retry_queue`` -> leak of the tracked host with its
referrer chain; 6 ``pool_drop`` -> cleanup_not_restored through a ``Probe``
the marker takes from a fixture.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import oomfuzz

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin_host"
sys.path.insert(0, str(EXAMPLE))

from plugin_host import PluginHost  # noqa: E402
from plugins import COUNTER  # noqa: E402

CASES = [
    ("half_write", "test_write_result_is_all_or_nothing", ["not_atomic", "write_result"]),
    ("early_linker", "test_load_call_and_store", ["post_oom_failure", "long-lived form"]),
    ("early_register", "test_load_call_and_store", ["post_oom_failure", "long-lived form"]),
    ("quota_leak", "test_load_call_and_store", ["post_oom_failure", "quota of 3"]),
    ("cache_placeholder", "test_load_call_and_store", ["post_oom_failure", "still being compiled"]),
    ("pool_closed_store", "test_load_call_and_store", ["post_oom_failure", "long-lived form"]),
    ("retry_call", "test_failed_call_rolls_back", ["alloc_after_oom"]),
    ("retry_queue", "test_load_call_and_store", ["leak", "PluginHost kept by", "RETRY_QUEUE"]),
    ("pool_drop", "test_pool_accounts_for_every_store", ["cleanup_not_restored", "stores.open"]),
]


def run_example(test: str, bugs: str, *options: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PLUGIN_HOST_BUGS=bugs, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *options]
    return subprocess.run(
        [*cmd, f"{EXAMPLE / 'test_plugin_host.py'}::{test}"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


#: Each bug is found by the exhaustive schedule, and by the sites schedule's firsts alone
#: (``--oom-schedule sites --oom-sample 0``: the first allocation of each distinct site
#: and calling context, issue 16).
SCHEDULES = {"exhaustive": (), "sites-firsts": ("--oom-schedule", "sites", "--oom-sample", "0")}


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(("bug", "test", "expected"), CASES, ids=[c[0] for c in CASES])
def test_seeded_bug_is_found_with_its_class(
    bug: str, test: str, expected: list[str], schedule: str
) -> None:
    proc = run_example(test, bug, *SCHEDULES[schedule])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    verdict = next(line for line in out.splitlines() if "failed:" in line and "OOM test" in line)
    assert "[long-lived form]" in verdict  # the form that caught it is named
    assert f"  {expected[0]}: " in out, out[-3000:]  # a finding line of that class
    for text in expected[1:]:
        assert text in out, out[-3000:]


def _rollback_sweep(benign: object) -> oomfuzz.OomTestResult:
    def setup() -> PluginHost:
        h = PluginHost(benign=benign)  # type: ignore[arg-type]
        h.load("a", COUNTER)
        return h

    steps = [oomfuzz.Step("bump", lambda h: h.call_with_rollback("a", "bump"))]
    lifecycle = oomfuzz.Lifecycle(setup, steps, PluginHost.close)
    return oomfuzz.OomTest(raise_on_failure=False).test(lifecycle)


def test_rollback_in_a_benign_region_is_not_flagged() -> None:
    assert _rollback_sweep(oomfuzz.cleanup).passed


def test_rollback_outside_a_benign_region_is_alloc_after_oom() -> None:
    result = _rollback_sweep(contextlib.nullcontext)
    classes = {f.cls for it in result.failures for f in it.findings if f.cls.is_failure}
    assert classes == {oomfuzz.FailureClass.ALLOC_AFTER_OOM}, [it.detail for it in result.failures]
