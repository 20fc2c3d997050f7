"""Spec-testsuite files as oomfuzz scenarios (issue 15, item 1).

Any spec file is a valid scenario under both allocators with default
settings: the pooling allocator is sized from what the script's modules need
(``wast_adapter.pool_needs``), and expected trap messages match as the spec
runner matches them (``wast_adapter.trap_matches``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oomfuzz.cli import main
from oomfuzz.context import SMALL_POOL, pool_size
from oomfuzz.scenario import load_scenario
from oomfuzz.wast_adapter import pool_needs, trap_matches
from support import testsuite
from wasmrt.trap import Trap, TrapCode

#: Files that failed their dry runs before: more instances or tables than the small pool
#: (imports, linking), memories grown past it (call, call_indirect, memory_grow), a trap
#: message naming the element (bulk), tables grown (table_grow).
REPRESENTATIVE = (
    "call.wast",
    "call_indirect.wast",
    "memory_grow.wast",
    "bulk.wast",
    "table_grow.wast",
    "imports.wast",
    "linking.wast",
)


def test_representative_spec_files_sweep_under_both_allocators(tmp_path: Path) -> None:
    suite = testsuite.testsuite_dir()
    out = tmp_path / "r.json"
    files = [str(suite / name) for name in REPRESENTATIVE]
    rc = main(["sweep", *files, "-q", "--sample", "2", "--seed", "1", "--json", str(out)])
    data = json.loads(out.read_text())
    errors = [f"{r['scenario']} {r['allocator']}: {r['error']}" for r in data["runs"] if r["error"]]
    assert errors == []
    assert data["summary"]["units"] == 2 * len(REPRESENTATIVE)
    assert {r["allocator"] for r in data["runs"]} == {"ondemand", "pooling"}
    assert rc == 0, data["summary"]


def test_the_pool_grows_to_what_a_script_instantiates() -> None:
    scn = load_scenario(testsuite.testsuite_dir() / "imports.wast")
    needs = scn.pool
    assert needs["total_core_instances"] > SMALL_POOL["total_core_instances"]
    size = pool_size(needs)
    assert size["total_core_instances"] == needs["total_core_instances"]
    # Never below the small pool (corpus scenarios are swept with it).
    assert all(size[k] >= v for k, v in SMALL_POOL.items())


def test_counted_needs(tmp_path: Path) -> None:
    script = tmp_path / "s.wast"
    script.write_text(
        """
        (module (memory 1 3) (table 5 funcref) (table 70000 70000 funcref))
        (module (memory 0) (table 0 funcref))
        (assert_unlinkable (module (import "nowhere" "m" (memory 1))) "unknown import")
        (assert_invalid (module (memory 1) (memory 1)) "multiple memories")
        """
    )
    needs = pool_needs(load_scenario(script).commands or [])
    assert needs["total_core_instances"] == 3  # two modules and the unlinkable attempt
    assert needs["total_memories"] == 2 and needs["total_tables"] == 3
    assert needs["max_tables_per_module"] == 2 and needs["max_memories_per_module"] == 1
    assert needs["table_elements"] == 70000
    assert needs["max_memory_size"] == 65536 * 65536  # (memory 0) may grow to 4 GiB


def test_a_directive_still_sets_the_pool_exactly(tmp_path: Path) -> None:
    script = tmp_path / "s.wast"
    script.write_text(
        ";; oomfuzz: allocator=pooling total_core_instances=1\n"
        "(module)\n"
        '(assert_unlinkable (module) "maximum concurrent limit")\n'
    )
    out = tmp_path / "r.json"
    assert main(["sweep", str(script), "-q", "--max-iters", "0", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["summary"]["errors"] == 0


def _trap(code: TrapCode, reason: str) -> Trap:
    trap = Trap(code)
    trap._reason = reason  # the wording a trap site chose
    return trap


@pytest.mark.parametrize(
    ("expected", "code", "reason", "matches"),
    [
        ("uninitialized element 2", TrapCode.INDIRECT_CALL_TO_NULL, "uninitialized element", True),
        ("undefined element", TrapCode.TABLE_OUT_OF_BOUNDS, "out of bounds table access", True),
        ("unreachable", TrapCode.UNREACHABLE, "wasm `unreachable` instruction executed", True),
        (
            "integer overflow",
            TrapCode.UNREACHABLE,
            "wasm `unreachable` instruction executed",
            False,
        ),
        ("uninitialized element 2", TrapCode.TABLE_OUT_OF_BOUNDS, "undefined element", False),
    ],
)
def test_trap_messages_match_as_the_spec_runner_matches_them(
    expected: str, code: TrapCode, reason: str, matches: bool
) -> None:
    assert trap_matches(expected, _trap(code, reason)) is matches
