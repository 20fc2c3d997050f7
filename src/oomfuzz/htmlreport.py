"""The HTML report as a small static site: every allocation site in its source, a strip
per unit, and what changed since a baseline.

``oomfuzz report OUT.json --html DIR`` (and ``sweep --html DIR``) writes:

- ``index.html``: the summary, one row per source file of the code under test
  (sites, reached, handled, failing, unreached, with a bar), failures that
  refused no allocation, setup errors, and "what changed" when a baseline is
  given;
- ``files/<name>.html``: a file's source with each allocation site's line
  marked unreached / reached / handled (hits, injections) / failing (failure
  classes, a link to each failure's detail: findings, tracebacks, the
  reproducer line, and the minimized scenario when ``report --minimize N``
  made one, else the ``oomfuzz minimize`` line);
- ``strips.html``: per scenario × mode × allocator, its injection indices
  coloured by verdict; hovering, or focusing the strip and moving with the
  arrow keys, names the index, its site and its verdict;
- ``summary.html``: the one-page report (``SweepReport.to_html``).

Invariants:
- Self-contained: inline CSS and JS, no request leaves the directory, pages
  link to each other by relative paths; the source lines shown are embedded
  when the pages are written (``oomfuzz.sources`` finds them on this
  machine), so the directory renders anywhere.
- Every string from the report or the code under test is escaped.
- Size grows with sites, failures and files, not with injection points: a
  strip is one element per run of equal verdicts (a failing run is a link),
  its per-index detail one compact JSON array read by the script on demand;
  failure details are written for the first ``DETAILS_PER_SITE`` failures of
  each site and class, the rest counted (all are in the JSON).
- Keyboard: a skip link on every page, every site line and strip is focusable,
  every failure detail is reachable by links; colours come from CSS variables
  with a ``prefers-color-scheme: dark`` palette, and status is also written
  in words, never in colour alone.
- A path ending in ``.html``/``.htm`` keeps the one-file report; anything else
  is a directory (created if missing).
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from oomfuzz.diff import ReportDiff
from oomfuzz.report import FailureRecord, RunReport, SweepReport
from oomfuzz.sitemap import STATUSES, FileView, SiteMap, SiteView, site_map
from oomfuzz.sources import read_source

__all__ = ["DETAILS_PER_SITE", "is_single_file", "page_name", "write_html"]

#: Failure details written per (site, failure class); the rest are counted.
DETAILS_PER_SITE = 20

_e = html.escape

CSS = """
:root{--bg:#fff;--fg:#1b1b1b;--muted:#5c5c5c;--line:#d0d0d0;--code:#f5f5f5;
--failing:#c62828;--failing-bg:#fde2e2;--handled:#2e7d32;--handled-bg:#e1f3e2;
--reached:#8a6d00;--reached-bg:#fff3c4;--unreached:#6b6b6b;--unreached-bg:#ececec;
--excluded:#4a5a8a;--excluded-bg:#e4e8f5;--crash:#6a1b9a;--link:#0b57d0;--focus:#e8710a}
@media (prefers-color-scheme: dark){:root{--bg:#16181c;--fg:#e6e6e6;--muted:#a8a8a8;
--line:#3a3d44;--code:#1f2227;--failing:#ff6b6b;--failing-bg:#4a1f22;--handled:#6ccf72;
--handled-bg:#1c3a22;--reached:#e8c547;--reached-bg:#3d3414;--unreached:#9a9a9a;
--unreached-bg:#2b2d31;--excluded:#9fb0e8;--excluded-bg:#262c40;--crash:#d59cf5;
--link:#8ab4f8;--focus:#ffb74d}}
*{box-sizing:border-box}
body{background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,sans-serif;margin:0}
a{color:var(--link)}
:focus-visible{outline:3px solid var(--focus);outline-offset:1px}
.skip{position:absolute;left:-999px;top:0;background:var(--bg);padding:.4em}
.skip:focus{left:.5em}
header{border-bottom:1px solid var(--line);padding:.5em 1.5em}
header nav a{margin-right:1em}
main{padding:0 1.5em 3em}
h1{font-size:1.4em}h1 code{font-size:inherit}h2{font-size:1.15em;margin-top:1.6em}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:.5em 0}
th,td{border-bottom:1px solid var(--line);padding:.25em .6em;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-flex;width:14em;height:.9em;border:1px solid var(--line);
vertical-align:middle;background:var(--unreached-bg)}
.bar span{display:block;height:100%}
.b-failing{background:var(--failing)}.b-handled{background:var(--handled)}
.b-reached{background:var(--reached)}.b-excluded{background:var(--excluded)}
.b-unreached{background:var(--unreached-bg)}
.t-failing{color:var(--failing);font-weight:600}.t-handled{color:var(--handled)}
.t-reached{color:var(--reached)}.t-unreached{color:var(--unreached)}
.t-excluded{color:var(--excluded)}
.legend span{margin-right:1.2em}
.sw{display:inline-block;width:.9em;height:.9em;vertical-align:-.1em;margin-right:.3em}
pre.src{background:var(--code);padding:.5em 0;overflow-x:auto;border:1px solid var(--line)}
pre.src .n{display:inline-block;width:4.5em;padding-right:1em;text-align:right;
color:var(--muted);user-select:none}
pre.src .site{display:inline-block;min-width:100%;border-left:4px solid transparent}
pre.src .site.s-failing{background:var(--failing-bg);border-color:var(--failing)}
pre.src .site.s-handled{background:var(--handled-bg);border-color:var(--handled)}
pre.src .site.s-reached{background:var(--reached-bg);border-color:var(--reached)}
pre.src .site.s-unreached{background:var(--unreached-bg);border-color:var(--unreached)}
pre.src .site.s-excluded{background:var(--excluded-bg);border-color:var(--excluded)}
pre.src .site:target{outline:2px solid var(--focus)}
pre.src .note{display:block;white-space:normal;
font:13px/1.4 system-ui,sans-serif;margin:0 0 .2em 5.5em;padding:.15em .6em;border-left:4px solid var(--line)}
.note.s-failing{border-color:var(--failing)}.note.s-handled{border-color:var(--handled)}
details.failure{border:1px solid var(--line);border-left:4px solid var(--failing);
margin:.5em 0;padding:.3em .8em}
details.failure:target{outline:2px solid var(--focus)}
details.failure pre{background:var(--code);padding:.5em;overflow-x:auto}
.muted{color:var(--muted)}
.unit{margin:.9em 0}
.unit .label{font-size:.9em}
.strip{display:flex;height:1.6em;border:1px solid var(--line);background:var(--unreached-bg);
position:relative;cursor:crosshair}
.seg{display:block;height:100%;min-width:1px}
.seg+.seg{box-shadow:inset 1px 0 0 var(--bg)}
.seg.v-handled,.seg.v-allowed{background:var(--handled)}
.seg.v-not_reached{background:var(--unreached)}
.seg.v-fail{background:var(--failing);min-width:3px}
.seg.v-crash{background:var(--crash);min-width:3px}
.cursor{position:absolute;top:-3px;bottom:-3px;width:2px;background:var(--fg);display:none;
pointer-events:none}
.strip:focus-within .cursor{display:block}
.tip{display:block;min-height:1.4em;font-size:.85em;color:var(--muted)}
#hover{position:fixed;z-index:9;display:none;background:var(--bg);color:var(--fg);
border:1px solid var(--line);padding:.2em .5em;font-size:.85em;pointer-events:none;
max-width:40em}
"""

# The strip: one JSON array of units; per unit its indices (``i``, omitted when
# 0..n-1), verdict codes (``v``, into ``verdicts``) and site numbers (``s``,
# into ``sites``; -1: none). Runs of equal verdicts are the segments; the
# script maps a pointer position or a cursor position to an index.
JS = r"""
(function(){
var data=document.getElementById('strip-data');if(!data)return;
var D=JSON.parse(data.textContent),hover=document.getElementById('hover');
function idx(u,p){return u.i?u.i[p]:p}
function describe(k,p){var u=D.units[k],s=u.s[p],site=s<0?'no allocation refused':D.sites[s];
return 'index '+idx(u,p)+' \u00b7 '+D.verdicts[u.v[p]]+' \u00b7 '+site}
function at(strip,x){var segs=strip.querySelectorAll('.seg');
for(var j=0;j<segs.length;j++){var r=segs[j].getBoundingClientRect();
if(x>=r.left&&x<r.right){var a=+segs[j].dataset.a,n=+segs[j].dataset.n;
return Math.min(a+n-1,a+Math.floor((x-r.left)/Math.max(r.width,1)*n))}}return -1}
function place(strip,p){var segs=strip.querySelectorAll('.seg');
for(var j=0;j<segs.length;j++){var a=+segs[j].dataset.a,n=+segs[j].dataset.n;
if(p>=a&&p<a+n){var c=strip.querySelector('.cursor');
c.style.left=(segs[j].offsetLeft+segs[j].offsetWidth*(p-a+0.5)/n)+'px';return segs[j]}}return null}
function show(strip,p){var k=+strip.dataset.u;strip.dataset.p=p;place(strip,p);
var t=document.getElementById('tip-'+k);if(t)t.textContent=describe(k,p)}
document.querySelectorAll('.strip').forEach(function(strip){
var k=+strip.dataset.u,n=D.units[k].v.length;if(!n)return;
strip.addEventListener('mousemove',function(ev){var p=at(strip,ev.clientX);
if(p<0){hover.style.display='none';return}
hover.textContent=describe(k,p);hover.style.display='block';
hover.style.left=(ev.clientX+12)+'px';hover.style.top=(ev.clientY+14)+'px'});
strip.addEventListener('mouseleave',function(){hover.style.display='none'});
strip.addEventListener('focus',function(){show(strip,+(strip.dataset.p||0))});
strip.querySelectorAll('a.seg').forEach(function(seg){seg.addEventListener('focus',function(){
show(strip,+seg.dataset.a)})});
strip.addEventListener('keydown',function(ev){var p=+(strip.dataset.p||0),q=p;
if(ev.key==='ArrowRight')q=p+(ev.shiftKey?10:1);else if(ev.key==='ArrowLeft')q=p-(ev.shiftKey?10:1);
else if(ev.key==='Home')q=0;else if(ev.key==='End')q=n-1;
else if(ev.key==='Enter'){var seg=place(strip,p);if(seg&&seg.href){location.href=seg.href}return}
else return;ev.preventDefault();show(strip,Math.max(0,Math.min(n-1,q)))})});
var m=/^#u(\d+)(?::(\d+))?$/.exec(location.hash);
if(m){var st=document.querySelector('.strip[data-u="'+m[1]+'"]');
if(st){var u=D.units[+m[1]],p=0;if(m[2]!==undefined){for(var j=0;j<u.v.length;j++){
if(idx(u,j)==+m[2]){p=j;break}}}st.dataset.p=p;st.focus();show(st,p)}}
})();
"""


def is_single_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``--html PATH`` asks for the one-file report rather than a directory."""
    return str(path).lower().endswith((".html", ".htm"))


def write_html(
    report: SweepReport,
    path: str | os.PathLike[str],
    *,
    diff: ReportDiff | None = None,
    baseline_name: str = "",
    source_dirs: Sequence[str | os.PathLike[str]] = (),
    minimized: Mapping[tuple[str, str, str, int], str] | None = None,
) -> Path:
    """Write the report to ``path`` (one file, or a directory); the page to open.

    ``minimized``: minimized scenario texts by (scenario, mode, allocator, index), shown
    in those failures' details (``oomfuzz.minimize.minimize_failures`` makes them)."""
    out = Path(path)
    if is_single_file(out):
        out.write_text(report.to_html(), encoding="utf-8")
        return out
    return _Site(report, diff, baseline_name, source_dirs, minimized or {}).write(out)


def page_name(file: str) -> str:
    """The page of a source file, relative to the report directory (unless another
    file of the report has the same name, then it gets a ``-N`` suffix)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", file.strip("<>")).strip("_") or "file"
    return f"files/{slug}.html"


def _pages(files: list[str]) -> dict[str, str]:
    """Each file's page: ``page_name``, with ``-2``, ``-3``... where two names collide."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for f in files:
        name = page_name(f)
        k = 1
        while name.lower() in taken:  # case-insensitive file systems
            k += 1
            name = page_name(f).removesuffix(".html") + f"-{k}.html"
        taken.add(name.lower())
        out[f] = name
    return out


def _page(title: str, body: list[str], depth: int = 0) -> str:
    up = "../" * depth
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="color-scheme" content="light dark">',
            f"<title>{_e(title)} — oomfuzz</title><style>{CSS}</style></head><body>",
            '<a class="skip" href="#main">Skip to content</a>',
            f'<header><nav aria-label="report"><a href="{up}index.html">Files</a>'
            f'<a href="{up}strips.html">Sweep strips</a>'
            f'<a href="{up}summary.html">One-page summary</a></nav></header>',
            '<main id="main" tabindex="-1">',
            *body,
            "</main>",
            f"<script>{JS}</script></body></html>",
        ]
    )


