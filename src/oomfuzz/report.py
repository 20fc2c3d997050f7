"""Sweep reports: failures with reproducers, the site table, JSON, HTML and rich tables.

Invariants:
- A :class:`RunReport` is one (scenario, mode, allocator) unit; shards of the
  same unit merge into one (counts add, failures concatenate in index order,
  site stats merge).
- Every failure names scenario, mode, allocator, injection index, allocation
  kind and size, site and traceback, and carries a one-line reproducer
  ``oomfuzz replay SCENARIO --mode M --allocator A --index N``.
- ``to_json``/``from_json`` round-trip: ``SweepReport.from_json(r.to_json())``
  gives the same summary, failures and site table (``schema`` is versioned).
- HTML output is one self-contained file; every string from the code under
  test is escaped. (``oomfuzz.htmlreport`` writes the multi-page report.)
- Each unit keeps every injection's index, verdict and site
  (``RunReport.points``); a report without them (an older schema-1 file)
  loads with none.
- Every unit records the engine that ran its injections (``replay`` or
  ``fork``; ``OomTestResult.engine``, so a fork sweep that fell back says
  ``replay``). Shards that ran with different engines merge into
  ``fork+replay``. The summary counts units per engine, and counts the
  fork engine's no-verdict classes (``crashed``, ``timeout``) on their own
  row whenever any unit forked.
- The rich tables fit an 80-column terminal: paths are shown relative to
  the common scenario directory, long cells are folded, not truncated.
"""

from __future__ import annotations

import html
import json
import os.path
import shlex
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from oomfuzz.checks import FailureClass
from oomfuzz.inject import Site
from oomfuzz.plan import Iteration, OomTestResult, SiteStat
from oomfuzz.points import PointLog
from oomfuzz.sites import Coverage

__all__ = ["FailureRecord", "RunReport", "SweepReport", "reproducer"]

SCHEMA = "oomfuzz-report/1"


def reproducer(scenario: str, mode: str, allocator: str, index: int, options: str = "") -> str:
    """The ``oomfuzz replay`` command line; ``options``: the unit's plan/program flags."""
    extra = f" {options}" if options else ""
    return (
        f"oomfuzz replay {shlex.quote(scenario)} --mode {mode} "
        f"--allocator {allocator} --index {index}{extra}"
    )


