"""The HTML report directory (issue 18): source view, sweep strips, links, escaping.

Built from a real sweep of a seeded bug (``buggy_host_reports``): the example
plugin host registers a plugin before instantiating it, so OOMs inside
instantiation are ``post_oom_failure`` at the sites that refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from buggy_host_reports import Reports, copy_example, make_reports, oomfuzz

from oomfuzz.cli import main
from oomfuzz.htmlreport import DETAILS_PER_SITE, page_name, write_html
from oomfuzz.points import PointLog
from oomfuzz.report import RunReport, SweepReport


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    return make_reports(tmp_path_factory.mktemp("buggy"))


@pytest.fixture(scope="module")
def site_dir(reports: Reports, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report"
    proc = oomfuzz(reports.example, "report", str(reports.before), "--html", str(out))
    assert proc.returncode == 1, proc.stderr  # the report holds failures
    assert f"HTML report: {out / 'index.html'}" in proc.stdout
    return out


class _Page(HTMLParser):
    """Ids, links and the class of every element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, dict[str, str]] = {}
        self.hrefs: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids[a["id"]] = a | {"tag": tag}
        if "href" in a:
            self.hrefs.append(a["href"])
        if "class" in a:
            self.classes.append(a["class"])


def parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def failing_sites(data: dict[str, Any]) -> dict[tuple[str, int], set[str]]:
    out: dict[tuple[str, int], set[str]] = {}
    for run in data["runs"]:
        for f in run["failures"]:
            site = f["iteration"]["injected"]["site"]
            out.setdefault((site["file"], site["line"]), set()).add(f["class"])
    return out


# -- the JSON carries every injection ------------------------------------------------------


def test_the_json_report_carries_every_injection_with_its_verdict_and_site(
    reports: Reports,
) -> None:
    data = reports.before_data()
    (run,) = data["runs"]  # type: ignore[index]
    log = PointLog.from_dict(run["points"])
    assert [p.index for p in log] == list(range(sum(run["counts"].values())))
    assert sum(1 for p in log if p.verdict == "handled") == run["counts"]["handled"]
    failing = {f["index"]: f for f in run["failures"]}
    assert failing  # the seeded bug was found
    for p in log:
        if p.index in failing:
            f = failing[p.index]
            assert p.verdict == f["class"]
            assert p.site is not None and p.site.to_dict() == f["iteration"]["injected"]["site"]
        else:
            assert p.verdict == "handled"
    rep = SweepReport.from_json(reports.before.read_text())
    assert SweepReport.from_json(rep.to_json()).to_dict() == rep.to_dict()


def test_shards_of_a_unit_merge_their_points_in_index_order(reports: Reports) -> None:
    (run,) = reports.before_data()["runs"]  # type: ignore[index]
    whole = RunReport.from_dict(run)
    shards = []
    for k in range(2):
        d = json.loads(json.dumps(run))
        pts = d["points"]["points"]
        d["points"]["points"] = [p for p in pts if p[0] % 2 == k]
        shards.append(RunReport.from_dict(d))
    shards[0].merge(shards[1])
    assert list(shards[0].points) == list(whole.points)


# -- the index and the source pages --------------------------------------------------------


def test_the_index_has_a_row_per_source_file_with_its_counts(
    reports: Reports, site_dir: Path
) -> None:
    data = reports.before_data()
    index = (site_dir / "index.html").read_text()
    files = {s["file"] for s in data["coverage"]["injected_sites"]}  # type: ignore[index]
    files |= {s["file"] for s in data["coverage"]["unreached"]}  # type: ignore[index]
    for f in files:
        assert f'href="{page_name(f)}"' in index
        assert (site_dir / page_name(f)).is_file()
    declared = data["coverage"]["declared"]  # type: ignore[index]
    total = re.search(r"<tfoot><tr><th>total</th><td class='num'>(\d+)</td>", index)
    assert total is not None and int(total.group(1)) == declared
    for file, line in failing_sites(data):
        row = re.search(rf'<tr><td><a href="{re.escape(page_name(file))}"[^\n]*</tr>', index)
        assert row is not None and "t-failing" in row.group(0) and "failures)" in row.group(0)
        assert f'<li><a href="{page_name(file)}#L{line}"><code>{file}:{line}</code></a>' in index


def test_a_file_page_marks_each_failing_site_and_links_each_failure_detail(
    reports: Reports, site_dir: Path
) -> None:
    data = reports.before_data()
    for (file, line), classes in failing_sites(data).items():
        page_path = site_dir / page_name(file)
        page = parse(page_path)
        mark = page.ids[f"L{line}"]
        assert mark["class"] == "site s-failing"
        assert all(c in mark["title"] for c in classes)
        text = page_path.read_text()
        for run in data["runs"]:  # type: ignore[attr-defined]
            for f in run["failures"]:
                site = f["iteration"]["injected"]["site"]
                if (site["file"], site["line"]) != (file, line):
                    continue
                anchor = f"f-0-{f['index']}"
                assert f'href="#{anchor}"' in text  # the site's note links it
                detail = re.search(
                    rf'<details class="failure" id="{anchor}">.*?</details>', text, re.S
                )
                assert detail is not None
                body = detail.group(0)
                assert f["reproducer"].replace("'", "&#x27;") in body
                assert "Allocation traceback" in body and "oomfuzz minimize " in body


