"""The Wasm spec testsuite (every non-SIMD .wast file) against the vm core.

Each file must pass 100% of its assertions; counts are recorded as the
``spec_counts`` user property and summarised by ``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_runner import Runner

from support.testsuite import json_from_wast, testsuite_dir, wast_files

FILES = wast_files(simd=False)


@pytest.mark.parametrize("wast", FILES, ids=[f.stem for f in FILES])
def test_spec(wast: Path, tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    testsuite_dir()
    data = json_from_wast(wast, tmp_path)
    counts = Runner(tmp_path).run(data["commands"])
    record_property("spec_counts", (wast.stem, counts.passed, counts.failed, counts.skipped))
    print(
        f"\n{wast.stem}: {counts.passed} passed, {counts.failed} failed, {counts.skipped} skipped"
    )
    assert not counts.failures, f"{counts.failed} failing assertions:\n" + "\n".join(
        counts.failures[:40]
    )
