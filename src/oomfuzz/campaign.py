"""Hypothesis campaigns: the harness checks on generated scenarios.

One *example* is a scenario drawn from :func:`oomfuzz.strategies.scenarios`
(a valid module plus a few invokes/gets) and a fault plan drawn from
:func:`oomfuzz.strategies.fault_plans` (mode, allocator, index). The scenario
is rendered to a self-contained WAST script of plain invokes/gets (a trapping
invoke is recorded as that command's outcome by the WAST adapter: traps are
outcomes, not failures; a module whose instantiation traps is skipped). The script
is then swept by the same engine and checks as ``oomfuzz sweep``
(:class:`~oomfuzz.oomtest.OomTest` over :class:`~oomfuzz.scenario.ScenarioRunner`):
every injection index from ``plan.index % total`` to the end, in the plan's
mode and allocator, stopping at the first failing iteration. Starting at a
drawn index spends the budget on the execution part of the scenario (the
compile/instantiate prefix is what the hand-written corpus covers best);
``index`` shrinks toward 0, so a shrunk example sweeps every index.

Invariants:
- A failure raises a :class:`CampaignFailure` subclass named after its
  verdict and allocation site, so Hypothesis shrinks each distinct bug on its
  own and never slips from one bug to another while shrinking.
- A dry run that raises anything but an input problem (a generated module
  is valid, so a fault-free run must succeed) is a failure too (verdict
  ``dry_run``).
- The saved reproducer (``NAME.wast``, default directory
  ``corpus/regressions/``) carries the header
  ``;; oomfuzz: allocator=A mode=M index=N``; it is written with WAT text
  modules when they round-trip exactly, else with the checked binary
  modules, and it is replayed (``index`` only) before it is reported:
  ``CampaignFinding.reproduces`` says whether the replay failed again.
- Campaigns are reproducible: ``seed`` fixes every Hypothesis run (chunk
  ``k`` of worker ``j`` uses ``seed + 1000 * j + k``); the example database
  (a directory or ``redis://HOST:PORT``) is shared, so every campaign replays
  first what any campaign sharing it found.
- ``cluster``: the campaign workers (one per worker thread) run on a Dask
  cluster through the sweep's executor seam and share the database; the
  findings come back and are saved and replayed on this machine.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, assume, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from oomfuzz.inject import Injector
from oomfuzz.oomtest import DryRunError, OomTest
from oomfuzz.scenario import Scenario, ScenarioError, ScenarioRunner, load_scenario, parse_script
from oomfuzz.strategies import WastScenario, fault_plans, host_module_for, modules, scenarios
from oomfuzz.sweep import executor_for, replay_scenario
from wasmrt.binary import encode_module
from wasmrt.errors import WasmtimeError
from wasmrt.text.printer import print_module
from wasmrt.text.wat import parse_wat
from wasmrt.trap import Trap

__all__ = [
    "CampaignConfig",
    "CampaignFailure",
    "CampaignFinding",
    "CampaignResult",
    "open_database",
    "render_script",
    "run_campaign",
]

#: ``plan.index`` is drawn from ``[0, MAX_START]`` and taken modulo the allocation count.
MAX_START = 255


@dataclass(slots=True)
class CampaignConfig:
    """What a campaign runs and where it keeps what it finds."""

    time_budget: float = 60.0
    seed: int = 0
    database: str | None = None
    regressions: Path | None = Path("corpus/regressions")
    jobs: int = 1
    chunk: int = 25
    max_examples: int | None = None
    max_funcs: int = 3
    max_commands: int = 4
    modes: tuple[str, ...] = ("transient", "persistent")
    allocators: tuple[str, ...] = ("ondemand", "pooling")
    check_every: int = 1
    #: A Dask scheduler (``tcp://HOST:PORT``): campaign workers run there, one per
    #: worker thread, sharing ``database`` (which every worker must reach).
    cluster: str | None = None


@dataclass(slots=True)
class CampaignFinding:
    """A shrunk failure and its saved reproducer."""

    verdict: str
    site: str
    mode: str
    allocator: str
    index: int
    detail: str
    script: str
    wat: str
    functions: int
    path: str | None = None
    reproduces: bool | None = None
    #: The Hypothesis seed of the run that found it (its chunk's).
    seed: int | None = None

    def header(self) -> str:
        return f";; oomfuzz: allocator={self.allocator} mode={self.mode} index={self.index}"

    def reproducer(self) -> str:
        where = self.path or "<unsaved>"
        return (
            f"oomfuzz replay {where} --mode {self.mode} --allocator {self.allocator} "
            f"--index {self.index}"
        )


@dataclass(slots=True)
class CampaignResult:
    examples: int = 0
    chunks: int = 0
    elapsed: float = 0.0
    findings: list[CampaignFinding] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "examples": self.examples,
            "chunks": self.chunks,
            "elapsed": round(self.elapsed, 3),
            "findings": [asdict(f) for f in self.findings],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CampaignResult:
        return cls(
            int(d["examples"]),
            int(d["chunks"]),
            float(d["elapsed"]),
            [CampaignFinding(**f) for f in d["findings"]],
        )


class CampaignFailure(AssertionError):
    """An example failed the harness checks; ``finding`` says how."""

    def __init__(self, finding: CampaignFinding) -> None:
        super().__init__(
            f"{finding.verdict} at {finding.site} [mode={finding.mode} "
            f"allocator={finding.allocator} index={finding.index}]: {finding.detail}"
        )
        self.finding = finding


_FAILURE_TYPES: dict[str, type[CampaignFailure]] = {}


def _failure_type(verdict: str, site: str) -> type[CampaignFailure]:
    """One exception class per (verdict, site) so Hypothesis keeps distinct bugs apart."""
    key = f"{verdict}:{site}"
    cls = _FAILURE_TYPES.get(key)
    if cls is None:
        name = "CampaignFailure_" + re.sub(r"\W+", "_", key)[:80]
        cls = _FAILURE_TYPES[key] = type(name, (CampaignFailure,), {})
    return cls


# -- databases ----------------------------------------------------------------------


def open_database(spec: str | None) -> ExampleDatabase | None:
    """``None``, a directory path, or ``redis://HOST:PORT[/DB]`` (needs the ``redis`` package).

    A redis server is pinged first: ``ScenarioError`` (one line, naming the URL) when it
    cannot be reached.
    """
    if spec is None:
        return None
    if spec.startswith(("redis://", "rediss://")):
        # redis is an optional extra (``pip install wasmrt-oomfuzz[redis]``): imported
        # only when a redis URL is given, so a missing package is a one-line error.
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as e:
            raise ScenarioError(
                f"{spec}: a redis database needs the 'redis' package ({e}); pip install redis"
            ) from None
        try:
            client = redis.Redis.from_url(spec, socket_connect_timeout=5)
            client.ping()  # fail here, in one line, rather than inside the first example
        except (redis.exceptions.RedisError, ValueError) as e:
            raise ScenarioError(f"cannot use the example database {spec}: {e}") from None
        return RedisExampleDatabase(client, key_prefix=b"oomfuzz-campaign:")
    return DirectoryBasedExampleDatabase(spec)


# -- rendering ------------------------------------------------------------------------


def render_script(scn: WastScenario) -> str:
    """The WAST script for ``scn``: the modules, then its commands as plain invokes/gets."""
    return scn.to_wast()


def _scenario(text: str, name: str) -> Scenario:
    return Scenario(Path(name), {}, text, commands=parse_script(text, name))


def instantiation_traps(scn: WastScenario, allocator: str) -> bool:
    """Does the fault-free script trap outside an invoke (a trapping start function)?"""
    runner = ScenarioRunner(_scenario(render_script(scn), "<campaign>"), allocator)
    try:
        runner.run()
    except Trap:
        return True  # plain invokes record their traps: only instantiation raises one
    except WasmtimeError:
        return False  # not a trap: the sweep's dry run meets it again and classifies it
    return False


def _count(text: str, allocator: str) -> int:
    runner = ScenarioRunner(_scenario(text, "<campaign>"), allocator)
    inj = Injector("count")
    with inj.installed():
        runner.run()
    return inj.count


def _wat_text(m: Any, name: str) -> str | None:
    """``m`` as WAT named ``$name`` if it parses back to the same binary, else ``None``."""
    text = print_module(m)
    if not text.startswith("(module"):
        return None
    named = f"(module ${name}" + text[len("(module") :]
    try:
        same = encode_module(parse_wat(named)) == encode_module(m)
    except (WasmtimeError, ValueError):
        return None  # the text form does not round-trip: keep the binary form
    return named if same else None


def readable_script(scn: WastScenario) -> str | None:
    """The script with WAT text modules instead of binary ones (``None`` if one does not round-trip)."""
    parts: list[str] = []
    for i, name in enumerate(dict.fromkeys(imp.module for imp in scn.module.imports)):
        host = _wat_text(host_module_for(scn.module, name), f"host{i}")
        if host is None:
            return None
        parts += [host, f'(register "{name}" $host{i})']
    main = _wat_text(scn.module, "main")
    if main is None:
        return None
    parts.append(main)
    parts += [cmd.to_wast() for cmd in scn.commands]
    return "\n".join(parts) + "\n"


def module_wat(scn: WastScenario) -> str:
    return str(print_module(scn.module))


# -- the property -----------------------------------------------------------------------


def check_example(
    scn: WastScenario, draw_plan: Callable[[int], Any], config: CampaignConfig
) -> None:
    """Sweep one generated scenario; raise a :class:`CampaignFailure` on a failing iteration."""
    plan = draw_plan(MAX_START)
    assume(not instantiation_traps(scn, plan.allocator))
    text = render_script(scn)
    total = _count(text, plan.allocator)
    start = plan.index % total if total else 0
    runner = ScenarioRunner(_scenario(text, "<campaign>"), plan.allocator)
    test = OomTest(
        mode=plan.mode,
        raise_on_failure=False,
        fail_fast=True,
        probe=runner,
        label="campaign",
        indices=range(start, total),
    )
    try:
        result = test.test(runner.run)
    except DryRunError as e:
        _fail(scn, "dry_run", "<dry run>", plan.mode, plan.allocator, -1, str(e))
        return
    if result.failures:
        it = result.failures[0]
        site = "<no injection>"
        if it.injected is not None:
            site = f"{it.injected.site.file}:{it.injected.site.function}"
        _fail(scn, str(it.verdict), site, it.mode, plan.allocator, it.index, it.detail)


def _fail(
    scn: WastScenario,
    verdict: str,
    site: str,
    mode: str,
    allocator: str,
    index: int,
    detail: str,
) -> None:
    finding = CampaignFinding(
        verdict=verdict,
        site=site,
        mode=mode,
        allocator=allocator,
        index=index,
        detail=detail[:2000],
        script=render_script(scn),
        wat=readable_script(scn) or "",
        functions=len(scn.module.funcs),
    )
    if not finding.wat:
        finding.wat = module_wat(scn)
    raise _failure_type(verdict, site)(finding)


def _strategy(config: CampaignConfig) -> st.SearchStrategy[WastScenario]:
    return scenarios(modules(max_funcs=config.max_funcs), max_commands=config.max_commands)


def _run_chunk(
    config: CampaignConfig, chunk_seed: int, examples: int
) -> tuple[list[CampaignFinding], int]:
    """One Hypothesis run of ``examples`` examples: the shrunk findings, examples executed."""
    counter = {"n": 0}

    @settings(
        max_examples=examples,
        database=open_database(config.database),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        report_multiple_bugs=True,
        print_blob=False,
    )
    @given(scn=_strategy(config), data=st.data())
    def oomfuzz_campaign(scn: WastScenario, data: st.DataObject) -> None:
        counter["n"] += 1

        def draw_plan(max_index: int) -> Any:
            return data.draw(
                fault_plans(
                    max_index=max_index,
                    modes=config.modes,  # type: ignore[arg-type]
                    allocators=config.allocators,  # type: ignore[arg-type]
                ),
                label="plan",
            )

        check_example(scn, draw_plan, config)

    if config.database is None:
        oomfuzz_campaign = seed(chunk_seed)(oomfuzz_campaign)
    else:
        # hypothesis.seed() turns the example database off, and a shared
        # database is the point here; Hypothesis reads this attribute of the
        # wrapped test when it picks its Random (get_random_for_wrapped_test).
        oomfuzz_campaign._hypothesis_internal_use_seed = chunk_seed  # type: ignore[attr-defined]
    try:
        oomfuzz_campaign()
    except CampaignFailure as e:
        return [e.finding], counter["n"]
    except BaseExceptionGroup as group:
        found: list[CampaignFinding] = []
        for exc in group.exceptions:
            if not isinstance(exc, CampaignFailure):
                raise  # not ours (a harness bug): surface it unchanged
            found.append(exc.finding)
        return found, counter["n"]
    return [], counter["n"]


def _save(finding: CampaignFinding, directory: Path, seed_used: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(finding.script.encode()).hexdigest()[:10]
    fn = re.sub(r"\W+", "_", finding.site.rsplit(":", 1)[-1]).strip("_") or "site"
    path = directory / f"{finding.verdict}-{fn}-{digest}.wast"
    intro = [
        finding.header(),
        f";; found by `oomfuzz fuzz --seed {seed_used}`: {finding.verdict} at {finding.site}",
    ]
    for form in (finding.wat if finding.wat.startswith("(module") else "", finding.script):
        if not form:
            continue
        path.write_text("\n".join(intro) + "\n" + form, encoding="utf-8")
        finding.path = str(path)
        finding.reproduces = replay_finding(path, finding)
        if finding.reproduces:
            return


def replay_finding(path: Path, finding: CampaignFinding) -> bool:
    """Does the saved file fail again at its recorded index (its dry run, for ``-1``)?"""
    scn = load_scenario(path)
    try:
        index = None if finding.index < 0 else finding.index
        res = replay_scenario(scn, finding.allocator, finding.mode, index)
    except DryRunError:
        return finding.index < 0
    return bool(res.failures)


def _worker(config: CampaignConfig, worker: int) -> CampaignResult:
    result = CampaignResult()
    start = time.monotonic()
    k = 0
    while True:
        left = None if config.max_examples is None else config.max_examples - result.examples
        if left is not None and left <= 0:
            break
        if time.monotonic() - start >= config.time_budget:
            break
        chunk_seed = config.seed + 1000 * worker + k
        found, ran = _run_chunk(config, chunk_seed, min(config.chunk, left or config.chunk))
        result.examples += ran
        result.chunks += 1
        k += 1
        if found:
            for f in found:
                f.seed = chunk_seed
                if config.regressions is not None:
                    _save(f, config.regressions, chunk_seed)
            result.findings = found
            break
    result.elapsed = time.monotonic() - start
    return result


def _worker_dict(config: CampaignConfig, worker: int) -> dict[str, object]:
    return _worker(config, worker).to_dict()


def run_campaign(config: CampaignConfig) -> CampaignResult:
    """Run a time-boxed campaign (``jobs`` worker processes share the database).

    An unusable database raises ``ScenarioError`` before any work starts.
    """
    open_database(config.database)
    if config.jobs <= 1 and config.cluster is None:
        return _worker(config, 0)
    total = CampaignResult()
    start = time.monotonic()
    # On a cluster, reproducers are saved here, not on whichever machine found them.
    remote = dataclasses.replace(config, regressions=None) if config.cluster else config
    with executor_for(config.jobs, config.cluster) as where:
        workers = list(range(where.jobs))
        for _, d in where.map(functools.partial(_worker_dict, remote), workers):
            part = CampaignResult.from_dict(d)
            total.examples += part.examples
            total.chunks += part.chunks
            seen = {f.script for f in total.findings}
            total.findings += [f for f in part.findings if f.script not in seen]
    if config.cluster and config.regressions is not None:
        for f in total.findings:
            _save(f, config.regressions, f.seed if f.seed is not None else config.seed)
    total.elapsed = time.monotonic() - start
    return total


def describe(result: CampaignResult) -> Sequence[str]:
    lines = [
        f"campaign: {result.examples} examples in {result.chunks} Hypothesis runs, "
        f"{result.elapsed:.1f}s, {len(result.findings)} finding(s)"
    ]
    for f in result.findings:
        lines.append(
            f"FOUND {f.verdict} at {f.site} [mode={f.mode} allocator={f.allocator} "
            f"index={f.index}] in a module of {f.functions} function(s)"
        )
        lines.append(f"  {f.detail.splitlines()[0] if f.detail else ''}")
        if f.path:
            lines.append(
                f"  saved: {f.path} (replay {'fails again' if f.reproduces else 'PASSES'})"
            )
        lines.append(f"  reproduce: {f.reproducer()}")
        lines.append("  shrunk reproducer:")
        lines += ["    " + ln for ln in (f.wat or f.script).rstrip().splitlines()]
    return lines
