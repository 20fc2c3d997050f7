"""The CI gate: a committed site table (``corpus/sites-baseline.json``) and its check.

``update`` runs a bounded sweep of the corpus and writes the table;
``check`` replays every regression reproducer, runs the same bounded sweep
and compares. The gate fails when

- a regression reproducer fails again at its recorded index,
- any iteration of the bounded sweep fails (or a scenario cannot run),
- a site the baseline records as hit is no longer hit,
- a site the baseline does not know is hit but its injected failure is not
  handled (it failed, or it was never injected),
- a declared site (``oomfuzz.sites``: the static universe of the code under
  test, ``site_roots``) is never injected by the bounded sweep and
  ``corpus/sites-exclusions.json`` does not name it with a reason; or the
  sweep injects at a site of that code the scan did not declare; or an
  exclusion is stale.

Invariants:
- Site ids are line-insensitive and machine-independent:
  ``PATH:QUALNAME`` with ``PATH`` relative to the package root
  (``wasmrt/vm/instance.py``), so edits that move lines, or another checkout
  directory, change nothing; the allocation kinds seen there are recorded
  beside the id.
- The bounded sweep is deterministic: which sites are *hit* comes from the
  full fault-free dry runs (never sampled), and the injected indices are the
  first allocation of every distinct (site, kind) in each unit plus
  ``sample`` indices drawn with ``random.Random(seed)`` — so every hit site
  is injected at least once, on every machine, in the same places.
- The bounded sweep is :func:`oomfuzz.sweep.run_units` over units whose
  ``select`` is :class:`oomfuzz.sweep.SiteFirsts`; regressions replay through
  :func:`oomfuzz.sweep.replay_scenario`.
- ``check(report=...)`` (``baseline --check --report MERGED.json``) gates a
  saved whole sweep (a shard report is refused: merge the shards first)
  instead of running the bounded sweep; everything else is the same.
- Regression reproducers are the ``.wast``/``.py`` files under
  ``corpus/regressions/`` whose header has ``index=N`` (with ``mode`` and
  ``allocator``); they are replayed at exactly that index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oomfuzz.inject import Site
from oomfuzz.oomtest import DryRunError
from oomfuzz.report import RunReport, SweepReport
from oomfuzz.scenario import Scenario, ScenarioError, find_scenarios, load_scenario
from oomfuzz.sitecache import cached_scan
from oomfuzz.sites import (
    Coverage,
    ExclusionError,
    coverage,
    exclusions_path,
    load_exclusions,
    package_path,
)
from oomfuzz.sweep import (
    SiteFirsts,
    Unit,
    executor,
    one_line,
    replay_scenario,
    run_units,
    sweep_units,
)

__all__ = [
    "BaselineConfig",
    "GateResult",
    "check",
    "replay_regressions",
    "site_id",
    "sweep_sites",
    "update",
]

SCHEMA = "oomfuzz-baseline/1"


def site_id(site: Site) -> str:
    """``package/relative/path.py:qualname``; no line number."""
    path = site.file.replace(os.sep, "/")
    for root in ("wasmrt/", "oomfuzz/"):
        pos = path.rfind("/" + root)
        if pos >= 0:
            path = path[pos + 1 :]
            break
    else:
        if os.path.isabs(path):
            path = package_path(path)
    return f"{path}:{site.function}"


@dataclass(slots=True)
class SiteRow:
    kinds: set[str] = field(default_factory=set)
    hits: int = 0
    injected: int = 0
    failures: int = 0

    @property
    def handled(self) -> int:
        return self.injected - self.failures

    def to_dict(self) -> dict[str, object]:
        return {
            "kinds": sorted(self.kinds),
            "hits": self.hits,
            "injected": self.injected,
            "failures": self.failures,
            "handled": self.handled,
        }


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """The bounded sweep (it is recorded in the baseline file and reused by ``check``)."""

    paths: tuple[str, ...] = ("corpus",)
    mode: str = "transient"
    allocator: str = "both"
    sample: int = 4
    seed: int = 0
    check_every: int = 4
    jobs: int = 1
    exclude: tuple[str, ...] = ("regressions",)
    #: The code whose declared sites the sweep must reach (module names or paths
    #: relative to the repository root); empty: no static coverage rule.
    site_roots: tuple[str, ...] = ("wasmrt",)

    def to_dict(self) -> dict[str, object]:
        return {
            "paths": list(self.paths),
            "mode": self.mode,
            "allocator": self.allocator,
            "sample": self.sample,
            "seed": self.seed,
            "check_every": self.check_every,
            "exclude": list(self.exclude),
            "site_roots": list(self.site_roots),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], jobs: int = 1) -> BaselineConfig:
        return cls(
            tuple(d["paths"]),
            str(d["mode"]),
            str(d["allocator"]),
            int(d["sample"]),
            int(d["seed"]),
            int(d["check_every"]),
            jobs,
            tuple(d.get("exclude", ())),
            tuple(d.get("site_roots", ("wasmrt",))),
        )


@dataclass(slots=True)
class GateResult:
    problems: list[str] = field(default_factory=list)
    sites: dict[str, SiteRow] = field(default_factory=dict)
    injections: int = 0
    regressions: int = 0
    coverage: Coverage | None = None  # static site coverage of the bounded sweep

    @property
    def passed(self) -> bool:
        return not self.problems


# -- the bounded sweep ----------------------------------------------------------------


def _units(config: BaselineConfig, root: Path) -> list[Unit]:
    files = find_scenarios([str(root / p) for p in config.paths])
    scenarios: list[Scenario] = []
    for f in files:
        if any(part in config.exclude for part in f.relative_to(root).parts[:-1]):
            continue
        scenarios.append(load_scenario(f))
    return sweep_units(
        scenarios,
        config.mode,
        config.allocator,
        check_every=config.check_every,
        select=SiteFirsts(config.sample, config.seed),
    )


def sweep_sites(
    config: BaselineConfig, root: Path
) -> tuple[dict[str, SiteRow], list[str], int, set[Site]]:
    """Run the bounded sweep under ``root``: site table, problems, injections, injected sites."""
    done = sorted(run_units(_units(config, root), executor(config.jobs)), key=lambda r: r[0])
    return report_sites([rep for _, rep in done], root)


def report_sites(
    reports: Iterable[RunReport], root: Path
) -> tuple[dict[str, SiteRow], list[str], int, set[Site]]:
    """The gate's view of swept units: site table, problems, injections, injected sites."""
    sites: dict[str, SiteRow] = {}
    problems: list[str] = []
    injected: set[Site] = set()
    injections = 0
    for rep in reports:
        injections += rep.iterations
        name = _rel(rep.scenario, root)
        if rep.error:
            problems.append(f"{name} [{rep.mode}/{rep.allocator}]: {one_line(rep.error)}")
        for f in rep.failures:
            text = f.text().replace(rep.scenario, name)
            problems.append(text)
        for stat in rep.sites.values():
            if stat.injected:
                injected.add(stat.site)
            row = sites.setdefault(site_id(stat.site), SiteRow())
            row.kinds |= stat.kinds
            row.hits += stat.hits
            row.injected += stat.injected
            row.failures += stat.failures
    return dict(sorted(sites.items())), problems, injections, injected


