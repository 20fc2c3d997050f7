"""Guest recursion never crashes the host, whatever the thread's stack size (issue 14, item 4).

Each case runs ``stack_script.py`` in a fresh interpreter (a crash must fail the
test, not kill the test runner): host->wasm->host recursion, pure wasm
recursion and recursion alternating between two stores, on threads with 256
KiB, 512 KiB, 1 MiB and the default stack, with the C stack probe and with its
fallback estimate. Each must end in a clean stack-overflow trap inside the thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wasmrt
from wasmrt.vm import cstack

SCRIPT = Path(__file__).with_name("stack_script.py")
SIZES = [256 << 10, 512 << 10, 1 << 20, 0]


def _run(size: int, mode: str, probe: str, main_stack: int | None = None) -> str:
    env = dict(os.environ)
    src = str(Path(wasmrt.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(size), mode, probe],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        preexec_fn=None if main_stack is None else lambda: _limit_stack(main_stack),
    )
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    got = out.stdout.strip()
    return got if got.startswith("ok ") else f"{got}\n{out.stderr[-2000:]}"


def _limit_stack(size: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_STACK, (size, resource.getrlimit(resource.RLIMIT_STACK)[1]))


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_STACK sizes the main thread"
)
@pytest.mark.parametrize("mode", ["host", "stores"])
def test_small_main_thread_stack_traps_cleanly(mode: str) -> None:
    got = _run(-1, mode, "probe", main_stack=512 << 10)
    assert got.startswith("ok "), got
    assert int(got.split()[1]) >= 20, got


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s >> 10}KiB" if s else "default")
@pytest.mark.parametrize("mode", ["host", "pure", "stores", "concurrent"])
def test_unbounded_recursion_traps_on_any_thread_stack(size: int, mode: str) -> None:
    got = _run(size, mode, "probe")
    assert got.startswith("ok "), got
    # Not refused up front: a 256 KiB thread still allows dozens of host round trips.
    assert int(got.split()[1]) >= 20, got


@pytest.mark.parametrize("size", [256 << 10, 0], ids=["256KiB", "default"])
@pytest.mark.parametrize("mode", ["host", "stores"])
def test_fallback_estimate_is_safe_too(size: int, mode: str) -> None:
    got = _run(size, mode, "fallback")
    assert got.startswith("ok "), got


def test_probe_measures_this_threads_stack() -> None:
    if not cstack.probe_available():
        pytest.skip("no C stack probe on this platform (the fallback estimate is used)")
    outer = cstack.stack_left()

    def deeper(n: int) -> int:
        # ``eval`` re-enters the interpreter from C: each level uses C stack.
        return cstack.stack_left() if n == 0 else eval("deeper(n - 1)", {"deeper": deeper, "n": n})

    inner = deeper(20)
    assert 0 < inner < outer
    assert cstack.stack_low() is (outer < cstack.RESERVE)
