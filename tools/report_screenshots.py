"""Regenerate the HTML report screenshots in docs/images/ from a sweep of a seeded bug.

    python tools/report_screenshots.py [OUT_DIR]     (default docs/images)

Sweeps the example plugin host with its seeded bug (``buggy_host.py``: a plugin
registered before it is instantiated), fixes the bug and sweeps again (the
same helpers the tests use: ``tests/oomfuzz/buggy_host_reports.py``), writes
the report directories and photographs them in headless Chromium
(``tests/support/chromium.py``): the index, the file page at the first
failing site and that failure's detail (with its minimized scenario), the sweep strip with its cursor on
the first failing index,
and the index of the fixed sweep with what changed since the buggy one.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "oomfuzz")]

from buggy_host_reports import copy_example, make_reports, oomfuzz  # noqa: E402

from oomfuzz.htmlreport import page_name  # noqa: E402
from oomfuzz.report import SweepReport  # noqa: E402
from support.chromium import Browser  # noqa: E402


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="oomfuzz-shots-") as tmp:
        base = Path(tmp)
        reports = make_reports(base)
        buggy, fixed = base / "buggy-site", base / "fixed-site"
        # The buggy report is written from a copy of the example as it was swept (the
        # scenario paths are relative to it), minimizing each failing site's first failure.
        copy = copy_example(base / "as-swept")
        proc = oomfuzz(
            copy, "report", "../before.json", "--html", "../buggy-site", "--minimize", "4"
        )
        assert proc.returncode == 1, proc.stderr
        proc = oomfuzz(
            base, "report", "fixed.json", "--html", fixed.name, "--baseline", "before.json"
        )
        assert proc.returncode == 0, proc.stderr
        rep = SweepReport.from_json(reports.before.read_text())
        first = min(rep.failures, key=lambda f: f.index)
        inj = first.iteration.injected
        assert inj is not None
        with Browser(width=1200, height=760) as b:
            b.open((buggy / "index.html").as_uri())
            b.screenshot(out / "report-index.png")
            b.open((buggy / page_name(inj.site.file)).as_uri())
            b.evaluate(
                f"document.getElementById('L{inj.site.line}').scrollIntoView({{block: 'center'}})"
            )
            b.screenshot(out / "report-file-failing-site.png")
            detail = f"f-0-{first.index}"
            b.evaluate(
                f"(function(){{var d=document.getElementById('{detail}');d.open=true;"
                "d.scrollIntoView({block: 'start'})})()"
            )
            b.screenshot(out / "report-failure-detail.png", f"#{detail}", pad=8, max_height=760)
            b.open((buggy / "strips.html").as_uri() + f"#u0:{first.index}")
            b.screenshot(out / "report-sweep-strip.png", "main", pad=8)
            b.open((fixed / "index.html").as_uri())
            b.screenshot(out / "report-what-changed.png", "section", pad=16)
            errors = b.errors
        if errors:
            print("\n".join(errors), file=sys.stderr)
            return 1
    for p in sorted(out.glob("report-*.png")):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"))