@dataclass(slots=True)
class FailureRecord:
    scenario: str
    allocator: str
    iteration: Iteration
    #: Replay flags the unit ran with (``--target guest``, ``--arg=-v``...).
    options: str = ""

    @property
    def mode(self) -> str:
        return self.iteration.mode

    @property
    def index(self) -> int:
        return self.iteration.index

    @property
    def cls(self) -> FailureClass:
        return self.iteration.verdict

    @property
    def reproducer(self) -> str:
        return reproducer(self.scenario, self.mode, self.allocator, self.index, self.options)

    @property
    def site(self) -> str:
        inj = self.iteration.injected
        return str(inj.site) if inj else "<no injection>"

    def to_dict(self) -> dict[str, object]:
        inj = self.iteration.injected
        return {
            "scenario": self.scenario,
            "mode": self.mode,
            "allocator": self.allocator,
            "index": self.index,
            "class": self.cls.value,
            "kind": inj.kind if inj else None,
            "size": inj.size if inj else None,
            "site": self.site,
            "reproducer": self.reproducer,
            "options": self.options,
            "iteration": self.iteration.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FailureRecord:
        return cls(
            d["scenario"],
            d["allocator"],
            Iteration.from_dict(d["iteration"]),
            str(d.get("options", "")),
        )

    def text(self, tracebacks: bool = False) -> str:
        """The failure's detail block; the reproducer is always its own, last line."""
        it = self.iteration
        inj = it.injected
        lines = [
            f"{self.cls} in {self.scenario} [mode={self.mode} allocator={self.allocator} "
            f"index={self.index}]",
        ]
        if inj is not None:
            lines.append(f"  allocation: {inj.kind}, {inj.size} bytes at {inj.site}")
        lines.extend(f"  {f.cls}: {f.detail}" for f in it.findings if f.cls.is_failure)
        if tracebacks and inj is not None and inj.traceback:
            lines.append("  allocation traceback (most recent call last):")
            lines.extend("    " + ln for ln in inj.traceback.rstrip().splitlines())
        if tracebacks and it.exc_traceback:
            lines.append("  exception raised by the scenario:")
            lines.extend("    " + ln for ln in it.exc_traceback.rstrip().splitlines())
        lines.append(f"  reproduce: {self.reproducer}")
        return "\n".join(lines)


@dataclass(slots=True)
class RunReport:
    """The result of one (scenario, mode, allocator) unit of a sweep."""

    scenario: str
    mode: str
    allocator: str
    total: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[FailureRecord] = field(default_factory=list)
    sites: dict[str, SiteStat] = field(default_factory=dict)
    elapsed: float = 0.0
    stopped: str = "complete"
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    engine: str = "replay"
    #: Every injection (index, verdict, site): the unit's sweep strip.
    points: PointLog = field(default_factory=PointLog)

    @classmethod
    def from_result(
        cls, scenario: str, mode: str, allocator: str, result: OomTestResult, options: str = ""
    ) -> RunReport:
        rep = cls(scenario, mode, allocator, total=result.total)
        for it in result.iterations:
            rep.counts[it.verdict.value] += 1
            if it.failed:
                rep.failures.append(FailureRecord(scenario, allocator, it, options))
        rep.sites = {k: SiteStat.from_dict(v.to_dict()) for k, v in result.sites.items()}
        rep.elapsed = result.elapsed
        rep.stopped = result.stopped
        rep.notes = list(result.notes)
        rep.engine = result.engine
        rep.points = PointLog.from_iterations(result.iterations)
        return rep

    @property
    def iterations(self) -> int:
        return sum(self.counts.values())

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scenario, self.mode, self.allocator)

    def merge(self, other: RunReport) -> None:
        """Fold a shard of the same unit into this one."""
        self.total = max(self.total, other.total)
        self.counts.update(other.counts)
        self.failures.extend(other.failures)
        self.failures.sort(key=lambda f: f.index)
        for k, s in other.sites.items():
            if k in self.sites:
                self.sites[k].merge(s)
            else:
                self.sites[k] = SiteStat.from_dict(s.to_dict())
        self.elapsed += other.elapsed
        if other.stopped != "complete":
            self.stopped = other.stopped
        self.notes.extend(n for n in other.notes if n not in self.notes)
        self.error = self.error or other.error
        engines = set(self.engine.split("+")) | set(other.engine.split("+"))
        self.engine = "+".join(sorted(engines))
        self.points.merge(other.points)

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "mode": self.mode,
            "allocator": self.allocator,
            "total": self.total,
            "counts": dict(self.counts),
            "failures": [f.to_dict() for f in self.failures],
            "sites": [s.to_dict() for s in self.sites.values()],
            "elapsed": round(self.elapsed, 4),
            "stopped": self.stopped,
            "notes": self.notes,
            "error": self.error,
            "engine": self.engine,
            "points": self.points.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunReport:
        rep = cls(d["scenario"], d["mode"], d["allocator"], total=int(d.get("total", 0)))
        rep.counts = Counter({str(k): int(v) for k, v in d.get("counts", {}).items()})
        rep.failures = [FailureRecord.from_dict(f) for f in d.get("failures", [])]
        for s in d.get("sites", []):
            stat = SiteStat.from_dict(s)
            rep.sites[str(stat.site)] = stat
        rep.elapsed = float(d.get("elapsed", 0.0))
        rep.stopped = str(d.get("stopped", "complete"))
        rep.notes = list(d.get("notes", []))
        rep.error = d.get("error")
        rep.engine = str(d.get("engine", "replay"))
        rep.points = PointLog.from_dict(d.get("points") or {})
        return rep