def static_coverage(config: BaselineConfig, root: Path, injected: set[Site]) -> Coverage | None:
    """The bounded sweep against the declared sites of ``config.site_roots`` (None: no roots)."""
    if not config.site_roots:
        return None
    roots = [str(root / r) if (root / r).exists() else r for r in config.site_roots]
    try:
        universe = cached_scan(roots)
        excluded = load_exclusions(exclusions_path(root))
    except (ExclusionError, FileNotFoundError, SyntaxError) as e:
        raise ScenarioError(str(e)) from None
    return coverage(universe, injected, excluded)


def _rel(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


# -- regressions --------------------------------------------------------------------------


def regression_files(root: Path) -> list[Path]:
    d = root / "corpus" / "regressions"
    if not d.is_dir():
        return []
    return [p for p in find_scenarios([str(d)]) if "index" in load_scenario(p).directives]


def replay_regressions(files: Iterable[Path]) -> list[str]:
    """Replay each reproducer at its recorded index; one problem line per failure."""
    problems: list[str] = []
    for path in files:
        scn = load_scenario(path)
        d = scn.directives
        index = int(d["index"])
        modes = scn.modes() or ("transient",)
        for allocator in scn.allocators():
            for mode in modes:
                try:
                    res = replay_scenario(scn, allocator, mode, index)
                except DryRunError as e:
                    problems.append(
                        f"regression {path.name}: dry run fails: {str(e).splitlines()[0]}"
                    )
                    continue
                for it in res.failures:
                    problems.append(
                        f"regression {path.name} fails again [{mode}/{allocator} index={index}]: "
                        f"{it.verdict}: {it.detail}"
                    )
    return problems


# -- update and check -----------------------------------------------------------------------


def baseline_path(root: Path) -> Path:
    return root / "corpus" / "sites-baseline.json"


def update(root: Path, config: BaselineConfig, out: Path | None = None) -> GateResult:
    """Write the baseline from a bounded sweep (refuses to record one the gate would fail)."""
    sites, problems, injections, injected = sweep_sites(config, root)
    cov = static_coverage(config, root, injected)
    problems += cov.problems() if cov is not None else []
    result = GateResult(problems, sites, injections, coverage=cov)
    if problems:
        return result
    doc = {
        "schema": SCHEMA,
        "sweep": config.to_dict(),
        "injections": injections,
        "sites": {k: v.to_dict() for k, v in sites.items()},
    }
    (out or baseline_path(root)).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return result


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"no baseline at {path}: run `oomfuzz baseline --update`") from None
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ScenarioError(f"{path}: not an oomfuzz baseline (schema {SCHEMA!r})")
    return doc