def _bar(counts: dict[str, int], total: int) -> str:
    label = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))
    spans = "".join(
        f'<span class="b-{s}" style="width:{100 * counts[s] / total:.2f}%"></span>'
        for s in STATUSES
        if total and counts.get(s)
    )
    return f'<span class="bar" role="img" aria-label="{_e(label)}">{spans}</span>'


def _legend() -> str:
    words = {
        "failing": "failing: an injection there was not handled",
        "handled": "handled: every injection there was handled",
        "reached": "reached: hit, never injected (sampled or bounded sweep)",
        "excluded": "excluded: never hit, excluded with a reason",
        "unreached": "unreached: no scenario hit it",
    }
    return (
        '<p class="legend">'
        + "".join(
            f'<span><span class="sw b-{s}" aria-hidden="true"></span>{_e(w)}</span>'
            for s, w in words.items()
        )
        + "</p>"
    )


class _Site:
    """One rendering of a report into a directory."""

    def __init__(
        self,
        report: SweepReport,
        diff: ReportDiff | None,
        baseline_name: str,
        source_dirs: Sequence[str | os.PathLike[str]],
        minimized: Mapping[tuple[str, str, str, int], str],
    ) -> None:
        self.report = report
        self.minimized = minimized
        self.diff = diff
        self.baseline_name = baseline_name
        self.source_dirs = source_dirs
        self.map: SiteMap = site_map(report)
        self.pages = _pages([fv.file for fv in self.map.files])
        self.unit_no = {r.key: k for k, r in enumerate(report.runs)}
        # (unit number, index) -> where its failure is explained (a detail or a site line).
        self.detail_href: dict[tuple[int, int], str] = {}
        self.written: set[tuple[int, int]] = set()
        self._plan_details()

    def _unit_of(self, f: FailureRecord) -> int:
        return self.unit_no.get((f.scenario, f.mode, f.allocator), -1)

    def _plan_details(self) -> None:
        for fv in self.map.files:
            page = self.pages[fv.file]
            for sv in fv.sites:
                shown: dict[str, int] = {}
                for f in sv.failures:
                    key = (self._unit_of(f), f.index)
                    n = shown.get(f.cls.value, 0)
                    if n < DETAILS_PER_SITE:
                        shown[f.cls.value] = n + 1
                        self.written.add(key)
                        self.detail_href[key] = f"{page}#f-{key[0]}-{key[1]}"
                    else:
                        self.detail_href[key] = f"{page}#L{sv.site.line}"
        for f in self.map.siteless:
            key = (self._unit_of(f), f.index)
            self.written.add(key)
            self.detail_href[key] = f"index.html#f-{key[0]}-{key[1]}"

    # -- writing -------------------------------------------------------------------------

    def write(self, out: Path) -> Path:
        (out / "files").mkdir(parents=True, exist_ok=True)
        for fv in self.map.files:
            (out / self.pages[fv.file]).write_text(self.file_page(fv), encoding="utf-8")
        (out / "strips.html").write_text(self.strips_page(), encoding="utf-8")
        (out / "summary.html").write_text(self.report.to_html(), encoding="utf-8")
        index = out / "index.html"
        index.write_text(self.index_page(), encoding="utf-8")
        return index

    # -- index -----------------------------------------------------------------------------

    def index_page(self) -> str:
        rep, s = self.report, self.report.summary()
        body = [
            "<h1>oomfuzz report</h1>",
            f"<p><code>{_e(rep.command)}</code> — {rep.elapsed:.1f}s</p>",
            "<p>"
            + " · ".join(
                [
                    f"{s.runs} units (scenario × mode × allocator)",
                    f"{s.injection_points} injection points",
                    f'<span class="t-handled">{s.handled} handled</span>',
                    f'<span class="t-failing">{s.failures} failing</span>'
                    if s.failures
                    else "0 failing",
                    f"site coverage {_e(s.coverage_text())}",
                ]
            )
            + "</p>",
        ]
        if self.diff is not None:
            body += self.diff_section(self.diff)
        body += self.failing_sites()
        body += self.files_table()
        if self.map.siteless:
            body.append(f"<h2>Failures that refused no allocation ({len(self.map.siteless)})</h2>")
            body += [self.detail(f) for f in self.map.siteless]
        errors = [r for r in rep.runs if r.error]
        if errors:
            body.append(f"<h2>Setup errors ({len(errors)})</h2><ul>")
            body += [
                f"<li>{_e(r.scenario)} [{_e(r.mode)}/{_e(r.allocator)}]<pre>{_e(r.error or '')}</pre></li>"
                for r in errors
            ]
            body.append("</ul>")
        return _page("oomfuzz report", body)

    def failing_sites(self) -> list[str]:
        """Every failing site, worst first, each a link to its line."""
        failing = [(fv, sv) for fv in self.map.files for sv in fv.sites if sv.failures]
        if not failing:
            return []
        failing.sort(key=lambda p: (-len(p[1].failures), p[1].site.file, p[1].site.line))
        out = [f"<h2>Failing sites ({len(failing)})</h2><ol>"]
        for fv, sv in failing:
            href = f"{self.pages[fv.file]}#L{sv.site.line}"
            classes = ", ".join(f"{c} ×{n}" for c, n in sorted(sv.classes.items()))
            out.append(
                f'<li><a href="{_e(href)}"><code>{_e(fv.file)}:{sv.site.line}</code></a> '
                f"<code>{_e(sv.site.function)}</code> — "
                f'<span class="t-failing">{_e(classes)}</span></li>'
            )
        out.append("</ol>")
        return out

    def files_table(self) -> list[str]:
        files = self.map.files
        out = [
            f"<h2>Allocation sites by source file ({len(files)} files)</h2>",
            _legend(),
            "<table><thead><tr><th>file</th><th class='num'>sites</th><th class='num'>reached</th>"
            "<th class='num'>handled</th><th class='num'>failing</th>"
            "<th class='num'>unreached</th><th>sites by status</th></tr></thead><tbody>",
        ]
        total: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for fv in files:
            counts = {st: fv.count(st) for st in STATUSES}
            for st, n in counts.items():
                total[st] += n
            out.append(self._file_row(fv, counts))
        n = sum(total.values())
        reached = total["failing"] + total["handled"] + total["reached"]
        out.append(
            f"</tbody><tfoot><tr><th>total</th><td class='num'>{n}</td>"
            f"<td class='num'>{reached}</td><td class='num'>{total['handled']}</td>"
            f"<td class='num'>{total['failing']}</td>"
            f"<td class='num'>{total['unreached'] + total['excluded']}</td>"
            f"<td>{_bar(total, n)}</td></tr></tfoot></table>"
        )
        return out

    def _file_row(self, fv: FileView, counts: dict[str, int]) -> str:
        n = len(fv.sites)
        failing = counts["failing"]
        cls = ' class="t-failing"' if failing else ""
        excluded = (
            f" <span class='muted'>(+{counts['excluded']} excluded)</span>"
            if counts["excluded"]
            else ""
        )
        return (
            f'<tr><td><a href="{_e(self.pages[fv.file])}"{cls}><code>{_e(fv.file)}</code></a></td>'
            f"<td class='num'>{n}</td><td class='num'>{fv.reached}</td>"
            f"<td class='num'>{counts['handled']}</td>"
            f"<td class='num'>{failing}{' (' + str(fv.failures) + ' failures)' if failing else ''}"
            f"</td><td class='num'>{counts['unreached']}{excluded}</td>"
            f"<td>{_bar(counts, n)}</td></tr>"
        )

    def diff_section(self, d: ReportDiff) -> list[str]:
        base = f" (baseline <code>{_e(self.baseline_name)}</code>)" if self.baseline_name else ""
        verdict = (
            '<p class="t-failing">Regressed: ' + _e(", ".join(d.reasons())) + "</p>"
            if d.regressed
            else '<p class="t-handled">No regression.</p>'
        )
        out = [
            f'<section aria-labelledby="changed"><h2 id="changed">What changed{base}</h2>',
            verdict,
        ]
        for title, changes in (
            ("New failures", d.new_failures),
            ("Fixed failures", d.fixed_failures),
        ):
            out.append(f"<h3>{title} ({len(changes)})</h3>")
            if changes:
                out.append("<ul>")
                out += [
                    f"<li><span class='{'t-failing' if title.startswith('New') else 't-handled'}'>"
                    f"{_e(c.key.cls)}</span> at <code>{_e(c.key.site)}</code> in "
                    f"{_e(c.key.scenario)} [{_e(c.key.mode)}/{_e(c.key.allocator)}] ×{c.count}"
                    f"<br><code>{_e(c.example.reproducer)}</code></li>"
                    for c in changes
                ]
                out.append("</ul>")
        lists = (
            ("New setup errors", [f"{u[0]} [{u[1]}/{u[2]}]: {e}" for u, e in d.new_errors]),
            ("Sites appeared", d.sites_appeared),
            ("Sites disappeared", d.sites_disappeared),
            ("Sites no longer injected", d.newly_unreached),
            ("Sites newly injected", d.newly_injected),
            ("Units added", [f"{u[0]} [{u[1]}/{u[2]}]" for u in d.units_added]),
            ("Units dropped (not compared)", [f"{u[0]} [{u[1]}/{u[2]}]" for u in d.units_dropped]),
        )
        for title, items in lists:
            if items:
                out.append(f"<h3>{title} ({len(items)})</h3><ul>")
                out += [f"<li><code>{_e(x)}</code></li>" for x in items]
                out.append("</ul>")
        (p0, p1), (t0, t1) = d.points, d.elapsed
        out.append(
            f"<p>Coverage {_e(d.coverage_text(0))} → {_e(d.coverage_text(1))}; "
            f"cost {p0} → {p1} injection points ({p1 - p0:+d}), "
            f"{t0:.1f}s → {t1:.1f}s ({t1 - t0:+.1f}s).</p></section>"
        )
        return out

    # -- file pages ------------------------------------------------------------------------

    def file_page(self, fv: FileView) -> str:
        counts = {st: fv.count(st) for st in STATUSES}
        summary = ", ".join(
            f'<span class="t-{st}">{counts[st]} {st}</span>' for st in STATUSES if counts[st]
        )
        body = [
            f"<h1><code>{_e(fv.file)}</code></h1>",
            f"<p>{len(fv.sites)} allocation sites: {summary} {_bar(counts, len(fv.sites))}</p>",
            '<nav aria-label="sites in this file"><h2>Sites</h2><ol>',
        ]
        for sv in fv.sites:
            body.append(
                f'<li><a href="#L{sv.site.line}">line {sv.site.line}</a> '
                f"<code>{_e(sv.site.function)}</code> — "
                f'<span class="t-{sv.status}">{_e(self._status_words(sv))}</span></li>'
            )
        body.append("</ol></nav><h2>Source</h2>")
        lines = None if fv.file.startswith("<") else read_source(fv.file, self.source_dirs)
        if lines is None:
            body.append(
                f"<p class='muted'>The source of <code>{_e(fv.file)}</code> was not found when "
                "this report was written (generated code, or not installed here).</p>"
            )
        body.append(self.source(fv, lines or []))
        failing = [sv for sv in fv.sites if sv.failures]
        if failing:
            body.append(f'<h2 id="failures">Failures at these sites ({fv.failures})</h2>')
            for sv in failing:
                body += self.site_failures(sv)
        return _page(fv.file, body, depth=1)

    @staticmethod
    def _status_words(sv: SiteView) -> str:
        st = sv.status
        if st == "failing":
            classes = ", ".join(f"{c} ×{n}" for c, n in sorted(sv.classes.items()))
            return f"failing: {classes}"
        if st == "handled":
            return f"handled: {sv.hits} hits, {sv.injected} injections"
        if st == "reached":
            return f"reached: {sv.hits} hits, never injected"
        if st == "excluded":
            return f"excluded: {sv.reason}"
        return "unreached: no scenario hit it"

    def source(self, fv: FileView, lines: list[str]) -> str:
        # A plain line ends with its newline; a site line ends with its notes, which are
        # blocks (a newline after them would show as an empty line).
        marks = fv.by_line()
        width = len(str(len(lines)))
        out = ['<pre class="src">']
        for no, text in enumerate(lines, 1):
            n = f'<span class="n">{no:>{width}}</span>'
            sites = marks.get(no)
            if sites is None:
                out.append(f"{n}{_e(text)}\n")
                continue
            st = min((s.status for s in sites), key=STATUSES.index)
            words = "; ".join(self._status_words(s) for s in sites)
            out.append(
                f'<span class="site s-{st}" id="L{no}" tabindex="0" '
                f'title="{_e(words)}">{n}{_e(text)}</span>' + "".join(self.note(s) for s in sites)
            )
        why = "(beyond the end of the file: the source changed since the sweep)"
        if not lines:
            why = "(source not available)"
        for line in sorted(k for k in marks if k > len(lines)):
            sites = marks[line]
            st = min((x.status for x in sites), key=STATUSES.index)
            out.append(
                f'<span class="site s-{st}" id="L{line}" tabindex="0">'
                f'<span class="n">{line}</span>{why}</span>' + "".join(self.note(x) for x in sites)
            )
        out.append("</pre>")
        return "".join(out)

    def note(self, sv: SiteView) -> str:
        via = f" · {_e(sv.via)}" if sv.via else ""
        kinds = f" · {_e(', '.join(sorted(sv.kinds)))}" if sv.kinds else ""
        absorbing = " (absorbing)" if sv.absorbing else ""
        text = (
            f'<span class="t-{sv.status}">{_e(sv.status)}</span> '
            f"<code>{_e(sv.site.function)}</code>{via}{kinds}{absorbing} · {sv.hits} hits · "
            f"{sv.injected} injections"
        )
        if sv.status == "excluded":
            text += f" · excluded: {_e(sv.reason)}"
        links = []
        for cls, n in sorted(sv.classes.items()):
            mine = [f for f in sv.failures if f.cls.value == cls]
            refs = [
                f'<a href="#f-{k[0]}-{k[1]}">#{f.index}</a>'
                for f in mine
                if (k := (self._unit_of(f), f.index)) in self.written
            ]
            more = f" and {n - len(refs)} more" if n > len(refs) else ""
            links.append(f'<span class="t-failing">{_e(cls)} ×{n}</span>: {" ".join(refs)}{more}')
        if links:
            text += "<br>" + "<br>".join(links)
        return f'<span class="note s-{sv.status}">{text}</span>'

    def site_failures(self, sv: SiteView) -> list[str]:
        out = [
            f'<h3><a href="#L{sv.site.line}">line {sv.site.line}</a> '
            f"<code>{_e(sv.site.function)}</code></h3>"
        ]
        hidden = 0
        for f in sv.failures:
            if (self._unit_of(f), f.index) in self.written:
                out.append(self.detail(f))
            else:
                hidden += 1
        if hidden:
            out.append(
                f"<p class='muted'>{hidden} more failures at this site are not detailed here; "
                "all of them are in the JSON report (<code>oomfuzz report OUT.json --show 0</code>"
                " prints every one).</p>"
            )
        return out

    def detail(self, f: FailureRecord) -> str:
        it, inj = f.iteration, f.iteration.injected
        u = self._unit_of(f)
        head = (
            f"<b class='t-failing'>{_e(f.cls.value)}</b> {_e(f.scenario)} "
            f"[{_e(f.mode)}/{_e(f.allocator)}] index {f.index}"
        )
        parts = [f'<details class="failure" id="f-{u}-{f.index}"><summary>{head}</summary>']
        if inj is not None:
            parts.append(
                f"<p>Refused: {_e(inj.kind)}, {inj.size} bytes at <code>{_e(str(inj.site))}</code>"
                f"{' (absorbing)' if inj.absorbing else ''}</p>"
            )
        findings = [x for x in it.findings if x.cls.is_failure]
        if findings:
            parts.append("<ul>")
            parts += [f"<li>{_e(x.cls.value)}: {_e(x.detail)}</li>" for x in findings]
            parts.append("</ul>")
        parts.append(f"<p>Reproduce:</p><pre>{_e(f.reproducer)}</pre>")
        small = self.minimized.get((f.scenario, f.mode, f.allocator, f.index))
        if small is not None and not small.startswith("not minimized:"):
            parts.append(
                "<p>Minimized scenario (the same failure class at the same site):</p>"
                f"<pre>{_e(small)}</pre>"
            )
        elif f.scenario.endswith((".wast", ".py")):
            why = f" ({_e(small)})" if small else ""
            parts.append(
                f"<p>Minimize (a smaller scenario with the same failure at the same site){why}:"
                f"</p><pre>{_e(_minimize_line(f))}</pre>"
            )
        if inj is not None and inj.traceback:
            parts.append(f"<p>Allocation traceback</p><pre>{_e(inj.traceback)}</pre>")
        if it.exc_traceback:
            parts.append(
                f"<p>Exception raised by the scenario</p><pre>{_e(it.exc_traceback)}</pre>"
            )
        parts.append("</details>")
        return "".join(parts)

    # -- strips ----------------------------------------------------------------------------

    def strips_page(self) -> str:
        sites: dict[str, int] = {}
        verdicts: dict[str, int] = {}
        units = []
        body = [
            "<h1>Sweep strips</h1>",
            "<p>One strip per scenario × mode × allocator: its injection indices left to right, "
            '<span class="t-handled">handled</span>, <span class="t-failing">failing</span> '
            "(a link to the failure), crashed or timed out (purple), not reached (grey). "
            "Hover a strip, or focus it (Tab) and move with ←/→ (Shift: 10), Home/End; "
            "Enter opens a failing index's detail.</p>",
        ]
        for k, r in enumerate(self.report.runs):
            pts = list(r.points)
            codes = [verdicts.setdefault(p.verdict, len(verdicts)) for p in pts]
            site_nos = [
                -1 if p.site is None else sites.setdefault(str(p.site), len(sites)) for p in pts
            ]
            indices = [p.index for p in pts]
            unit: dict[str, object] = {"v": codes, "s": site_nos}
            if indices != list(range(len(indices))):
                unit["i"] = indices
            units.append(unit)
            body.append(self.strip(k, r))
        doc = {"verdicts": list(verdicts), "sites": list(sites), "units": units}
        data = json.dumps(doc, separators=(",", ":")).replace("</", "<\\/")
        body.append(f'<script type="application/json" id="strip-data">{data}</script>')
        body.append('<div id="hover" role="tooltip"></div>')
        return _page("sweep strips", body)

    def strip(self, k: int, r: RunReport) -> str:
        pts = list(r.points)
        fails = sum(1 for p in pts if _verdict_class(p.verdict) in ("v-fail", "v-crash"))
        label = (
            f"{_e(r.scenario)} · {_e(r.mode)} · {_e(r.allocator)} — {len(pts)} injection points"
            + (f", <span class='t-failing'>{fails} failing</span>" if fails else ", all handled")
        )
        if r.error:
            label += f" — <span class='t-failing'>setup error: {_e(r.error.splitlines()[0])}</span>"
        if not pts and r.iterations:
            return (
                f'<div class="unit" id="u{k}"><div class="label">{_e(r.scenario)} · {_e(r.mode)} · '
                f"{_e(r.allocator)} — {r.iterations} injection points; this report does not "
                "record each index's verdict (written by an older oomfuzz): no strip</div></div>"
            )
        segs: list[str] = []
        start = 0
        while start < len(pts):
            end = start
            while end + 1 < len(pts) and pts[end + 1].verdict == pts[start].verdict:
                end += 1
            segs.append(self._segment(k, pts, start, end))
            start = end + 1
        aria = f"strip of {len(pts)} injection points, {fails} failing; arrow keys move"
        return (
            f'<div class="unit" id="u{k}"><div class="label" id="label-{k}">{label}</div>'
            f'<div class="strip" tabindex="0" data-u="{k}" role="group" aria-label="{_e(aria)}" '
            f'aria-describedby="tip-{k}">{"".join(segs)}<span class="cursor"></span></div>'
            f'<output class="tip" id="tip-{k}" aria-live="polite"></output></div>'
        )

    def _segment(self, k: int, pts: list, start: int, end: int) -> str:
        first, last = pts[start], pts[end]
        n = end - start + 1
        cls = _verdict_class(first.verdict)
        where = f" at {first.site}" if first.site is not None else ""
        if n == 1:
            title = f"index {first.index}: {first.verdict}{where}"
        else:
            sites = list(dict.fromkeys(str(p.site) for p in pts[start : end + 1] if p.site))
            more = f" (+{len(sites) - 3} more)" if len(sites) > 3 else ""
            at = f" at {'; '.join(sites[:3])}{more}" if sites else ""
            title = f"indices {first.index}–{last.index}: {first.verdict} ×{n}{at}"
        attrs = f'class="seg {cls}" style="flex-grow:{n}" data-a="{start}" data-n="{n}" title="{_e(title)}"'
        href = self.detail_href.get((k, first.index))
        if href is not None and cls != "v-handled":
            return f'<a {attrs} href="{_e(href)}" aria-label="{_e(title)}"></a>'
        return f"<span {attrs}></span>"


def _verdict_class(verdict: str) -> str:
    if verdict in ("handled", "allowed"):
        return "v-handled"
    if verdict == "not_reached":
        return "v-not_reached"
    if verdict in ("crashed", "timeout"):
        return "v-crash"
    return "v-fail"


def _minimize_line(f: FailureRecord) -> str:
    return (
        f"oomfuzz minimize {shlex.quote(f.scenario)} --mode {f.mode} --allocator {f.allocator} "
        f"--index {f.index} -o minimized{os.path.splitext(f.scenario)[1]}"
    )
