"""Targeted fault plans: an Injector with a FaultTarget numbers and refuses selected points only."""

from __future__ import annotations

import pickle

import pytest

from oomfuzz.checks import FailureClass
from oomfuzz.inject import Injector, Site
from oomfuzz.oomtest import OomTest
from oomfuzz.target import TARGETS, FaultTarget, parse_target
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import OutOfMemory

# A run's allocation sequence: (kind, absorbing); guest memory.grow is MEMORY + absorbing.
SEQUENCE = [
    (AllocKind.STORE, False),
    (AllocKind.MEMORY, True),  # guest point 0
    (AllocKind.LINKER, False),
    (AllocKind.MEMORY, False),  # host Memory.grow: not a guest point
    (AllocKind.MEMORY, True),  # guest point 1
    (AllocKind.TABLE, True),  # wasm table.grow: absorbing, not memory
    (AllocKind.MEMORY, True),  # guest point 2
    (AllocKind.CALL, False),
]


def run(inj: Injector) -> list[str]:
    """Each allocation's outcome: 'ok' or 'refused'."""
    out = []
    with inj.installed():
        for kind, absorbing in SEQUENCE:
            try:
                try_alloc(16, kind, absorbing)
            except OutOfMemory:
                out.append("refused")
            else:
                out.append("ok")
    return out


def test_guest_target_counts_selected_points_only() -> None:
    inj = Injector("count", target=TARGETS["guest"])
    assert run(inj) == ["ok"] * len(SEQUENCE)
    assert (inj.count, inj.selected) == (len(SEQUENCE), 3)


def test_transient_refuses_the_kth_selected_point_only() -> None:
    inj = Injector("transient", fail_at=1, target=TARGETS["guest"])
    assert run(inj) == ["ok", "ok", "ok", "ok", "refused", "ok", "ok", "ok"]
    (rec,) = inj.injected
    assert (rec.index, rec.point, rec.kind, rec.absorbing) == (4, 1, "memory", True)
    assert "selected point 1" in rec.describe()


def test_persistent_applies_to_the_selection_and_host_keeps_allocating() -> None:
    inj = Injector("persistent", fail_at=1, target=TARGETS["guest"])
    assert run(inj) == ["ok", "ok", "ok", "ok", "refused", "ok", "refused", "ok"]
    # Absorbing refusals only: the run is not "after OOM", nothing is recorded as such.
    assert inj.oom_raised is None and inj.after_oom == []


def test_host_target_and_after_oom() -> None:
    inj = Injector("persistent", fail_at=2, target=TARGETS["host"])
    assert run(inj) == ["ok", "ok", "ok", "refused", "ok", "ok", "ok", "refused"]
    assert inj.oom_raised is not None and inj.oom_raised.index == 3
    # The grants after the first non-absorbing refusal are allocations after OOM.
    assert [r.index for r in inj.after_oom] == [4, 5, 6, 7]


def test_without_target_every_allocation_is_a_point() -> None:
    inj = Injector("transient", fail_at=3)
    assert run(inj) == ["ok", "ok", "ok", "refused", "ok", "ok", "ok", "ok"]
    assert inj.injected[0].point == inj.injected[0].index == 3
    assert inj.selected == inj.count


def test_random_mode_draws_for_selected_points_only() -> None:
    inj = Injector("random", probability=1.0, target=TARGETS["absorbing"])
    assert run(inj) == ["ok", "refused", "ok", "ok", "refused", "refused", "refused", "ok"]


def test_site_patterns_select_by_where_the_allocation_is_made() -> None:
    target = parse_target("all", sites=["*test_target.py:*in run"])
    assert target is not None and target.needs_site
    inj = Injector("transient", fail_at=0, target=target)
    assert run(inj)[0] == "refused"
    other = parse_target("all", sites=["*no_such_file.py:*"])
    inj = Injector("persistent", fail_at=0, target=other)
    assert run(inj) == ["ok"] * len(SEQUENCE)
    assert inj.selected == 0


def test_parse_target() -> None:
    assert parse_target("all") is None
    assert parse_target("guest") == TARGETS["guest"]
    wasi = parse_target("host", kinds=["linker"])
    assert wasi is not None and wasi.matches("linker", False)
    assert not wasi.matches("linker", True) and not wasi.matches("store", False)
    with pytest.raises(ValueError, match="unknown target"):
        parse_target("guests")
    with pytest.raises(ValueError, match="unknown allocation kind"):
        parse_target("all", kinds=["heap"])
    with pytest.raises(ValueError, match="selects no allocation"):
        parse_target("guest", kinds=["table"])


def test_target_matches_and_pickles() -> None:
    site = Site("wasmrt/vm/memory.py", 10, "grow")
    guest = TARGETS["guest"]
    assert guest.matches("memory", True, site)
    assert not guest.matches("memory", False, site)
    assert not guest.matches("table", True, site)
    narrowed = FaultTarget(sites=("wasmrt/vm/*",))
    assert narrowed.matches("store", False, site)
    assert not narrowed.matches("store", False, None)
    assert pickle.loads(pickle.dumps(guest)) == guest


@pytest.mark.parametrize(
    "args",
    [("guest", (), ()), ("host", ("*/wasi/*",), ("linker", "call")), ("all", (), ("memory",))],
)
def test_flags_reproduce_the_target(args: tuple[str, tuple[str, ...], tuple[str, ...]]) -> None:
    target = parse_target(*args)
    assert target is not None
    flags = target.flags()
    name = flags[flags.index("--target") + 1] if "--target" in flags else "all"
    sites = [flags[i + 1] for i, f in enumerate(flags) if f == "--sites"]
    kinds = flags[flags.index("--kinds") + 1].split(",") if "--kinds" in flags else []
    assert parse_target(name, sites, kinds) == target


def absorbing_run() -> list[str]:
    """The sequence as a run: absorbing sites turn a refusal into -1, others raise."""
    out = []
    for kind, absorbing in SEQUENCE:
        try:
            try_alloc(16, kind, absorbing)
            out.append("ok")
        except OutOfMemory:
            if not absorbing:
                raise
            out.append("-1")
    return out


def test_oomtest_with_a_target_sweeps_the_selected_points_only() -> None:
    res = OomTest(target=TARGETS["guest"], mode="both").test(absorbing_run)
    assert res.total == 3  # the three guest points, not the eight allocations
    assert [(it.index, it.mode) for it in res.iterations] == [
        (i, m) for i in range(3) for m in ("transient", "persistent")
    ]
    assert all(it.verdict is FailureClass.HANDLED for it in res.iterations)
    injected = [it.injected for it in res.iterations]
    assert [r.index for r in injected if r is not None] == [1, 1, 4, 4, 6, 6]
    assert any("3 of 8 allocations selected" in n for n in res.notes)
    untargeted = OomTest(mode="transient").test(absorbing_run)
    assert untargeted.total == len(SEQUENCE)


def test_fork_engine_forks_at_the_selected_points() -> None:
    replay = OomTest(target=TARGETS["guest"], mode="both").test(absorbing_run)
    fork = OomTest(target=TARGETS["guest"], mode="both", engine="fork").test(absorbing_run)
    assert fork.engine == "fork" and fork.total == replay.total == 3
    assert [(it.index, it.mode, it.verdict) for it in fork.iterations] == [
        (it.index, it.mode, it.verdict) for it in replay.iterations
    ]
    assert [it.injected.index for it in fork.iterations if it.injected] == [1, 1, 4, 4, 6, 6]