@dataclass(slots=True)
class Summary:
    scenarios: int
    runs: int
    injection_points: int
    handled: int
    failures_by_class: dict[str, int]
    errors: int
    distinct_sites: int
    sites_injected: int
    sites_failing: int
    engines: dict[str, int] = field(default_factory=dict)
    static: Coverage | None = None  # against the declared sites (oomfuzz.sites), when measured

    @property
    def forked(self) -> bool:
        return any("fork" in e.split("+") for e in self.engines)

    @property
    def no_verdict(self) -> tuple[int, int]:
        """(crashed, timeout) iterations: forked children that gave no verdict."""
        by = self.failures_by_class
        return by.get(FailureClass.CRASHED.value, 0), by.get(FailureClass.TIMEOUT.value, 0)

    def engines_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.engines.items())) or "-"

    @property
    def failures(self) -> int:
        return sum(self.failures_by_class.values()) + self.errors

    @property
    def coverage(self) -> float:
        """Sites injected ÷ sites declared (÷ sites hit when no universe was measured)."""
        if self.static is not None:
            return self.static.ratio
        return self.sites_injected / self.distinct_sites if self.distinct_sites else 1.0

    def unreached_text(self) -> str:
        """How many declared sites were never injected (listed in their own table)."""
        cov = self.static
        if cov is None:
            return "-"
        text = f"{len(cov.unreached)} (listed below)" if cov.unreached else "none"
        return text + (f", {len(cov.excluded)} excluded" if cov.excluded else "")

    def coverage_text(self) -> str:
        if self.static is not None:
            return self.static.text()
        return f"{self.sites_injected}/{self.distinct_sites} hit ({self.coverage:.0%})"


