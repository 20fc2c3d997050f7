"""The static universe of injection sites: what the scan declares, and that run time agrees.

A site is declared where the allocation hook's frame walk will stop at run
time, so every test here runs real code under an :class:`Injector` and
compares the sites it recorded with the scan's.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

import wasmrt
from oomfuzz.inject import Injector, Site
from oomfuzz.sites import (
    Exclusion,
    ExclusionError,
    coverage,
    find_exclusions,
    line_free_id,
    load_exclusions,
    scan,
)

ROOT = Path(__file__).resolve().parents[2]

# A package of our own that allocates through wasmrt. Lines marked "# site"
# are exactly the ones the scan must declare; "# not a site" ones must not be.
SEEDED = """
from __future__ import annotations

import wasmrt.alloc as A
from wasmrt import alloc
from wasmrt import try_alloc as grant
from wasmrt.alloc import AllocKind, TryDict, TryList, try_alloc

from . import helper
from .helper import grant_again

K = AllocKind.OTHER


def reached() -> None:
    try_alloc(8, K)  # site


def unreached() -> None:
    try_alloc(8, K)  # site


def spelled() -> None:
    A.try_alloc(1, K)  # site
    grant(2, K)  # site
    alloc.try_alloc(2, K)  # site
    grant_again(2, K)  # site
    helper.grant_again(2, K)  # site
    try_alloc(  # site
        3,
        K,
    )
    if False:
        try_alloc(4, K)  # not a site: compiled away


def nested() -> list[None]:
    def inner() -> None:
        try_alloc(5, K)  # site

    inner()
    f = lambda: try_alloc(6, K)  # site
    f()
    return [try_alloc(7, K) for _ in range(2)]  # site


class Holder:
    items: TryList[int]

    def __init__(self) -> None:
        self.items = TryList()  # not a site: nothing to copy
        self.table: TryDict[str, int] = TryDict(kind=K)  # not a site
        self.plain: list[int] = []

    def fill(self) -> None:
        self.items.append(1)  # site
        self.items += [2, 3, 4, 5]  # site
        self.table["a"] = 1  # site
        self.plain.append(4)  # not a site
        self.table.get("a")  # not a site


class Other:
    def __init__(self) -> None:
        self.items: list[int] = []  # a plain list that shares the attribute's name

    def fill(self) -> None:
        self.items.append(1)  # not a site: Other's items is a list


class SubHolder(Holder):
    def more(self) -> None:
        # items is inherited from Holder
        self.items.extend(range(9))  # site


def outside_the_class(h: Holder) -> None:
    # the receiver's class is unknown here, and some class's items is a TryList
    h.items.extend(range(20))  # site


def containers() -> TryList[int]:
    xs = TryList.with_capacity(4)  # site
    ys: TryList[int] = TryList([1, 2])  # site
    ys.extend([5, 6, 7])  # site
    d = TryDict()  # not a site
    d.update({"k": 1})  # site
    d.reserve(8)  # site
    d.put_reserved("j", 2)  # not a site: fills room reserve granted
    xs.append_reserved(1)  # not a site
    del xs
    return ys


def from_function() -> None:
    zs = containers()
    for i in range(10):
        zs.insert(0, i)  # site


def try_alloc_lookalike(n: int) -> None:
    pass


class Mine(TryList[int]):
    def push(self, x: int) -> None:
        super().append(x)  # site
        self.extend([x] * 8)  # site
        try_alloc_lookalike(3)  # not a site


def everything_but_unreached() -> None:
    reached()
    spelled()
    nested()
    h = Holder()
    h.fill()
    Other().fill()
    sub = SubHolder()
    sub.more()
    outside_the_class(sub)
    from_function()
    Mine().push(1)
