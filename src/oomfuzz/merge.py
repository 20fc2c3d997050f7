"""Shards of one sweep across machines, and merging their reports into the whole sweep's.

A sweep (scenario × mode × allocator × injection index) splits into ``N``
shards (``oomfuzz sweep --shard K/N``, ``K`` counted from 1): injection index
``i`` of the unit ``(scenario, mode, allocator)`` belongs to shard ``K`` iff
``(i + offset(unit)) % N == K - 1``, where ``offset`` is a CRC-32 of the
unit's names. So the partition depends on nothing but the names and the
index (not on worker counts, executors or timing), and small units spread
over the shards instead of all landing in the first. Every shard still runs
the dry runs of every unit (they determine the indices and the sites hit).

:class:`SweepIdentity` is what makes shards mergeable: the shard, the inputs
(each scenario's name and content hash), the options that change results,
the versions (a digest of the oomfuzz and wasmrt sources, the Python
version) and digests of the site universe and exclusions that coverage is
measured against. Every sweep report carries it (``SweepReport.identity``).

Invariants:
- :func:`merge_shards` refuses (:class:`MergeError`, one line naming the
  files) reports that are not shard reports, shards of different inputs,
  versions, options or shard counts, a shard given twice (overlap) and
  shards left out (it names the missing ones).
- The merged report equals the unsharded sweep's report (:func:`canonical`
  compares them): units merge as ``SweepReport.add`` merges index shards,
  and coverage is recomputed over the shards' common universe (a site is
  injected when any shard injected it; an exclusion is stale when no
  declared site matches it or some shard reached its site).
- Order is canonical (:func:`canonical_order`): units by (scenario, mode,
  allocator), failures by (index, mode), sites by name.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmrt
from oomfuzz.inject import Site
from oomfuzz.report import RunReport, SweepReport
from oomfuzz.sites import Coverage, Exclusion, StaticSite, Universe, coverage

__all__ = [
    "MergeError",
    "Shard",
    "SweepIdentity",
    "canonical",
    "canonical_order",
    "code_digest",
    "content_digest",
    "merge_shards",
]


class MergeError(ValueError):
    """Shard reports that cannot be merged; the message is one line naming the cause."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``number`` (1-based) of ``count``: a deterministic part of every unit's indices."""

    number: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.number <= self.count:
            raise ValueError(
                f"--shard {self.number}/{self.count}: K/N needs 1 <= K <= N (K counts from 1)"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` (``--shard``); ``ValueError`` with the reason when malformed."""
        k, sep, n = text.partition("/")
        if not (sep and k.strip().isdigit() and n.strip().isdigit()):
            raise ValueError(f"--shard {text}: expected K/N with 1 <= K <= N, e.g. 2/3")
        return cls(int(k), int(n))

    def residue(self, scenario: str, mode: str, allocator: str) -> int:
        """The residue ``r`` with: index ``i`` of this unit is in the shard iff ``i % N == r``."""
        key = f"{scenario}\n{mode}\n{allocator}".encode()
        return (self.number - 1 - zlib.crc32(key)) % self.count

    def owns(self, scenario: str, mode: str, allocator: str, index: int) -> bool:
        return index % self.count == self.residue(scenario, mode, allocator)

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"


@dataclass(frozen=True, slots=True)
class SweepIdentity:
    """What a sweep ran: shards of one sweep agree on everything here but ``shard``."""

    shard: Shard
    inputs: Mapping[str, str]  # scenario name -> sha256 of its content
    options: Mapping[str, object]
    versions: Mapping[str, str]
    universe: str = ""  # sha256 of the declared site universe
    exclusions: str = ""  # sha256 of the exclusions that applied

    def to_dict(self) -> dict[str, object]:
        return {
            "shard": [self.shard.number, self.shard.count],
            "inputs": dict(sorted(self.inputs.items())),
            "options": dict(self.options),
            "versions": dict(self.versions),
            "universe": self.universe,
            "exclusions": self.exclusions,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepIdentity:
        number, count = d["shard"]
        return cls(
            Shard(int(number), int(count)),
            {str(k): str(v) for k, v in d["inputs"].items()},
            dict(d["options"]),
            {str(k): str(v) for k, v in d["versions"].items()},
            str(d.get("universe", "")),
            str(d.get("exclusions", "")),
        )

    def whole(self) -> SweepIdentity:
        """The identity of the merged sweep (shard 1/1)."""
        return SweepIdentity(
            Shard(), self.inputs, self.options, self.versions, self.universe, self.exclusions
        )


# -- digests ---------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_digest(paths: Iterable[Path]) -> str:
    """sha256 over the named files' bytes (a missing file counts as absent, by name)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"<absent>")
        h.update(b"\0")
    return h.hexdigest()


_CODE: dict[str, str] = {}


def code_digest() -> str:
    """sha256 over the sources of the harness and the runtime (oomfuzz, wasmrt)."""
    if "code" not in _CODE:
        h = hashlib.sha256()
        for pkg in (Path(__file__).parent, Path(wasmrt.__file__).parent):
            for f in sorted(pkg.rglob("*.py")):
                h.update(f.relative_to(pkg.parent).as_posix().encode() + b"\0")
                h.update(f.read_bytes())
        _CODE["code"] = h.hexdigest()
    return _CODE["code"]


def versions() -> dict[str, str]:
    return {
        "code": code_digest(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def universe_digest(universe: Universe) -> str:
    return _sha256(json.dumps(universe.to_dict(), sort_keys=True).encode())


def exclusions_digest(exclusions: Sequence[Exclusion]) -> str:
    return _sha256(json.dumps(sorted((e.id, e.reason) for e in exclusions)).encode())


# -- canonical order and comparison ---------------------------------------------------------


def canonical_order(report: SweepReport) -> SweepReport:
    """Sort ``report`` in place (units, failures, per-unit sites, notes); return it."""
    report.runs.sort(key=lambda r: r.key)
    for run in report.runs:
        run.failures.sort(key=lambda f: (f.index, f.mode))
        run.sites = dict(sorted(run.sites.items()))
        run.notes = sorted(run.notes)
    return report


_TIMING = ("elapsed",)


def canonical(report: SweepReport) -> dict[str, Any]:
    """``report`` as a comparable dict: canonical order, no timings, command or shard.

    Two sweeps of the same inputs and options have equal ``canonical`` forms
    whatever their shards, executors or worker counts.
    """
    d: dict[str, Any] = json.loads(canonical_order(_copy(report)).to_json())
    for key in (*_TIMING, "command", "sweep"):
        d.pop(key, None)
    for run in d["runs"]:
        for key in _TIMING:
            run.pop(key, None)
    if d.get("coverage"):
        # Exclusions come from one file; a merge only knows them as a set.
        d["coverage"]["stale_exclusions"].sort(key=lambda e: (e["site"], e["reason"]))
    return d


def _copy(report: SweepReport) -> SweepReport:
    return SweepReport.from_json(report.to_json())


# -- merging -----------------------------------------------------------------------------


def _identity(name: str, report: SweepReport) -> SweepIdentity:
    if not report.identity:
        raise MergeError(
            f"{name}: not a shard report (no sweep identity; write one with "
            "oomfuzz sweep --shard K/N --json OUT)"
        )
    try:
        return SweepIdentity.from_dict(report.identity)
    except (KeyError, TypeError, ValueError) as e:
        raise MergeError(f"{name}: malformed sweep identity ({e})") from None


def _differs(a: Mapping[str, object], b: Mapping[str, object]) -> str:
    """The first key whose values differ, as ``key: A vs B``."""
    for k in sorted(set(a) | set(b), key=str):
        if a.get(k) != b.get(k):
            return f"{k}: {a.get(k, '<absent>')!r} vs {b.get(k, '<absent>')!r}"
    return ""


def _inputs_differ(a: Mapping[str, str], b: Mapping[str, str]) -> str:
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        side = f"only in the first: {only_a[0]}" if only_a else f"only in the second: {only_b[0]}"
        more = len(only_a) + len(only_b) - 1
        return f"different scenario sets ({side}{f' and {more} more' if more else ''})"
    changed = sorted(k for k in a if a[k] != b[k])
    if changed:
        return f"different content of {changed[0]}" + (
            f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        )
    return ""


def check_compatible(named: Sequence[tuple[str, SweepIdentity]]) -> None:
    """Refuse shards of different sweeps, overlapping shards and missing shards."""
    first_name, first = named[0]
    for name, ident in named[1:]:
        pair = f"{first_name} and {name}"
        if ident.shard.count != first.shard.count:
            raise MergeError(
                f"{pair} split the sweep differently: shard {first.shard} vs shard {ident.shard}"
            )
        why = _inputs_differ(first.inputs, ident.inputs)
        if why:
            raise MergeError(f"{pair} swept different inputs: {why}")
        why = _differs(first.versions, ident.versions)
        if why:
            raise MergeError(f"{pair} ran different versions ({why})")
        why = _differs(first.options, ident.options)
        if why:
            raise MergeError(f"{pair} ran with different options ({why})")
        if (ident.universe, ident.exclusions) != (first.universe, first.exclusions):
            what = "site universe" if ident.universe != first.universe else "exclusions"
            raise MergeError(f"{pair} measured coverage against a different {what}")
    seen: dict[int, str] = {}
    for name, ident in named:
        if ident.shard.number in seen:
            raise MergeError(
                f"shard {ident.shard} given twice (overlapping shards): "
                f"{seen[ident.shard.number]} and {name}"
            )
        seen[ident.shard.number] = name
    count = first.shard.count
    missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in seen]
    if missing:
        raise MergeError(f"missing shard(s) {', '.join(missing)} of {count}")


def merge_coverage(parts: Sequence[Coverage]) -> Coverage:
    """The coverage of the union of the shards' injections (they share one universe).

    Each shard's injected, unreached and excluded sites partition the universe, so
    their union is the universe; the exclusions are what some shard excluded or
    found stale.
    """
    by_site: dict[Site, StaticSite] = {}
    exclusions: dict[str, str] = {}
    outside: set[Site] = set()
    for cov in parts:
        for s in (*cov.injected, *cov.unreached, *(s for s, _ in cov.excluded)):
            by_site.setdefault(s.site, s)
        exclusions.update((s.id, reason) for s, reason in cov.excluded)
        exclusions.update((e.id, e.reason) for e in cov.stale_exclusions)
        outside.update(cov.outside)
    injected = {s.site for cov in parts for s in cov.injected} | outside
    sites = sorted(by_site.values(), key=lambda s: (s.site.file, s.site.line, s.site.function))
    # A file with a declared or an undeclared injected site was scanned: the same
    # "outside" verdicts as the shards' own universe gives.
    files = {s.site.file for s in sites} | {s.file for s in outside}
    universe = Universe((), tuple(sites), frozenset(files))
    return coverage(universe, injected, [Exclusion(i, r) for i, r in sorted(exclusions.items())])


def merge_shards(named: Sequence[tuple[str, SweepReport]]) -> SweepReport:
    """The whole sweep's report from all its shard reports (``name``: for messages)."""
    if not named:
        raise MergeError("no reports to merge")
    idents = [(name, _identity(name, rep)) for name, rep in named]
    check_compatible(idents)
    ordered = sorted(zip(idents, named, strict=True), key=lambda x: x[0][1].shard.number)
    merged = SweepReport()
    for _, (_, rep) in ordered:
        for run in rep.runs:
            merged.add(RunReport.from_dict(run.to_dict()))
        merged.elapsed = max(merged.elapsed, rep.elapsed)
    merged.command = " ; ".join(rep.command for _, (_, rep) in ordered)
    covs = [rep.coverage for _, rep in named if rep.coverage is not None]
    if covs and len(covs) != len(named):
        raise MergeError("some shards measured site coverage and some did not")
    merged.coverage = merge_coverage(covs) if covs else None
    merged.identity = idents[0][1].whole().to_dict()
    return canonical_order(merged)
