"""What changed between two sweep reports: failures, sites, coverage and cost.

``oomfuzz diff OLD.json NEW.json`` prints it, ``--json OUT`` saves it, and
``oomfuzz report NEW.json --html DIR --baseline OLD.json`` shows it on the
index page. A pytest run with ``--oom-json`` and an ``oomfuzz sweep --json``
write the same schema, so either can be compared with the other.

Invariants:
- A failure is identified by (scenario, mode, allocator, failure class, site)
  with the site *line-free* (``package/path.py:qualname``, as the baseline
  names it) and the scenario as a path relative to the directory the report
  was made in, so an edit that moves lines, or another injection index for
  the same allocation, is not a new failure.
- *New*: a failure identity NEW has and OLD has not (a new unit's failures
  are new). *Fixed*: one OLD has and NEW has not, in a unit NEW also ran; a
  unit NEW did not run is listed as dropped, and its failures are neither.
- Sites compare by line-free id over what each report declared (its coverage)
  or, without coverage, what it saw; a function holding several sites is one
  id, injected when any of its sites was. Coverage is each report's own count
  (sites injected ÷ sites declared). *Newly unreached*: a site OLD injected
  that NEW declares but never injected; a site that appeared and is not
  injected counts the same.
- ``regressed`` is true iff there are new failures, new setup errors, or newly
  unreached sites; ``oomfuzz diff`` exits 1 exactly then.
"""

from __future__ import annotations

import json
import os.path
from dataclasses import dataclass, field

from oomfuzz.report import FailureRecord, RunReport, SweepReport
from oomfuzz.sitemap import site_map
from oomfuzz.sites import line_free_id

__all__ = ["DIFF_SCHEMA", "FailureChange", "ReportDiff", "compare", "scenario_key"]

DIFF_SCHEMA = "oomfuzz-diff/1"

UnitKey = tuple[str, str, str]


def scenario_key(path: str) -> str:
    """A scenario path as both kinds of report can agree on it: relative to the current
    directory when it lies below it, with ``/`` separators."""
    p = path.replace("\\", "/")
    if os.path.isabs(p):
        rel = os.path.relpath(p)
        if not rel.startswith(".."):
            p = rel.replace(os.sep, "/")
    while p.startswith("./"):
        p = p[2:]
    return p


@dataclass(frozen=True, slots=True, order=True)
class FailureKey:
    scenario: str
    mode: str
    allocator: str
    cls: str
    site: str

    def text(self) -> str:
        return f"{self.cls} at {self.site} in {self.scenario} [{self.mode}/{self.allocator}]"


@dataclass(slots=True)
class FailureChange:
    key: FailureKey
    count: int
    example: FailureRecord  # the first (lowest index) such failure, for its reproducer

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": self.key.scenario,
            "mode": self.key.mode,
            "allocator": self.key.allocator,
            "class": self.key.cls,
            "site": self.key.site,
            "count": self.count,
            "first_index": self.example.index,
            "at": self.example.site,
            "reproducer": self.example.reproducer,
        }