def compare(old: dict[str, Any], new: dict[str, SiteRow]) -> list[str]:
    """The gate's site rules (see the module docstring)."""
    problems: list[str] = []
    for sid, row in old.items():
        if int(row.get("hits", 0)) > 0 and (sid not in new or new[sid].hits == 0):
            problems.append(
                f"site {sid} is no longer hit (baseline: {row.get('hits')} hits): the corpus "
                "lost coverage, or the site moved; run `oomfuzz baseline --update` if intended"
            )
    for sid, row in new.items():
        if sid in old:
            continue
        if row.injected == 0:
            problems.append(
                f"new site {sid} ({', '.join(sorted(row.kinds))}) is hit but was never injected"
            )
        elif row.failures:
            problems.append(
                f"new site {sid} ({', '.join(sorted(row.kinds))}): {row.failures} of "
                f"{row.injected} injected failures not handled"
            )
    return problems


def check(
    root: Path, baseline: Path | None = None, jobs: int = 1, report: SweepReport | None = None
) -> GateResult:
    """Replay the regressions, run the recorded bounded sweep, compare with the baseline.

    With ``report`` (a whole sweep of the corpus, e.g. its merged shards) the gate
    judges that report instead of running the bounded sweep: it injected at least
    where the bounded sweep would (every index, or a sample drawn per unit), and the
    sites it hit come from the same full dry runs.
    """
    doc = load_baseline(baseline or baseline_path(root))
    config = BaselineConfig.from_dict(doc["sweep"], jobs=jobs)
    regressions = regression_files(root)
    problems = replay_regressions(regressions)
    if report is None:
        sites, sweep_problems, injections, injected = sweep_sites(config, root)
    else:
        sites, sweep_problems, injections, injected = report_sites(report.runs, root)
    problems += sweep_problems
    problems += compare(doc["sites"], sites)
    cov = static_coverage(config, root, injected)
    problems += cov.problems() if cov is not None else []
    return GateResult(problems, sites, injections, len(regressions), cov)