def test_unreached_and_handled_sites_are_marked_in_words_too(
    reports: Reports, site_dir: Path
) -> None:
    data = reports.before_data()
    unreached = data["coverage"]["unreached"][0]  # type: ignore[index]
    page = parse(site_dir / page_name(unreached["file"]))
    mark = page.ids[f"L{unreached['line']}"]
    assert mark["class"] == "site s-unreached" and "unreached" in mark["title"]
    handled = next(s for s in data["sites"] if s["status"] == "handled")  # type: ignore[attr-defined]
    site = handled["site"]
    mark = parse(site_dir / page_name(site["file"])).ids[f"L{site['line']}"]
    assert mark["class"] == "site s-handled"
    assert f"{handled['hits']} hits, {handled['injected']} injections" in mark["title"]


def _html_files(root: Path) -> Iterator[Path]:
    yield from sorted(root.rglob("*.html"))


def test_every_link_between_the_pages_resolves(site_dir: Path) -> None:
    pages = {p: parse(p) for p in _html_files(site_dir)}
    checked = 0
    for path, page in pages.items():
        for href in page.hrefs:
            parts = urlsplit(href)
            assert not parts.scheme and not parts.netloc, f"{path}: external link {href}"
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            assert target in pages, f"{path}: broken link {href}"
            if parts.fragment and parts.fragment != "main":
                assert parts.fragment in pages[target].ids, f"{path}: no #{parts.fragment}"
            checked += 1
    assert checked > 50


def test_pages_are_self_contained(site_dir: Path) -> None:
    for path in _html_files(site_dir):
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert "@import" not in text and "url(" not in text, path


def test_the_strip_page_has_one_strip_per_unit_linking_failing_indices(
    reports: Reports, site_dir: Path
) -> None:
    data = reports.before_data()
    text = (site_dir / "strips.html").read_text()
    runs = data["runs"]  # type: ignore[index]
    assert text.count('class="strip"') == len(runs)
    blob = re.search(r'<script type="application/json" id="strip-data">(.*?)</script>', text, re.S)
    assert blob is not None
    doc = json.loads(blob.group(1))
    for unit, run in zip(doc["units"], runs, strict=True):
        verdicts = [doc["verdicts"][v] for v in unit["v"]]
        assert len(verdicts) == len(run["points"]["points"])
        failing = {f["index"] for f in run["failures"]}
        assert {i for i, v in enumerate(verdicts) if v != "handled"} == failing
    first = min(f["index"] for f in runs[0]["failures"])
    seg = re.search(rf'<a class="seg v-fail"[^>]*data-a="{first}"[^>]*>', text)
    assert seg is not None and f"#f-0-{first}" in seg.group(0)
    site = next(f for f in runs[0]["failures"] if f["index"] == first)["site"]
    assert f"{first}: post_oom_failure" in seg.group(0) or f"{first}–" in seg.group(0)
    assert f"post_oom_failure at {site}" in seg.group(0) or f"at {site};" in seg.group(0)


def test_many_points_make_few_elements(tmp_path: Path) -> None:
    """Tens of thousands of injections: the strip is one element per run of equal verdicts."""
    d: dict[str, Any] = {"scenario": "big.wast", "mode": "transient", "allocator": "ondemand"}
    n = 40_000
    fails = set(range(777, n, 5000))
    d["counts"] = {"handled": n - len(fails), "missed_oom": len(fails)}
    site = {"file": "wasmrt/vm/store.py", "line": 1, "function": "f"}
    d["points"] = {
        "verdicts": ["handled", "missed_oom"],
        "sites": [site],
        "points": [[i, int(i in fails), 0] for i in range(n)],
    }
    rep = SweepReport(runs=[RunReport.from_dict(d)])
    write_html(rep, tmp_path / "out")
    text = (tmp_path / "out" / "strips.html").read_text()
    assert text.count('class="seg ') == 2 * len(fails) + 1
    assert len(text) < 40 * n  # a few bytes per point, in the JSON array


# -- escaping, missing sources, the one-page form ----------------------------------------------

HOSTILE = """\
# oomfuzz: allocator=ondemand
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory


def scenario(ctx):
    try:
        try_alloc(8, AllocKind.LIST)  # <script>alert("x")</script> & more
    except OutOfMemory:
        pass  # ignored: missed_oom
"""


def test_code_under_test_is_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scn = tmp_path / "hostile.py"
    scn.write_text(HOSTILE)
    out_json = tmp_path / "r.json"
    assert main(["sweep", str(scn), "-q", "--json", str(out_json)]) == 1  # missed_oom
    assert main(["report", str(out_json), "--html", str(tmp_path / "site")]) == 1
    capsys.readouterr()
    page = tmp_path / "site" / page_name(str(scn).replace("\\", "/"))
    text = page.read_text()
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in text
    assert parse(page).ids["L8"]["class"] == "site s-failing"