@dataclass(slots=True)
class ReportDiff:
    new_failures: list[FailureChange] = field(default_factory=list)
    fixed_failures: list[FailureChange] = field(default_factory=list)
    units_added: list[UnitKey] = field(default_factory=list)
    units_dropped: list[UnitKey] = field(default_factory=list)
    new_errors: list[tuple[UnitKey, str]] = field(default_factory=list)
    fixed_errors: list[UnitKey] = field(default_factory=list)
    sites_appeared: list[str] = field(default_factory=list)
    sites_disappeared: list[str] = field(default_factory=list)
    newly_unreached: list[str] = field(default_factory=list)
    newly_injected: list[str] = field(default_factory=list)
    coverage: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))  # (injected, declared)
    points: tuple[int, int] = (0, 0)
    elapsed: tuple[float, float] = (0.0, 0.0)
    unit_costs: list[tuple[UnitKey, int, int, float, float]] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.new_failures or self.new_errors or self.newly_unreached)

    def reasons(self) -> list[str]:
        out = []
        if self.new_failures:
            out.append(f"{sum(c.count for c in self.new_failures)} new failure(s)")
        if self.new_errors:
            out.append(f"{len(self.new_errors)} new setup error(s)")
        if self.newly_unreached:
            out.append(f"{len(self.newly_unreached)} site(s) no longer injected")
        return out

    def coverage_text(self, which: int) -> str:
        injected, declared = self.coverage[which]
        ratio = injected / declared if declared else 1.0
        return f"{injected}/{declared} ({ratio:.1%})"

    def text_lines(self) -> list[str]:
        lines: list[str] = []
        for title, changes, mark in (
            ("new failures", self.new_failures, "+"),
            ("fixed failures", self.fixed_failures, "-"),
        ):
            n = sum(c.count for c in changes)
            lines.append(f"{title} ({len(changes)}; {n} injections):")
            for c in changes:
                lines.append(f"  {mark} {c.key.text()} x{c.count} (first: index {c.example.index})")
                lines.append(f"      reproduce: {c.example.reproducer}")
        for title, items in (
            ("new setup errors", [f"{_unit(u)}: {e}" for u, e in self.new_errors]),
            ("setup errors gone", [_unit(u) for u in self.fixed_errors]),
            ("units added", [_unit(u) for u in self.units_added]),
            ("units dropped (not compared)", [_unit(u) for u in self.units_dropped]),
            ("sites appeared", self.sites_appeared),
            ("sites disappeared", self.sites_disappeared),
            ("sites no longer injected", self.newly_unreached),
            ("sites newly injected", self.newly_injected),
        ):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines += [f"  {x}" for x in items]
        lines.append(f"coverage: {self.coverage_text(0)} -> {self.coverage_text(1)}")
        (p0, p1), (t0, t1) = self.points, self.elapsed
        lines.append(
            f"cost: {p0} -> {p1} injection points ({p1 - p0:+d}), "
            f"{t0:.1f}s -> {t1:.1f}s ({t1 - t0:+.1f}s)"
        )
        reasons = self.reasons()
        lines.append("regressed: " + ", ".join(reasons) if reasons else "no regression")
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "schema": DIFF_SCHEMA,
            "regressed": self.regressed,
            "reasons": self.reasons(),
            "new_failures": [c.to_dict() for c in self.new_failures],
            "fixed_failures": [c.to_dict() for c in self.fixed_failures],
            "new_errors": [{"unit": list(u), "error": e} for u, e in self.new_errors],
            "fixed_errors": [list(u) for u in self.fixed_errors],
            "units_added": [list(u) for u in self.units_added],
            "units_dropped": [list(u) for u in self.units_dropped],
            "sites_appeared": self.sites_appeared,
            "sites_disappeared": self.sites_disappeared,
            "sites_no_longer_injected": self.newly_unreached,
            "sites_newly_injected": self.newly_injected,
            "coverage": {
                "old": {"injected": self.coverage[0][0], "declared": self.coverage[0][1]},
                "new": {"injected": self.coverage[1][0], "declared": self.coverage[1][1]},
            },
            "cost": {
                "points": {"old": self.points[0], "new": self.points[1]},
                "elapsed": {"old": round(self.elapsed[0], 3), "new": round(self.elapsed[1], 3)},
                "units": [
                    {"unit": list(u), "points": [a, b], "elapsed": [round(x, 3), round(y, 3)]}
                    for u, a, b, x, y in self.unit_costs
                ],
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _unit(u: UnitKey) -> str:
    return f"{u[0]} [{u[1]}/{u[2]}]"


def _units(rep: SweepReport) -> dict[UnitKey, RunReport]:
    return {(scenario_key(r.scenario), r.mode, r.allocator): r for r in rep.runs}


def _failures(rep: SweepReport) -> dict[FailureKey, list[FailureRecord]]:
    out: dict[FailureKey, list[FailureRecord]] = {}
    for f in rep.failures:
        inj = f.iteration.injected
        site = line_free_id(inj.site) if inj is not None else "<no injection>"
        key = FailureKey(scenario_key(f.scenario), f.mode, f.allocator, f.cls.value, site)
        out.setdefault(key, []).append(f)
    return out


def _site_states(rep: SweepReport) -> tuple[set[str], set[str]]:
    """(every site the report knows, the sites it injected), by line-free id."""
    known: set[str] = set()
    injected: set[str] = set()
    for v in site_map(rep).sites():
        if v.site.file.startswith("<"):
            continue  # generated code: no stable identity across runs
        sid = line_free_id(v.site)
        if v.declared or rep.coverage is None:
            known.add(sid)
        if v.status in ("failing", "handled"):
            injected.add(sid)
    return known, injected


def _change(key: FailureKey, records: list[FailureRecord]) -> FailureChange:
    return FailureChange(key, len(records), min(records, key=lambda f: f.index))


def compare(old: SweepReport, new: SweepReport) -> ReportDiff:
    d = ReportDiff()
    old_units, new_units = _units(old), _units(new)
    d.units_added = sorted(set(new_units) - set(old_units))
    d.units_dropped = sorted(set(old_units) - set(new_units))
    old_f, new_f = _failures(old), _failures(new)
    d.new_failures = [_change(k, new_f[k]) for k in sorted(new_f) if k not in old_f]
    d.fixed_failures = [
        _change(k, old_f[k])
        for k in sorted(old_f)
        if k not in new_f and (k.scenario, k.mode, k.allocator) in new_units
    ]
    for u, r in sorted(new_units.items()):
        before = old_units.get(u)
        if r.error and (before is None or not before.error):
            d.new_errors.append((u, r.error.splitlines()[0] if r.error else ""))
        if before is not None:
            d.unit_costs.append((u, before.iterations, r.iterations, before.elapsed, r.elapsed))
    d.fixed_errors = [
        u
        for u, r in sorted(old_units.items())
        if r.error and u in new_units and not new_units[u].error
    ]
    (old_known, old_inj), (new_known, new_inj) = _site_states(old), _site_states(new)
    d.sites_appeared = sorted(new_known - old_known)
    d.sites_disappeared = sorted(old_known - new_known)
    d.newly_unreached = sorted(
        s
        for s in new_known - new_inj
        if s in old_inj or (s not in old_known and old.coverage is not None)
    )
    d.newly_injected = sorted(new_inj - old_inj)
    d.coverage = (_coverage(old), _coverage(new))
    d.points = (
        sum(r.iterations for r in old.runs),
        sum(r.iterations for r in new.runs),
    )
    d.elapsed = (_elapsed(old), _elapsed(new))
    d.unit_costs.sort(key=lambda c: -abs(c[4] - c[3]))
    return d


def _coverage(rep: SweepReport) -> tuple[int, int]:
    """(sites injected, sites declared) as the report itself counts them."""
    s = rep.summary()
    if s.static is not None:
        return len(s.static.injected), s.static.declared
    return s.sites_injected, s.distinct_sites


def _elapsed(rep: SweepReport) -> float:
    return rep.elapsed or sum(r.elapsed for r in rep.runs)
