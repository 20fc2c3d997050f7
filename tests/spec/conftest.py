"""Terminal summary of spec-test assertion counts (works under pytest-xdist).

Prints one row per file (passed / failed), then subtotals for the SIMD and
non-SIMD files and the grand total. Files that did not report (crashed
before counting) show up as pytest failures, not here.
"""

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
    totals = {"non-SIMD": [0, 0, 0], "SIMD": [0, 0, 0]}
    for stem, p, f in rows:
        tot = totals["SIMD" if stem.startswith("simd_") else "non-SIMD"]
        tot[0] += p
        tot[1] += f
        tot[2] += 1
        flag = "" if not f else "  <-- FAILING"
        tw.write_line(f"{stem:36} passed {p:6}  failed {f:5}{flag}")
    for label, (p, f, n) in totals.items():
        tw.write_line(f"{'TOTAL ' + label + f' ({n} files)':36} passed {p:6}  failed {f:5}")
    p = sum(t[0] for t in totals.values())
    f = sum(t[1] for t in totals.values())
    tw.write_line(f"{'TOTAL':36} passed {p:6}  failed {f:5}")


def pytest_configure(config: pytest.Config) -> None:
    """``WASMRT_SPEC_FLAT=1`` runs the suite with the flat (state machine) code form."""
    import os

    if os.environ.get("WASMRT_SPEC_FLAT") == "1":
        import wasmrt.compile.codegen as codegen

        codegen.FORCE_FLAT = True
