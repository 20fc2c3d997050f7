"""The HTML report in a real browser (issue 18): headless Chromium through DevTools.

The pages of a seeded bug's sweep (``buggy_host_reports``) load without a
console error or an uncaught exception, the failing sites are marked failing
as rendered (their computed style, not just a class), the strip answers the
pointer and the keyboard, the dark palette applies, and screenshots are saved
as artifacts (their directory is printed). Skips with the reason when no
Chromium is installed (Debian package ``chromium``; ``.ci/run`` installs it).
Load times are printed, never asserted (``benchmarks/bench_html_report.py``
measures them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from buggy_host_reports import Reports, make_reports, oomfuzz

from oomfuzz.htmlreport import page_name, write_html
from oomfuzz.report import RunReport, SweepReport
from support.chromium import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH (Debian package `chromium`; .ci/run installs it)",
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    return make_reports(tmp_path_factory.mktemp("buggy"))


@pytest.fixture(scope="module")
def site_dir(reports: Reports, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report"
    proc = oomfuzz(
        reports.example,
        "report",
        str(reports.before),
        "--html",
        str(out),
        "--baseline",
        str(reports.fixed),
    )
    assert proc.returncode == 1, proc.stderr
    return out


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots (test artifacts): {path}")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(CHROMIUM) as b:
        yield b


def failing(reports: Reports) -> list[dict[str, Any]]:
    (run,) = reports.before_data()["runs"]  # type: ignore[index]
    out: list[dict[str, Any]] = run["failures"]
    return out


def test_the_console_check_can_fail(browser: Browser, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><p>x</p><script>console.error('boom'); nope();</script>")
    browser.open(bad.as_uri())
    assert any("boom" in e for e in browser.errors)
    assert any("nope" in e for e in browser.errors)


def test_the_index_loads_cleanly_and_lists_the_failing_files(
    browser: Browser, site_dir: Path, reports: Reports, shots: Path
) -> None:
    browser.events.clear()
    ms = browser.open((site_dir / "index.html").as_uri())
    print(f"index.html loaded in {ms:.0f} ms")
    assert browser.errors == []
    failing_files = {f["iteration"]["injected"]["site"]["file"] for f in failing(reports)}
    red = browser.evaluate(
        "Array.from(document.querySelectorAll('tbody a.t-failing')).map(a => a.textContent)"
    )
    assert set(red) == failing_files
    assert browser.evaluate("document.querySelector('h2#changed').textContent").startswith(
        "What changed"
    )
    browser.screenshot(shots / "index.png")


def test_a_file_page_marks_the_failing_site_as_rendered(
    browser: Browser, site_dir: Path, reports: Reports, shots: Path
) -> None:
    f = failing(reports)[0]
    site = f["iteration"]["injected"]["site"]
    browser.events.clear()
    ms = browser.open((site_dir / page_name(site["file"])).as_uri() + f"#L{site['line']}")
    print(f"{page_name(site['file'])} loaded in {ms:.0f} ms")
    assert browser.errors == []
    mark = f"document.getElementById('L{site['line']}')"
    assert browser.evaluate(f"{mark}.className") == "site s-failing"
    failing_bg = browser.evaluate(f"getComputedStyle({mark}).backgroundColor")
    plain = browser.evaluate("getComputedStyle(document.querySelector('pre.src')).backgroundColor")
    assert failing_bg != plain and failing_bg != "rgba(0, 0, 0, 0)"
    # The note shows below its line, inside the source box (not pushed off to the side).
    below, inside = browser.evaluate(
        f"(function(){{var m={mark}.getBoundingClientRect(),"
        f"n={mark}.nextElementSibling.getBoundingClientRect(),"
        "p=document.querySelector('pre.src').getBoundingClientRect();"
        "return [n.top>=m.bottom-1, n.left<p.right && n.right<=p.right+1]})()"
    )
    assert below and inside
    note = browser.evaluate(f"{mark}.nextElementSibling.textContent")
    assert "failing" in note and "post_oom_failure" in note and f"#{f['index']}" in note
    # The note's link opens the failure's detail, with its reproducer.
    browser.evaluate(f"{mark}.nextElementSibling.querySelector('a').click()")
    opened = browser.evaluate("document.querySelector(location.hash).textContent")
    assert "reproduce" in opened.lower() or "Reproduce" in opened
    browser.evaluate(f"{mark}.scrollIntoView({{block: 'center'}})")
    browser.screenshot(shots / "file-page.png")


def test_the_strip_answers_pointer_and_keyboard(
    browser: Browser, site_dir: Path, reports: Reports, shots: Path
) -> None:
    first = min(f["index"] for f in failing(reports))
    site = next(f["site"] for f in failing(reports) if f["index"] == first)
    browser.events.clear()
    ms = browser.open((site_dir / "strips.html").as_uri() + f"#u0:{first}")
    print(f"strips.html loaded in {ms:.0f} ms")
    assert browser.errors == []
    tip = browser.evaluate("document.getElementById('tip-0').textContent")
    assert tip == f"index {first} · post_oom_failure · {site}"
    browser.screenshot(shots / "strip.png", ".unit")
    browser.key("Home", key_code=36)
    tip = browser.evaluate("document.getElementById('tip-0').textContent")
    assert tip.startswith("index 0 · handled · ")
    browser.key("ArrowRight", key_code=39)
    assert browser.evaluate("document.getElementById('tip-0').textContent").startswith("index 1 ")
    # The pointer over the first failing segment names its index, verdict and site.
    x, y = browser.evaluate(
        f"(function(){{var r=document.querySelector('.seg[data-a=\"{first}\"]')"
        ".getBoundingClientRect();return [r.left+1,r.top+r.height/2]})()"
    )
    browser.mouse_move(x, y)
    hover = browser.evaluate("document.getElementById('hover').textContent")
    assert hover == f"index {first} · post_oom_failure · {site}"
    # Enter on a failing index opens its detail.
    browser.evaluate(f"location.hash='#u0:{first}'; location.reload()")
    browser.wait_event("Page.loadEventFired")
    browser.key("Enter", key_code=13)
    browser.wait_event("Page.loadEventFired")
    assert browser.evaluate("location.hash") == f"#f-0-{first}"
    assert browser.errors == []


def test_the_dark_palette_applies(browser: Browser, site_dir: Path, shots: Path) -> None:
    browser.color_scheme("dark")
    try:
        browser.open((site_dir / "index.html").as_uri())
        bg = browser.evaluate("getComputedStyle(document.body).backgroundColor")
        assert bg == "rgb(22, 24, 28)"
        browser.screenshot(shots / "index-dark.png")
    finally:
        browser.color_scheme("light")


def test_tens_of_thousands_of_points_render(browser: Browser, tmp_path: Path, shots: Path) -> None:
    reps = []
    for u in range(8):
        n = 5000
        fails = set(range(100 + u * 37, n, 900))
        sites = [{"file": "wasmrt/vm/store.py", "line": 10 + k, "function": "f"} for k in range(40)]
        reps.append(
            RunReport.from_dict(
                {
                    "scenario": f"s{u}.wast",
                    "mode": "transient",
                    "allocator": "ondemand",
                    "counts": {"handled": n - len(fails), "missed_oom": len(fails)},
                    "points": {
                        "verdicts": ["handled", "missed_oom"],
                        "sites": sites,
                        "points": [[i, int(i in fails), i % 40] for i in range(n)],
                    },
                }
            )
        )
    write_html(SweepReport(runs=reps), tmp_path / "big")
    browser.events.clear()
    ms = browser.open((tmp_path / "big" / "strips.html").as_uri() + "#u7:4999")
    print(f"strips.html with 40,000 points loaded in {ms:.0f} ms")
    assert browser.errors == []
    assert browser.evaluate("document.getElementById('tip-7').textContent").startswith(
        "index 4999 · handled · wasmrt/vm/store.py:"
    )
    assert browser.evaluate("document.querySelectorAll('*').length") < 2000
    browser.screenshot(shots / "strips-40k.png")


@pytest.mark.slow
def test_the_dev_sweep_report_loads_cleanly(browser: Browser, tmp_path: Path) -> None:
    """``./dev sweep``'s report (minutes of sweeping: --run-slow) in the browser; the load
    times are printed (benchmarks/bench_html_report.py is where they are measured)."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "dev.json"
    sweep = ("sweep", "corpus/", "--mode", "both", "--allocator", "both", "--jobs", "2")
    proc = oomfuzz(root, *sweep, "-q", "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:]
    site = tmp_path / "site"
    write_html(SweepReport.from_json(out.read_text()), site)
    largest = max((site / "files").glob("*.html"), key=lambda p: p.stat().st_size)
    for page in (site / "index.html", site / "strips.html", largest):
        browser.events.clear()
        ms = browser.open(page.as_uri())
        print(f"{page.relative_to(site)}: {ms:.0f} ms")
        assert browser.errors == []
    units = len(SweepReport.from_json(out.read_text()).runs)
    assert browser.evaluate("document.querySelectorAll('.strip').length") == 0  # on the file page
    browser.open((site / "strips.html").as_uri())
    assert browser.evaluate("document.querySelectorAll('.strip').length") == units