"""


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, object]]:
    pkg = tmp_path / "seededpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(textwrap.dedent(SEEDED))
    # A re-export under another name, two hops from try_alloc.
    (pkg / "helper.py").write_text("from wasmrt import try_alloc as grant_again\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("seededpkg.mod")
    yield pkg, module
    for name in ("seededpkg.mod", "seededpkg.helper", "seededpkg"):
        sys.modules.pop(name, None)


def _marked_lines(path: Path, marker: str) -> set[int]:
    return {i for i, line in enumerate(path.read_text().splitlines(), 1) if line.endswith(marker)}


def _recorded(fn: object) -> set[Site]:
    inj = Injector("count", record_all=True, stack_depth=0)
    with inj.installed():
        fn()  # type: ignore[operator]
    return {r.site for r in inj.records}


def test_seeded_package_declares_exactly_the_marked_lines(seeded: tuple[Path, object]) -> None:
    pkg, _ = seeded
    universe = scan([pkg])
    mod = pkg / "mod.py"
    assert {s.site.line for s in universe} == _marked_lines(mod, "# site")
    assert not {s.site.line for s in universe} & _marked_lines(mod, "# not a site")
    by_line = {s.site.line: s for s in universe}
    functions = {s.site.function for s in universe}
    assert {"nested.<locals>.inner", "nested.<locals>.<lambda>", "Mine.push"} <= functions
    vias = {s.via for s in universe}
    assert {"try_alloc", "TryList.append", "TryList.__iadd__", "TryDict[]=", "TryDict.update"} <= (
        vias
    )
    assert any(v.startswith("TryList.with_capacity") for v in vias)
    assert all(s.site.file == universe.sites[0].site.file for s in universe)
    assert by_line  # every declared site has a line
    # Line-free ids are relative to the top-level package, wherever it is checked out.
    assert {s.id for s in universe if s.site.function == "reached"} == {"seededpkg/mod.py:reached"}


def test_every_site_run_time_records_in_the_seeded_package_is_declared(
    seeded: tuple[Path, object],
) -> None:
    pkg, module = seeded
    universe = scan([pkg])
    recorded = _recorded(module.everything_but_unreached)  # type: ignore[attr-defined]
    assert recorded, "the seeded package allocated nothing"
    outside = [s for s in recorded if s not in universe]
    assert not outside, f"recorded at run time but not declared: {outside}"
    cov = coverage(universe, recorded)
    assert cov.outside == ()
    unreached = [s.site for s in cov.unreached]
    mod = pkg / "mod.py"
    src = mod.read_text().splitlines()
    assert len(unreached) == 1
    (only,) = unreached
    assert only.function == "unreached"
    assert "try_alloc(8, K)" in src[only.line - 1]
    assert cov.declared == len(universe)
    assert len(cov.injected) == len(universe) - 1


def test_a_new_try_alloc_call_joins_the_universe_unreached(
    seeded: tuple[Path, object],
) -> None:
    pkg, module = seeded
    before = scan([pkg])
    mod = pkg / "mod.py"
    mod.write_text(
        mod.read_text() + "\n\ndef brand_new(n: int) -> None:\n    if n:\n        try_alloc(n, K)\n"
    )
    after = scan([pkg])
    added = {s.site for s in after} - {s.site for s in before}
    assert len(added) == 1
    (site,) = added
    assert site.function == "brand_new"
    assert site.line == len(mod.read_text().splitlines())
    cov = coverage(after, _recorded(module.everything_but_unreached))  # type: ignore[attr-defined]
    assert site in {s.site for s in cov.unreached}
    assert f"{site.file}:{site.line}" in "\n".join(str(s) for s in cov.unreached)


def test_roots_accept_module_names_files_and_directories(seeded: tuple[Path, object]) -> None:
    pkg, _ = seeded
    by_dir = scan([pkg])
    by_name = scan(["seededpkg"])
    by_file = scan([pkg / "mod.py"])
    assert by_dir.sites == by_name.sites == by_file.sites
    with pytest.raises(FileNotFoundError):
        scan(["no_such_package_anywhere"])


def _try_alloc_call_lines() -> set[tuple[str, int]]:
    """An independent oracle: every ``try_alloc(`` call token in wasmrt outside alloc.py."""
    out: set[tuple[str, int]] = set()
    base = Path(wasmrt.__file__).parent
    for path in base.rglob("*.py"):
        if path.name == "alloc.py" and path.parent == base:
            continue
        toks = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
        for prev, tok, nxt in zip(toks, toks[1:], toks[2:], strict=False):
            if (
                tok.type == tokenize.NAME
                and tok.string == "try_alloc"
                and nxt.string == "("
                and prev.string not in ("def", "import")
            ):
                out.add((path.relative_to(base.parent).as_posix(), tok.start[0]))
    return out


def test_wasmrt_universe_has_every_direct_try_alloc_call() -> None:
    universe = scan()
    declared = {(s.site.file, s.site.line) for s in universe if "try_alloc" in s.via}
    assert declared == _try_alloc_call_lines()
    # The fallible containers' operations are sites too (the linker's definitions).
    assert any(s.via.startswith("TryDict") for s in universe)
    assert not any(s.site.file.endswith("wasmrt/alloc.py") for s in universe)


def test_corpus_sweep_sites_are_all_declared(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    cmd = [
        sys.executable,
        "-m",
        "oomfuzz",
        "sweep",
        str(ROOT / "corpus"),
        "--mode",
        "transient",
        "--allocator",
        "both",
        "--sample",
        "1",
        "--json",
        str(out),
        "-q",
    ]
    env_path = str(ROOT / "src")
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": env_path},
    )
    assert out.exists(), proc.stderr
    rows = json.loads(out.read_text())["sites"]
    recorded = {Site.from_dict(r["site"]) for r in rows}
    assert len(recorded) > 20
    universe = scan()
    outside = sorted(str(s) for s in recorded if s not in universe)
    assert not outside, "sites the sweep recorded that the scan did not declare:\n" + "\n".join(
        outside
    )


def test_exclusions_need_a_reason_and_a_declared_site(tmp_path: Path) -> None:
    universe = scan()
    victim = universe.sites[0]
    path = tmp_path / "ex.json"
    path.write_text(
        json.dumps(
            {
                "schema": "oomfuzz-site-exclusions/1",
                "exclusions": [
                    {"site": victim.id, "reason": "unreachable on this platform"},
                    {"site": "wasmrt/nowhere.py:gone", "reason": "was deleted"},
                ],
            }
        )
    )
    ex = load_exclusions(path)
    assert ex[0] == Exclusion(victim.id, "unreachable on this platform")
    cov = coverage(universe, [], ex)
    assert victim in [s for s, _ in cov.excluded]
    assert victim not in cov.unreached
    assert [e.id for e in cov.stale_exclusions] == ["wasmrt/nowhere.py:gone"]
    # A reached site needs no exclusion: its exclusion is stale too.
    cov2 = coverage(universe, [victim.site], ex)
    assert victim.id in [e.id for e in cov2.stale_exclusions]
    path.write_text(
        json.dumps({"schema": "oomfuzz-site-exclusions/1", "exclusions": [{"site": victim.id}]})
    )
    with pytest.raises(ExclusionError, match="no reason"):
        load_exclusions(path)
    assert load_exclusions(tmp_path / "missing.json") == []


def test_line_free_ids_match_the_baseline_format() -> None:
    assert line_free_id(Site("wasmrt/vm/table.py", 12, "T.grow")) == "wasmrt/vm/table.py:T.grow"


def test_coverage_round_trips_and_names_what_the_gate_fails_on(
    seeded: tuple[Path, object],
) -> None:
    pkg, module = seeded
    universe = scan([pkg])
    recorded = _recorded(module.everything_but_unreached)  # type: ignore[attr-defined]
    stray = Site(universe.sites[0].site.file, 9999, "ghost")  # in a scanned file, undeclared
    elsewhere = Site("corpus/my_scenario.py", 3, "scenario")  # the user's own code: not ours
    cov = coverage(universe, [*recorded, stray, elsewhere], [Exclusion("x.py:gone", "old")])
    assert cov.outside == (stray,)
    again = type(cov).from_dict(json.loads(json.dumps(cov.to_dict())))
    assert again == cov
    problems = cov.problems()
    assert any("unreached" in p and "no scenario reaches it" in p for p in problems)
    assert any(":9999 in ghost" in p and "did not declare" in p for p in problems)
    assert any("x.py:gone is stale" in p for p in problems)
    lines = cov.report_lines()
    assert lines[0] == f"site coverage {cov.text()}"
    (unreached_line,) = [ln for ln in lines if "unreached:" in ln]
    assert f":{cov.unreached[0].site.line} in unreached" in unreached_line


def test_exclusions_file_is_found_from_the_swept_paths(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    scenario = corpus / "sub" / "a.wast"
    scenario.write_text("(module)")
    assert find_exclusions([scenario]) is None
    ex = corpus / "sites-exclusions.json"
    ex.write_text('{"schema": "oomfuzz-site-exclusions/1", "exclusions": []}')
    assert find_exclusions([scenario]) == ex
    assert find_exclusions([corpus]) == ex
    assert find_exclusions([corpus / "sub", scenario]) == ex


def test_a_package_imported_through_a_symlink_keeps_its_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real" / "linkedpkg"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("")
    (real / "mod.py").write_text(
        "from wasmrt.alloc import AllocKind, try_alloc\n\n\n"
        "def go() -> None:\n    try_alloc(1, AllocKind.OTHER)\n"
    )
    via = tmp_path / "via"
    via.mkdir()
    (via / "linkedpkg").symlink_to(real, target_is_directory=True)
    monkeypatch.syspath_prepend(str(via))
    try:
        module = importlib.import_module("linkedpkg.mod")
        recorded = _recorded(module.go)
        universe = scan(["linkedpkg"])
        assert recorded and all(s in universe for s in recorded)
    finally:
        for name in ("linkedpkg.mod", "linkedpkg"):
            sys.modules.pop(name, None)