@dataclass(slots=True)
class SweepReport:
    runs: list[RunReport] = field(default_factory=list)
    elapsed: float = 0.0
    command: str = ""
    #: Static site coverage (``oomfuzz.sites``): set by the application layer after a sweep.
    coverage: Coverage | None = None
    #: What was swept (``oomfuzz.merge.SweepIdentity.to_dict()``: shard, inputs, options,
    #: versions); shard reports merge only when theirs agree. ``None``: not recorded.
    identity: dict[str, Any] | None = None

    def add(self, rep: RunReport) -> None:
        for mine in self.runs:
            if mine.key == rep.key:
                mine.merge(rep)
                return
        self.runs.append(rep)

    @property
    def failures(self) -> list[FailureRecord]:
        return [f for r in self.runs for f in r.failures]

    def site_table(self) -> list[SiteStat]:
        merged: dict[str, SiteStat] = {}
        for r in self.runs:
            for k, s in r.sites.items():
                if k in merged:
                    m = merged[k]
                    m.kinds |= s.kinds
                    m.absorbing = m.absorbing or s.absorbing
                    m.hits += s.hits
                    m.injected += s.injected
                    m.failures += s.failures
                else:
                    merged[k] = SiteStat.from_dict(s.to_dict())
        return sorted(merged.values(), key=lambda s: (-s.failures, -s.hits, str(s.site)))

    def injected_sites(self) -> list[Site]:
        """Every site at which the sweep injected an allocation failure."""
        return [s.site for s in self.site_table() if s.injected]

    def summary(self) -> Summary:
        by_class: Counter[str] = Counter()
        handled = points = 0
        for r in self.runs:
            points += r.iterations
            for cls, n in r.counts.items():
                if FailureClass(cls).is_failure:
                    by_class[cls] += n
                else:
                    handled += n
        sites = self.site_table()
        return Summary(
            scenarios=len({r.scenario for r in self.runs}),
            runs=len(self.runs),
            injection_points=points,
            handled=handled,
            failures_by_class=dict(sorted(by_class.items())),
            errors=sum(1 for r in self.runs if r.error),
            distinct_sites=len(sites),
            sites_injected=sum(1 for s in sites if s.injected),
            sites_failing=sum(1 for s in sites if s.failures),
            engines=dict(sorted(Counter(r.engine for r in self.runs if not r.error).items())),
            static=self.coverage,
        )

    # -- JSON ------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        s = self.summary()
        return {
            "schema": SCHEMA,
            "command": self.command,
            "elapsed": round(self.elapsed, 3),
            "summary": {
                "scenarios": s.scenarios,
                "units": s.runs,
                "injection_points": s.injection_points,
                "handled": s.handled,
                "failures": s.failures,
                "failures_by_class": s.failures_by_class,
                "errors": s.errors,
                "distinct_sites": s.distinct_sites,
                "sites_injected": s.sites_injected,
                "sites_declared": None if s.static is None else s.static.declared,
                "site_coverage": round(s.coverage, 4),
                "engines": s.engines,
            },
            "runs": [r.to_dict() for r in self.runs],
            "sites": [st.to_dict() | {"status": st.status} for st in self.site_table()],
            "coverage": None if self.coverage is None else self.coverage.to_dict(),
            "sweep": self.identity,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SweepReport:
        d = json.loads(text)
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise ValueError(f"not an oomfuzz report (expected schema {SCHEMA!r})")
        rep = cls(elapsed=float(d.get("elapsed", 0.0)), command=str(d.get("command", "")))
        rep.runs = [RunReport.from_dict(r) for r in d.get("runs", [])]
        if d.get("coverage"):
            rep.coverage = Coverage.from_dict(d["coverage"])
        if isinstance(d.get("sweep"), dict):
            rep.identity = d["sweep"]
        return rep

    # -- HTML ------------------------------------------------------------------

    def to_html(self) -> str:
        e = html.escape
        s = self.summary()
        out = [
            "<!doctype html><html><head><meta charset='utf-8'><title>oomfuzz report</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
            ".failing{background:#fdd}.handled{background:#dfd}pre{background:#f6f6f6;"
            "padding:.5em;overflow:auto}code{font-size:90%}</style></head><body>",
            "<h1>oomfuzz report</h1>",
            f"<p><code>{e(self.command)}</code> &mdash; {self.elapsed:.1f}s</p>",
            "<h2>Summary</h2><table>",
        ]
        rows = [
            ("scenarios", s.scenarios),
            ("units (scenario × mode × allocator)", s.runs),
            ("engine (units)", s.engines_text()),
            ("injection points", s.injection_points),
            ("handled", s.handled),
            *((f"failures: {k}", v) for k, v in s.failures_by_class.items()),
            *(
                [("forked children crashed / timed out", "{} / {}".format(*s.no_verdict))]
                if s.forked
                else []
            ),
            ("setup errors", s.errors),
            ("distinct sites hit", s.distinct_sites),
            ("site coverage", s.coverage_text()),
            *((("unreached sites", s.unreached_text()),) if s.static is not None else ()),
            ("wall time", f"{self.elapsed:.1f}s"),
        ]
        out += [f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in rows]
        out.append("</table>")
        out += self._coverage_html()
        errors = [r for r in self.runs if r.error]
        if errors:
            out.append("<h2>Setup errors</h2><ul>")
            out += [
                f"<li>{e(r.scenario)} [{e(r.mode)}, {e(r.allocator)}]: <pre>{e(r.error or '')}</pre></li>"
                for r in errors
            ]
            out.append("</ul>")
        out.append(f"<h2>Failures ({len(self.failures)})</h2>")
        for f in self.failures:
            it = f.iteration
            inj = it.injected
            out.append("<div class='failing'><details><summary>")
            out.append(
                f"<b>{e(f.cls.value)}</b> {e(f.scenario)} mode={e(f.mode)} "
                f"allocator={e(f.allocator)} index={f.index}"
                + (
                    f" &mdash; {e(inj.kind)} {inj.size} B at <code>{e(str(inj.site))}</code>"
                    if inj
                    else ""
                )
            )
            out.append("</summary><ul>")
            out += [f"<li>{e(x.cls.value)}: {e(x.detail)}</li>" for x in it.findings]
            out.append(f"</ul><p>Reproduce: <code>{e(f.reproducer)}</code></p>")
            if inj is not None and inj.traceback:
                out.append(f"<p>Allocation traceback</p><pre>{e(inj.traceback)}</pre>")
            if it.exc_traceback:
                out.append(f"<p>Exception</p><pre>{e(it.exc_traceback)}</pre>")
            out.append("</details></div>")
        out.append(
            "<h2>Allocation sites</h2><table><tr><th>site</th><th>kinds</th>"
            "<th>hits</th><th>injected</th><th>failures</th><th>status</th></tr>"
        )
        for st in self.site_table():
            cls = "failing" if st.failures else ("handled" if st.injected else "")
            absorbing = " (absorbing)" if st.absorbing else ""
            out.append(
                f"<tr class='{cls}'><td><code>{e(str(st.site))}</code></td>"
                f"<td>{e(', '.join(sorted(st.kinds)))}{absorbing}</td><td>{st.hits}</td>"
                f"<td>{st.injected}</td><td>{st.failures}</td><td>{e(st.status)}</td></tr>"
            )
        out.append("</table></body></html>")
        return "\n".join(out)

    def _coverage_html(self) -> list[str]:
        """Every declared site no injection reached: unreached, excluded (why), undeclared."""
        cov = self.coverage
        if cov is None:
            return []
        e = html.escape
        out = [f"<h2>Unreached sites ({len(cov.unreached)} of {cov.declared} declared)</h2>"]
        if cov.unreached:
            out.append("<table><tr><th>site</th><th>function</th><th>calls</th></tr>")
            out += [
                f"<tr class='failing'><td><code>{e(s.site.file)}:{s.site.line}</code></td>"
                f"<td><code>{e(s.site.function)}</code></td><td>{e(s.via)}</td></tr>"
                for s in cov.unreached
            ]
            out.append("</table>")
        else:
            out.append("<p>none: every declared site was injected or is excluded.</p>")
        if cov.excluded:
            out.append("<h3>Excluded</h3><table><tr><th>site</th><th>function</th>")
            out.append("<th>reason</th></tr>")
            out += [
                f"<tr><td><code>{e(s.site.file)}:{s.site.line}</code></td>"
                f"<td><code>{e(s.site.function)}</code></td><td>{e(reason)}</td></tr>"
                for s, reason in cov.excluded
            ]
            out.append("</table>")
        if cov.outside:
            out.append("<h3>Injected but not declared (the static scan missed them)</h3><ul>")
            out += [f"<li><code>{e(str(s))}</code></li>" for s in cov.outside]
            out.append("</ul>")
        if cov.stale_exclusions:
            out.append("<h3>Stale exclusions</h3><ul>")
            out += [f"<li><code>{e(x.id)}</code>: {e(x.reason)}</li>" for x in cov.stale_exclusions]
            out.append("</ul>")
        return out

    # -- rich ------------------------------------------------------------------

    def rich_tables(self, max_failures: int = 20, max_sites: int = 25) -> list[Any]:
        """Summary, failures and site tables, laid out for an 80-column terminal."""
        s = self.summary()
        summary = Table(title="oomfuzz summary", show_header=False, box=box.SIMPLE)
        summary.add_column("what")
        summary.add_column("value", justify="right", overflow="fold")
        summary.add_row("scenarios", str(s.scenarios))
        summary.add_row("units (scenario × mode × allocator)", str(s.runs))
        summary.add_row("engine (units)", s.engines_text())
        summary.add_row("injection points", str(s.injection_points))
        summary.add_row("handled", f"[green]{s.handled}[/green]")
        for k, v in s.failures_by_class.items():
            summary.add_row(f"failures: {k}", f"[red]{v}[/red]")
        if s.forked:
            crashed, timeout = s.no_verdict
            colour = "red" if crashed or timeout else "green"
            summary.add_row(
                "forked children crashed / timed out",
                f"[{colour}]{crashed} / {timeout}[/{colour}]",
            )
        if s.errors:
            summary.add_row("setup errors", f"[red]{s.errors}[/red]")
        summary.add_row("distinct sites hit", str(s.distinct_sites))
        colour = "green" if s.static is not None and not s.static.unreached else "yellow"
        summary.add_row("site coverage", f"[{colour}]{escape(s.coverage_text())}[/{colour}]")
        if s.static is not None:
            summary.add_row("unreached sites", f"[{colour}]{s.unreached_text()}[/{colour}]")
        summary.add_row("wall time", f"{self.elapsed:.1f}s")
        tables: list[Any] = [summary]
        names = _short_names([r.scenario for r in self.runs])
        if self.failures:
            ft = Table(
                title=f"failures (first {min(max_failures, len(self.failures))} "
                f"of {len(self.failures)})",
                box=box.SIMPLE,
            )
            ft.add_column("class", overflow="fold")
            ft.add_column(escape("scenario [mode/allocator #index]"), overflow="fold", ratio=1)
            ft.add_column("allocation at site", overflow="fold", ratio=2)
            for f in self.failures[:max_failures]:
                inj = f.iteration.injected
                ft.add_row(
                    f"[red]{f.cls.value}[/red]",
                    escape(
                        f"{names.get(f.scenario, f.scenario)} [{f.mode}/{f.allocator} #{f.index}]"
                    ),
                    escape(f"{inj.kind} {inj.size}B at {inj.site}") if inj else "-",
                )
            tables.append(ft)
        sites = self.site_table()
        if sites:
            st = Table(
                title=f"allocation sites (top {min(max_sites, len(sites))} of {len(sites)})",
                box=box.SIMPLE,
            )
            st.add_column("site", overflow="fold", ratio=1)
            st.add_column("kinds", overflow="fold", max_width=14)
            st.add_column("hits", justify="right")
            st.add_column("inj", justify="right")
            st.add_column("fail", justify="right")
            st.add_column("status", overflow="fold")
            for x in sites[:max_sites]:
                colour = "red" if x.failures else ("green" if x.injected else "yellow")
                st.add_row(
                    escape(str(x.site)),
                    escape(", ".join(sorted(x.kinds)) + (" (absorbing)" if x.absorbing else "")),
                    str(x.hits),
                    str(x.injected),
                    str(x.failures),
                    f"[{colour}]{x.status}[/{colour}]",
                )
            tables.append(st)
        tables += self._coverage_tables()
        return tables

    def _coverage_tables(self) -> list[Any]:
        """Every unreached declared site (file:line, function), excluded ones with why."""
        cov = self.coverage
        if cov is None or not (cov.unreached or cov.excluded or cov.outside):
            return []
        t = Table(
            title=f"unreached sites ({len(cov.unreached)} of {cov.declared} declared)",
            box=box.SIMPLE,
        )
        t.add_column("site", overflow="fold", ratio=5)
        t.add_column("function", overflow="fold", ratio=4)
        t.add_column("calls", overflow="fold", ratio=2)
        for x in cov.unreached:
            t.add_row(
                escape(f"{x.site.file}:{x.site.line}"),
                escape(x.site.function),
                escape(x.via),
            )
        for x, reason in cov.excluded:
            t.add_row(
                escape(f"{x.site.file}:{x.site.line}"),
                escape(x.site.function),
                f"[dim]excluded: {escape(reason)}[/dim]",
            )
        for site in cov.outside:
            t.add_row(
                escape(f"{site.file}:{site.line}"),
                escape(site.function),
                "[red]injected, not declared[/red]",
            )
        return [t]


def _short_names(paths: list[str]) -> dict[str, str]:
    """Scenario paths relative to their common directory (for narrow tables)."""
    unique = sorted(set(paths))
    if len(unique) < 2:
        return {p: p.replace("\\", "/").rsplit("/", 1)[-1] for p in unique}
    try:
        base = os.path.commonpath(unique)
    except ValueError:
        return {p: p for p in unique}
    return {p: os.path.relpath(p, base) if base else p for p in unique}


def merge_reports(parts: Iterable[RunReport]) -> SweepReport:
    rep = SweepReport()
    for p in parts:
        rep.add(p)
    return rep
