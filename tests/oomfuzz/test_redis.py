"""A campaign shared through Redis: what one machine finds, the next replays first.

Needs a real ``redis-server`` on PATH (Debian: ``apt-get install redis-server``)
and the ``redis`` package; the test starts its own server on a free loopback port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis", reason="the redis package is not installed (test extra)")
if shutil.which("redis-server") is None:
    pytest.skip(
        "redis-server is not on PATH (Debian: apt-get install redis-server)",
        allow_module_level=True,
    )

from test_campaign import seed_table_leak  # noqa: E402  (tests/oomfuzz is on sys.path)

from oomfuzz.campaign import CampaignConfig, describe, run_campaign  # noqa: E402
from wasmrt.alloc import AllocKind  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # blocks until the server logs readiness or exits
            seen.append(line)
            if "Ready to accept connections" in line:
                break
        else:
            pytest.fail("redis-server did not start:\n" + "".join(seen))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def any_table_instance(kind: AllocKind, caller: dict[str, Any]) -> bool:
    return bool(getattr(caller.get("inst"), "table_slots", None))


def test_second_machine_replays_what_the_first_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    seed_table_leak(monkeypatch, any_table_instance)
    first = run_campaign(
        CampaignConfig(time_budget=45, seed=11, database=redis_url, regressions=tmp_path / "a")
    )
    assert first.findings, "\n".join(describe(first))
    # "Another machine": a different seed and a one-example budget; the shared
    # database makes Hypothesis replay the saved failure before generating.
    second = run_campaign(
        CampaignConfig(
            time_budget=45,
            seed=999,
            max_examples=1,
            chunk=1,
            database=redis_url,
            regressions=tmp_path / "b",
        )
    )
    assert second.findings, "the shared database was not replayed"
    assert second.findings[0].script == first.findings[0].script
