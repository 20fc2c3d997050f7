"""Imports run one way through the layers of ARCHITECTURE.md, with no cycles.

The import graph of every module under ``src/`` is read with ``ast``
(``tests/support/layering.py`` states how modules and imports are modelled):
imports inside functions count, imports under ``if TYPE_CHECKING:`` do not,
relative imports are resolved. Layers, low to high (a module imports only its
own layer or lower ones):

    wasmrt leaves   errors, alloc, ir, opcodes, trap and any other top-level
                    wasmrt module not placed below
    < binary < text < validate
    < vm            (with vm.allocator: the instance allocators)
    < compile
    < runtime, serialize
    < wasi
    < facade        the package ``wasmrt`` itself (``wasmrt/__init__.py``),
                    ``wasmrt.cli``, ``wasmrt.__main__``
    < oomfuzz

The facade is the package ``__init__`` of ``wasmrt`` only: a subpackage's
``__init__`` (``wasmrt.vm``, ``wasmrt.runtime``...) belongs to its
subpackage's layer, and importing ``wasmrt.vm.store`` is an edge to that
module alone (not to ``wasmrt/__init__.py``, which Python also runs), so
``from wasmrt import ir`` inside the vm is an import of the leaf ``wasmrt.ir``
while ``import wasmrt`` there would be an import of the facade (upward).

wasmrt also imports no project module inside a function (the guide's rule:
such imports hide cycles). Each rule is its own test case, so a failure names the rule and every
offending ``file:line``. The checker is tested on synthetic trees to prove it
can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.layering import Layers, cycles, function_level_imports, read_graph, upward_imports

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS = Layers.ordered(
    [
        ["wasmrt.errors", "wasmrt.alloc", "wasmrt.ir", "wasmrt.opcodes", "wasmrt.trap"],
        ["wasmrt.binary"],
        ["wasmrt.text"],
        ["wasmrt.validate"],
        ["wasmrt.vm"],
        ["wasmrt.compile"],
        ["wasmrt.runtime", "wasmrt.serialize"],
        ["wasmrt.wasi"],
        ["=wasmrt", "wasmrt.cli", "wasmrt.__main__"],
        ["oomfuzz"],
    ]
)


def _check(rule: str, root: Path) -> list[str]:
    graph = read_graph(root, packages=("wasmrt", "oomfuzz"))
    if rule == "wasmrt-layers":
        return upward_imports(graph, LAYERS, "wasmrt")
    if rule == "wasmrt-cycles":
        return cycles(graph, "wasmrt")
    if rule == "wasmrt-function-imports":
        return function_level_imports(graph, "wasmrt")
    if rule == "oomfuzz-layers":
        return upward_imports(graph, LAYERS, "oomfuzz")
    if rule == "oomfuzz-cycles":
        return cycles(graph, "oomfuzz")
    if rule == "oomfuzz-function-imports":
        return function_level_imports(graph, "oomfuzz")
    raise AssertionError(rule)


RULES = [
    "wasmrt-layers",
    "wasmrt-cycles",
    "wasmrt-function-imports",
    "oomfuzz-layers",
    "oomfuzz-cycles",
    "oomfuzz-function-imports",
]


@pytest.mark.parametrize("rule", RULES)
def test_src_follows_the_layer_rules(rule: str) -> None:
    problems = _check(rule, SRC)
    assert not problems, f"{rule}: {len(problems)} problem(s)\n" + "\n".join(problems)


def test_the_rules_see_every_layer_of_the_real_tree() -> None:
    graph = read_graph(SRC, packages=("wasmrt", "oomfuzz"))
    for module in ("wasmrt.vm.store", "wasmrt.runtime.store", "wasmrt.compile", "oomfuzz.cli"):
        assert module in graph.modules
    # The facade reaches the runtime, the runtime the vm, the compiler the vm.
    targets = {(e.source, e.target) for e in graph.edges}
    assert ("wasmrt", "wasmrt.runtime") in targets
    assert ("wasmrt.compile", "wasmrt.vm.backtrace") in targets
    assert LAYERS.layer_of("wasmrt.vm.allocator.pooling") == LAYERS.layer_of("wasmrt.vm")
    assert LAYERS.layer_of("wasmrt") > LAYERS.layer_of("wasmrt.runtime.store")
    assert LAYERS.layer_of("wasmrt.something_new") == LAYERS.layer_of("wasmrt.errors")


# The checker itself, on synthetic trees --------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


BASE = {
    "wasmrt/__init__.py": "from wasmrt.runtime import Store\n",
    "wasmrt/errors.py": "",
    "wasmrt/vm/__init__.py": "from wasmrt.vm.store import StoreCore\n",
    "wasmrt/vm/store.py": "from wasmrt import errors\n\nclass StoreCore: ...\n",
    "wasmrt/runtime/__init__.py": "from .store import Store\n",
    "wasmrt/runtime/store.py": "from ..vm import StoreCore\n\nclass Store: ...\n",
    "oomfuzz/__init__.py": "",
    "oomfuzz/cli.py": "import wasmrt\nfrom oomfuzz import sweep\n",
    "oomfuzz/sweep.py": "from wasmrt.runtime import store\n",
}


def test_a_clean_synthetic_tree_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, BASE)
    for rule in RULES:
        assert _check(rule, root) == [], rule


def test_an_upward_import_inside_a_function_fails_with_file_and_line(tmp_path: Path) -> None:
    vm_store = "from wasmrt import errors\n\ndef f():\n    from wasmrt.runtime.store import Store\n"
    root = _tree(tmp_path, {**BASE, "wasmrt/vm/store.py": vm_store})
    problems = _check("wasmrt-layers", root)
    assert len(problems) == 1
    assert f"{root / 'wasmrt/vm/store.py'}:4: wasmrt.vm.store" in problems[0]
    assert "imports wasmrt.runtime.store" in problems[0]
    (inside,) = _check("wasmrt-function-imports", root)
    assert "wasmrt/vm/store.py:4:" in inside and "inside a function" in inside
    # The same import makes a cycle: runtime.store -> vm -> vm.store -> runtime.store.
    (cycle,) = _check("wasmrt-cycles", root)
    assert "wasmrt.runtime.store" in cycle and "wasmrt.vm.store" in cycle


def test_a_relative_upward_import_fails(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**BASE, "wasmrt/errors.py": "from .vm import store\n"})
    (problem,) = _check("wasmrt-layers", root)
    assert "wasmrt/errors.py:1: wasmrt.errors" in problem and "wasmrt.vm.store" in problem


def test_importing_the_facade_from_below_fails(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**BASE, "wasmrt/vm/store.py": "import wasmrt\n"})
    (problem,) = _check("wasmrt-layers", root)
    assert "imports wasmrt (wasmrt wasmrt.cli wasmrt.__main__)" in problem


def test_type_checking_imports_do_not_count_but_their_else_branch_does(tmp_path: Path) -> None:
    text = (
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "if TYPE_CHECKING:\n    from wasmrt.runtime import Store\n"
        "if typing.TYPE_CHECKING:\n    import wasmrt.runtime.store\n"
        "else:\n    import wasmrt.runtime.store\n"
    )
    root = _tree(tmp_path, {**BASE, "wasmrt/vm/store.py": text})
    (problem,) = _check("wasmrt-layers", root)
    assert "wasmrt/vm/store.py:8:" in problem


def test_a_cycle_between_oomfuzz_modules_fails_and_names_both_edges(tmp_path: Path) -> None:
    sweep = "from wasmrt.runtime import store\n\ndef run():\n    from oomfuzz.cli import main\n"
    root = _tree(tmp_path, {**BASE, "oomfuzz/sweep.py": sweep})
    assert _check("wasmrt-cycles", root) == []
    (cycle,) = _check("oomfuzz-cycles", root)
    assert "oomfuzz/cli.py:2: oomfuzz.cli imports oomfuzz.sweep" in cycle
    assert "oomfuzz/sweep.py:4: oomfuzz.sweep imports oomfuzz.cli" in cycle


def test_a_package_importing_from_its_own_init_is_a_cycle(tmp_path: Path) -> None:
    # vm/__init__ imports vm.store, which imports a name from vm/__init__.
    root = _tree(tmp_path, {**BASE, "wasmrt/vm/store.py": "from wasmrt.vm import StoreCore\n"})
    (cycle,) = _check("wasmrt-cycles", root)
    assert "wasmrt.vm, wasmrt.vm.store" in cycle
