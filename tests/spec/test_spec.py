"""The whole Wasm spec testsuite (every .wast file, SIMD included) against the vm core.

Scripts are read with our own reader (``wasmrt.text.wast.parse_wast``): text,
``quote`` and ``binary`` modules all run and no assertion is skipped. Each
file must pass 100% of its assertions; counts are recorded as the
``spec_counts`` user property and summarised by ``conftest.py``.
``WASMRT_SPEC_VIA_BINARY=1`` sends text modules through our encoder and
decoder first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_runner import Runner

from support.testsuite import testsuite_dir as suite_dir
from support.testsuite import wast_files
from wasmrt.text.wast import parse_wast

FILES = wast_files(simd=True)


@pytest.mark.parametrize("wast", FILES, ids=[f.stem for f in FILES])
def test_spec(wast: Path, record_property: Callable[[str, object], None]) -> None:
    suite_dir()
    commands = parse_wast(wast.read_bytes(), wast.name)
    runner = Runner(via_binary=os.environ.get("WASMRT_SPEC_VIA_BINARY") == "1")
    counts = runner.run(commands)
    record_property("spec_counts", (wast.stem, counts.passed, counts.failed))
    print(f"\n{wast.stem}: {counts.passed} passed, {counts.failed} failed")
    assert not counts.failures, f"{counts.failed} failing assertions:\n" + "\n".join(
        counts.failures[:40]
    )