def test_a_report_whose_sources_are_gone_still_renders(reports: Reports, tmp_path: Path) -> None:
    text = reports.before.read_text().replace("wasmrt/runtime/linker.py", "gone/linker.py")
    rep = SweepReport.from_json(text)
    write_html(rep, tmp_path / "site")
    path = tmp_path / "site" / page_name("gone/linker.py")
    page = path.read_text()
    assert "was not found when this report was written" in page
    assert "_Def.materialize" in page and "t-failing" in page
    ids = parse(path).ids
    for href in parse(path).hrefs:  # the sites list and the notes still lead somewhere
        if href.startswith("#"):
            assert href[1:] in ids or href == "#main", href


def test_an_html_file_name_keeps_the_one_page_report(reports: Reports, tmp_path: Path) -> None:
    out = tmp_path / "one.html"
    proc = oomfuzz(reports.example, "report", str(reports.before), "--html", str(out))
    assert proc.returncode == 1
    assert "<h2>Allocation sites</h2>" in out.read_text()
    assert not (tmp_path / "files").exists()


def test_an_existing_file_is_no_report_directory(reports: Reports, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    proc = oomfuzz(reports.example, "report", str(reports.before), "--html", str(target))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "not a directory" in proc.stderr
    assert proc.stdout == ""


def test_failure_details_are_capped_per_site_and_class(tmp_path: Path) -> None:
    scn = tmp_path / "many.py"
    scn.write_text(
        "# oomfuzz: allocator=ondemand\nfrom wasmrt.alloc import AllocKind, try_alloc\n"
        "from wasmrt.errors import OutOfMemory\n\n\ndef scenario(ctx):\n"
        f"    for _ in range({DETAILS_PER_SITE + 5}):\n"
        "        try:\n            try_alloc(8, AllocKind.LIST)\n"
        "        except OutOfMemory:\n            pass\n"
    )
    out = tmp_path / "r.json"
    assert main(["sweep", str(scn), "-q", "--mode", "transient", "--json", str(out)]) == 1
    write_html(SweepReport.from_json(out.read_text()), tmp_path / "site")
    text = (tmp_path / "site" / page_name(str(scn).replace("\\", "/"))).read_text()
    assert text.count('<details class="failure"') == DETAILS_PER_SITE
    assert "5 more failures at this site are not detailed here" in text
    assert "missed_oom ×25" in text


def test_a_report_without_points_says_so_instead_of_a_strip(
    reports: Reports, tmp_path: Path
) -> None:
    data = reports.before_data()
    for run in data["runs"]:  # type: ignore[attr-defined]
        del run["points"]  # as an older oomfuzz wrote it
    write_html(SweepReport.from_json(json.dumps(data)), tmp_path / "site")
    text = (tmp_path / "site" / "strips.html").read_text()
    assert 'class="strip"' not in text
    assert "does not record each index's verdict" in text


def test_sweep_writes_the_directory_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scn = tmp_path / "hostile.py"
    scn.write_text(HOSTILE)
    out = tmp_path / "site"
    assert main(["sweep", str(scn), "-q", "--html", str(out)]) == 1
    capsys.readouterr()
    assert (out / "index.html").is_file() and (out / "strips.html").is_file()
    assert parse(out / page_name(str(scn).replace("\\", "/"))).ids["L8"]["class"] == (
        "site s-failing"
    )


def test_report_minimize_puts_the_minimized_scenario_in_the_detail(
    reports: Reports, tmp_path: Path
) -> None:
    buggy = copy_example(tmp_path / "buggy")  # the scenario as it was swept, bug included
    out = tmp_path / "site"
    args = ("report", str(reports.before), "--html", str(out), "--minimize", "1")
    proc = oomfuzz(buggy, *args)
    assert proc.returncode == 1, proc.stderr
    texts = "".join(p.read_text() for p in (out / "files").glob("*.html"))
    details = re.findall(r'<details class="failure".*?</details>', texts, re.S)
    small = [d for d in details if "Minimized scenario" in d]
    assert len(small) == 1  # one (site, class) group asked for
    # The walkthrough's minimization: only the step that fails is kept.
    assert "# oomfuzz: steps=load_counter\n" in small[0]
    assert all("oomfuzz minimize scenario_buggy_host.py" in d for d in details if d not in small)


def test_files_whose_page_names_collide_get_a_page_each(reports: Reports, tmp_path: Path) -> None:
    text = reports.before.read_text()
    # wasmrt/vm/memory.py and a file named wasmrt_vm/memory.py would share a page name.
    other = text.replace('"wasmrt/vm/memory.py"', '"wasmrt_vm/memory.py"')
    a, b = SweepReport.from_json(text), SweepReport.from_json(other)
    for r in b.runs:
        r.mode = "persistent"  # another unit of the same report
        for f in r.failures:
            f.iteration.mode = "persistent"
        a.add(r)
    write_html(a, tmp_path / "site")
    pages = sorted(p.name for p in (tmp_path / "site" / "files").glob("wasmrt_vm_memory.py*"))
    assert pages == ["wasmrt_vm_memory.py-2.html", "wasmrt_vm_memory.py.html"]
