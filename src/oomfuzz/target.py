"""Targeted fault plans: which allocation points a fault plan may refuse.

A :class:`FaultTarget` selects allocation points by kind (``AllocKind``
value), by absorbing vs not, and by site (``fnmatch`` patterns over
``file:line in function``). An :class:`~oomfuzz.inject.Injector` with a
target numbers the *selected* points from 0 and applies its plan to them
only: every other allocation is granted (and still counted), so
``--target guest --mode persistent`` fails every guest ``memory.grow`` from
the k-th on while the host keeps allocating.

Named targets (``TARGETS``, the CLI's ``--target``):

- ``all``: every allocation point (no selection; the default).
- ``guest``: the guest's own ``memory.grow``: linear-memory growth executed
  by wasm code (kind ``memory``, absorbing: the instruction returns -1).
- ``host``: every allocation that is not absorbing (what the runtime and
  the embedder allocate; a refusal there must surface as ``OutOfMemory``).
- ``absorbing``: every absorbing site (``memory.grow`` and ``table.grow``
  executed by wasm).

Invariants:
- A target is a pure predicate of (kind, absorbing, site); the empty
  target (``all``) selects everything and needs no site.
- Site patterns are matched only when given (:attr:`needs_site`), since
  capturing a site walks the Python stack.
- Targets are frozen and picklable: they travel to worker processes inside
  sweep units and survive a fork unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from oomfuzz.inject import AllocRecord, Site
from wasmrt.alloc import AllocKind

__all__ = ["KINDS", "TARGETS", "FaultTarget", "parse_target"]

#: Every kind name a target may select (``AllocKind`` values).
KINDS: tuple[str, ...] = tuple(k.value for k in AllocKind)


@dataclass(frozen=True, slots=True)
class FaultTarget:
    """A selection of allocation points; fields left empty/None select everything."""

    kinds: frozenset[str] = frozenset()
    absorbing: bool | None = None
    sites: tuple[str, ...] = ()
    name: str = "all"

    @property
    def selects_all(self) -> bool:
        return not self.kinds and self.absorbing is None and not self.sites

    @property
    def needs_site(self) -> bool:
        return bool(self.sites)

    def matches(self, kind: str, absorbing: bool, site: Site | None = None) -> bool:
        """Is the allocation point (``kind``, ``absorbing``, ``site``) selected?"""
        if self.kinds and kind not in self.kinds:
            return False
        if self.absorbing is not None and absorbing != self.absorbing:
            return False
        if self.sites:
            if site is None:
                return False
            text = str(site)
            return any(fnmatchcase(text, p) for p in self.sites)
        return True

    def matches_record(self, rec: AllocRecord) -> bool:
        return self.matches(rec.kind, rec.absorbing, rec.site)

    def flags(self) -> list[str]:
        """The command-line flags that select this target (``parse_target`` inverts them)."""
        out = [] if self.name == "all" else ["--target", self.name]
        base = TARGETS.get(self.name)
        if self.kinds and (base is None or self.kinds != base.kinds):
            out += ["--kinds", ",".join(sorted(self.kinds))]
        for pattern in self.sites:
            out += ["--sites", pattern]
        return out

    def describe(self) -> str:
        parts = [self.name]
        if self.sites:
            parts.append("sites " + " | ".join(self.sites))
        if self.kinds and self.name == "all":
            parts.append("kinds " + ",".join(sorted(self.kinds)))
        return ", ".join(parts)


TARGETS: dict[str, FaultTarget] = {
    "all": FaultTarget(),
    "guest": FaultTarget(frozenset({AllocKind.MEMORY.value}), True, name="guest"),
    "host": FaultTarget(absorbing=False, name="host"),
    "absorbing": FaultTarget(absorbing=True, name="absorbing"),
}


def parse_target(
    name: str = "all", sites: Iterable[str] = (), kinds: Iterable[str] = ()
) -> FaultTarget | None:
    """The target for CLI-style input; ``None`` when it selects every point.

    ``sites`` and ``kinds`` narrow the named target further. Raises
    ``ValueError`` (one line) for an unknown name or kind.
    """
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; expected one of {', '.join(TARGETS)}")
    base = TARGETS[name]
    wanted = frozenset(kinds)
    unknown = sorted(wanted - set(KINDS))
    if unknown:
        raise ValueError(
            f"unknown allocation kind {unknown[0]!r}; expected one of {', '.join(KINDS)}"
        )
    if wanted:
        narrowed = base.kinds & wanted if base.kinds else wanted
        if not narrowed:
            raise ValueError(
                f"target {name!r} selects no allocation of kind {', '.join(sorted(wanted))}"
            )
        base = replace(base, kinds=narrowed)
    patterns = tuple(sites)
    if patterns:
        base = replace(base, sites=base.sites + patterns)
    return None if base.selects_all else base
