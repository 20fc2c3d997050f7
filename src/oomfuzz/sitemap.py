"""Every allocation site of a report, grouped by source file, with one status each.

The model behind the source view (``oomfuzz.htmlreport``) and the site part
of ``oomfuzz diff``: the declared universe (the report's ``coverage``) joined
with what the sweep saw at each site (its site table and failures).

Invariants:
- A site's status is the first that applies: ``failing`` (an injection there
  failed), ``handled`` (injected, every injection handled), ``reached`` (hit
  by a dry run, never injected: a sampled or bounded sweep), ``excluded``
  (declared, never hit, excluded with a reason), ``unreached`` (declared,
  never hit).
- Every declared site appears once; sites seen at run time but not declared
  (a scenario's own ``try_alloc``, generated code) appear too, under their file.
- A failure record is attached to the site its injection refused; a failure
  with no injected allocation belongs to no site (``SiteMap.siteless``).
- Files are ordered by path, sites by line then function.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from oomfuzz.inject import Site

if TYPE_CHECKING:
    from oomfuzz.report import FailureRecord, SweepReport

__all__ = ["STATUSES", "FileView", "SiteMap", "SiteView", "site_map"]

#: Worst first: a line holding several sites shows the first of its sites' statuses.
STATUSES = ("failing", "handled", "reached", "excluded", "unreached")


@dataclass(slots=True)
class SiteView:
    site: Site
    via: str = ""
    declared: bool = False
    reason: str = ""  # why it is excluded
    kinds: set[str] = field(default_factory=set)
    absorbing: bool = False
    hits: int = 0
    injected: int = 0
    failures: list[FailureRecord] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failures:
            return "failing"
        if self.injected:
            return "handled"
        if self.hits:
            return "reached"
        return "excluded" if self.reason else "unreached"

    @property
    def classes(self) -> Counter[str]:
        return Counter(f.cls.value for f in self.failures)


@dataclass(slots=True)
class FileView:
    file: str
    sites: list[SiteView] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for s in self.sites if s.status == status)

    @property
    def reached(self) -> int:
        return sum(1 for s in self.sites if s.status in ("failing", "handled", "reached"))

    @property
    def failures(self) -> int:
        return sum(len(s.failures) for s in self.sites)

    def by_line(self) -> dict[int, list[SiteView]]:
        out: dict[int, list[SiteView]] = {}
        for s in self.sites:
            out.setdefault(s.site.line, []).append(s)
        return out


@dataclass(slots=True)
class SiteMap:
    files: list[FileView]
    siteless: list[FailureRecord]

    def sites(self) -> list[SiteView]:
        return [s for f in self.files for s in f.sites]


def site_map(report: SweepReport) -> SiteMap:
    views: dict[Site, SiteView] = {}
    cov = report.coverage
    if cov is not None:
        for st in (*cov.injected, *cov.unreached):
            views[st.site] = SiteView(st.site, st.via, declared=True)
        for st, reason in cov.excluded:
            views[st.site] = SiteView(st.site, st.via, declared=True, reason=reason)
    for stat in report.site_table():
        v = views.setdefault(stat.site, SiteView(stat.site))
        v.kinds |= stat.kinds
        v.absorbing = v.absorbing or stat.absorbing
        v.hits += stat.hits
        v.injected += stat.injected
    siteless: list[FailureRecord] = []
    for f in report.failures:
        inj = f.iteration.injected
        if inj is None:
            siteless.append(f)
            continue
        v = views.setdefault(inj.site, SiteView(inj.site, kinds={inj.kind}))
        v.failures.append(f)
        v.injected = max(v.injected, 1)
    files: dict[str, FileView] = {}
    for v in sorted(views.values(), key=lambda v: (v.site.file, v.site.line, v.site.function)):
        files.setdefault(v.site.file, FileView(v.site.file)).sites.append(v)
    return SiteMap([files[k] for k in sorted(files)], siteless)
