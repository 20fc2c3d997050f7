"""Terminal summary of spec-test assertion counts (works under pytest-xdist)."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "when", None) != "call":
                continue
            for name, value in getattr(rep, "user_properties", []):
                if name == "spec_counts":
                    rows.append(tuple(value))
    if not rows:
        return
    rows.sort()
    tw = terminalreporter
    tw.section("spec assertions")
    tot = [0, 0, 0]
    for stem, p, f, s in rows:
        tot[0] += p
        tot[1] += f
        tot[2] += s
        flag = "" if not f else "  <-- FAILING"
        tw.write_line(f"{stem:32} passed {p:6}  failed {f:5}  skipped(text) {s:4}{flag}")
    tw.write_line(f"{'TOTAL':32} passed {tot[0]:6}  failed {tot[1]:5}  skipped(text) {tot[2]:4}")


def pytest_configure(config: pytest.Config) -> None:
    """``WASMRT_SPEC_FLAT=1`` runs the suite with the flat (state machine) code form."""
    import os

    if os.environ.get("WASMRT_SPEC_FLAT") == "1":
        import wasmrt.compile.codegen as codegen

        codegen.FORCE_FLAT = True
