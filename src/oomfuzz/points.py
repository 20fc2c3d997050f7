"""The injection log of one unit: every injection index with its verdict and site.

A :class:`~oomfuzz.report.RunReport` counts verdicts and keeps the failing
iterations in full; this log keeps *every* injection, handled ones included,
in a few bytes each, so a report can draw a unit's strip (indices coloured by
verdict) and say which site absorbed each index.

Invariants:
- One entry per injection index, sorted by index; shards of one unit merge by
  concatenation and re-sorting (their indices are disjoint).
- ``to_dict`` interns verdicts and sites in tables (an entry is three small
  ints), so tens of thousands of points stay a compact JSON array;
  ``from_dict(to_dict())`` gives the same entries.
- An injection that refused nothing (the plan's index was past the run's
  allocations) has no site: ``site`` is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from oomfuzz.inject import Site
from oomfuzz.plan import Iteration

__all__ = ["Point", "PointLog"]


@dataclass(frozen=True, slots=True)
class Point:
    index: int
    verdict: str  # a FailureClass value
    site: Site | None


@dataclass(slots=True)
class PointLog:
    points: list[Point] = field(default_factory=list)

    @classmethod
    def from_iterations(cls, iterations: Iterable[Iteration]) -> PointLog:
        log = cls(
            [
                Point(it.index, it.verdict.value, it.injected.site if it.injected else None)
                for it in iterations
            ]
        )
        log.points.sort(key=lambda p: p.index)
        return log

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points)

    def merge(self, other: PointLog) -> None:
        self.points.extend(other.points)
        self.points.sort(key=lambda p: p.index)

    def to_dict(self) -> dict[str, object]:
        verdicts: dict[str, int] = {}
        sites: dict[Site, int] = {}
        rows: list[list[int]] = []
        for p in self.points:
            v = verdicts.setdefault(p.verdict, len(verdicts))
            s = -1 if p.site is None else sites.setdefault(p.site, len(sites))
            rows.append([p.index, v, s])
        return {
            "verdicts": list(verdicts),
            "sites": [s.to_dict() for s in sites],
            "points": rows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PointLog:
        verdicts = [str(v) for v in d.get("verdicts", ())]
        sites = [Site.from_dict(s) for s in d.get("sites", ())]
        return cls(
            [
                Point(int(i), verdicts[int(v)], None if int(s) < 0 else sites[int(s)])
                for i, v, s in d.get("points", ())
            ]
        )
