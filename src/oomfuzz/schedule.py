"""Injection schedules: in which order a sweep's indices are injected.

``exhaustive`` (the default) injects every index in allocation order.
``sites`` reaches every site first: it injects, in allocation order, the
first allocation of each distinct site of the last dry run, then the first
of each distinct (site, calling context) not injected yet, then the other
indices in an order drawn with ``random.Random(seed)`` (``sample=K``: only K
of them). A sweep cut short (``max_iters``,
``max_duration``, ``fail_fast``) has then injected at every site it could;
an uncut one injects exactly the indices the exhaustive schedule does, so it
reports the same coverage and findings, in another order. A sweep of many
units (``oomfuzz sweep``) runs the schedule in two passes, every unit's
site firsts (``sites:firsts``) before any unit's rest (``sites:rest``: the
calling-context firsts, then the others), so the whole sweep reaches every
site before it spends time on repeats; the two reports of a unit merge like
shards. In the first pass a unit skips the sites units run before it
injected already (``covered``; they are in its second pass), so the first
pass costs little more than the units' dry runs.

Invariants:
- The calling context of an allocation is its site plus the ``CONTEXT_DEPTH``
  nearest caller frames (``AllocRecord.stack``): the same line reached from
  two callers is two entries, a loop reaching it again is one.
- Only indices the schedule was given are kept (a selection or a target's
  points narrowed them before); the result has no duplicates.
- The same records, indices and seed give the same order on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from oomfuzz.inject import AllocRecord

__all__ = ["CONTEXT_DEPTH", "PARTS", "SCHEDULES", "context_firsts", "order", "parts"]

#: The schedules a sweep accepts (``--schedule``).
SCHEDULES = ("exhaustive", "sites")
#: The two halves of ``sites``, for a sweep that runs every unit's firsts before any
#: unit's rest (``oomfuzz.sweep.sweep_units``): ``sites:firsts`` and ``sites:rest``.
PARTS = ("sites:firsts", "sites:rest")
#: Caller frames that distinguish two calling contexts of one site.
CONTEXT_DEPTH = 2


def context_firsts(records: Sequence[AllocRecord], depth: int = CONTEXT_DEPTH) -> list[int]:
    """The point number of the first allocation of each distinct (site, calling context),
    in allocation order (records of allocations no target selected are skipped);
    ``depth=0``: of each distinct site."""
    seen: set[tuple[object, ...]] = set()
    firsts: list[int] = []
    for rec in records:
        if rec.point < 0:
            continue
        key = (rec.site, rec.kind, rec.stack[:depth])
        if key not in seen:
            seen.add(key)
            firsts.append(rec.point)
    return firsts


def order(
    schedule: str,
    indices: Sequence[int],
    records: Sequence[AllocRecord],
    sample: int | None,
    seed: int,
    covered: frozenset[str] = frozenset(),
) -> list[int]:
    """The injection order of ``indices`` under ``schedule`` (``sample``: how many of
    the indices past the firsts the ``sites`` schedule keeps; ``None``: all).
    ``covered``: sites (``str(site)``) other units inject in their first pass, which
    this unit's first pass leaves to them (its second pass injects them)."""
    if schedule == "exhaustive":
        kept = list(indices)
        if sample is not None and len(kept) > sample:
            kept = sorted(random.Random(seed).sample(kept, sample))
        return kept
    if schedule not in ("sites", *PARTS):
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    allowed = set(indices)
    site_of = {r.point: str(r.site) for r in records if r.point >= 0}
    sites = [
        p for p in context_firsts(records, depth=0) if p in allowed and site_of[p] not in covered
    ]
    contexts = [p for p in context_firsts(records) if p in allowed and p not in set(sites)]
    rest = sorted(allowed - set(sites) - set(contexts))
    random.Random(seed).shuffle(rest)
    if sample is not None:
        rest = rest[:sample]
    if schedule == "sites:firsts":
        return sites
    if schedule == "sites:rest":
        return contexts + rest
    return sites + contexts + rest


def parts(schedule: str) -> tuple[str, ...]:
    """The schedules of the passes a sweep of many units makes for ``schedule``: ``sites``
    injects every unit's firsts before any unit's rest, the others make one pass."""
    return PARTS if schedule == "sites" else (schedule,)
