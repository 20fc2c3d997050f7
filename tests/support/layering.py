"""Static import graph of a source tree and the layer rules of ARCHITECTURE.md.

How modules and imports are modelled (the rules ``tests/test_layering.py`` enforces):

- Every ``.py`` file under the source root is one module, named by its dotted
  path (``pkg/__init__.py`` is the module ``pkg``).
- Every ``import``/``from ... import`` statement counts, wherever it is (module
  level, inside functions, classes, ``try`` blocks), except those in the body
  of an ``if TYPE_CHECKING:`` (or ``if typing.TYPE_CHECKING:``) block; its
  ``else`` branch counts. Relative imports are resolved against the importing
  module's package.
- An import names the most specific module it reaches: ``from a.b import c``
  is an edge to ``a.b.c`` when that is a module of the tree, else to ``a.b``
  (``c`` is a name defined in ``a/b/__init__.py``). Parent packages that Python
  executes implicitly on the way (``a/__init__.py`` for ``import a.b``) are
  not edges: a package ``__init__`` re-exporting its own submodules is then no
  cycle, while a submodule importing a name *from its own package's*
  ``__init__`` (which imports that submodule) is one, as it is at run time.
- Only edges between modules of the tree are kept (the standard library and
  third-party packages are not checked here).
- A layer is a rank; a module may import modules of its own rank or lower.
  ``layer_of`` maps a module to its rank by an exact entry (``=name``), else
  by the longest matching prefix in the layer table; a module no entry matches gets the table's ``default`` rank
  (for wasmrt: the small top-level leaves, so a new top-level module may only
  import leaves until it is placed explicitly).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Edge",
    "ImportGraph",
    "Layers",
    "cycles",
    "function_level_imports",
    "read_graph",
    "upward_imports",
]


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: Path
    line: int
    #: The import statement sits inside a function (or lambda) body.
    in_function: bool = False

    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class ImportGraph:
    """Modules of a source tree (name -> file) and the import edges between them."""

    root: Path
    modules: dict[str, Path] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def edges_from(self, module: str) -> list[Edge]:
        return [e for e in self.edges if e.source == module]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _import_nodes(tree: ast.AST) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement of ``tree`` outside ``if TYPE_CHECKING:`` bodies,
    with whether it is inside a function."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, in_function = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, in_function) for child in node.orelse)
            continue
        inner = in_function or isinstance(node, _FUNCTIONS)
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join([*base, node.module] if node.module else base)


def _targets(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: Mapping[str, Path]
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    source = _resolve_from(module, is_package, node)
    out = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        out.append(sub if sub in known else source)
    return out


def read_graph(root: Path, packages: Iterable[str] | None = None) -> ImportGraph:
    """The import graph of the modules under ``root`` (only ``packages`` if given)."""
    graph = ImportGraph(root)
    wanted = set(packages) if packages is not None else None
    for path in sorted(root.rglob("*.py")):
        name = _module_name(root, path)
        if wanted is None or name.split(".")[0] in wanted:
            graph.modules[name] = path
    seen: set[Edge] = set()
    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, in_function in _import_nodes(tree):
            for target in _targets(name, is_package, node, graph.modules):
                # ``import a.b.c`` of a name that is not itself a module: its nearest module.
                while target and target not in graph.modules:
                    target = target.rpartition(".")[0]
                edge = Edge(name, target, path, node.lineno, in_function)
                if target and target != name and edge not in seen:
                    seen.add(edge)
                    graph.edges.append(edge)
    return graph


@dataclass(frozen=True)
class Layers:
    """Ranks by module-name prefix, low to high; ``default`` for modules no prefix matches."""

    ranks: Mapping[str, int]
    names: tuple[str, ...]
    default: int
    exact: Mapping[str, int] = field(default_factory=dict)

    def layer_of(self, module: str) -> int:
        if module in self.exact:
            return self.exact[module]
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            rank = self.ranks.get(".".join(parts[:n]))
            if rank is not None:
                return rank
        return self.default

    @classmethod
    def ordered(cls, order: Iterable[Iterable[str]], default: int = 0) -> Layers:
        """``order`` lists, low to high, the module prefixes of each layer.

        A prefix spelled ``=name`` matches the module ``name`` only, not its submodules.
        """
        ranks: dict[str, int] = {}
        exact: dict[str, int] = {}
        names = []
        for rank, prefixes in enumerate(order):
            group = list(prefixes)
            names.append(" ".join(p.lstrip("=") for p in group))
            for prefix in group:
                if prefix.startswith("="):
                    exact[prefix[1:]] = rank
                else:
                    ranks[prefix] = rank
        return cls(ranks, tuple(names), default, exact)


def upward_imports(graph: ImportGraph, layers: Layers, scope: str) -> list[str]:
    """One line per import, by a module under ``scope``, of a module of a higher layer."""
    problems = []
    for e in graph.edges:
        if e.source != scope and not e.source.startswith(scope + "."):
            continue
        src, dst = layers.layer_of(e.source), layers.layer_of(e.target)
        if dst > src:
            problems.append(
                f"{e.where()}: {e.source} ({layers.names[src]}) imports {e.target} "
                f"({layers.names[dst]}), a higher layer"
            )
    return problems


def function_level_imports(graph: ImportGraph, scope: str) -> list[str]:
    """One line per import, by a module under ``scope``, of a project module inside a function."""
    return [
        f"{e.where()}: {e.source} imports {e.target} inside a function"
        for e in graph.edges
        if e.in_function and (e.source == scope or e.source.startswith(scope + "."))
    ]


def cycles(graph: ImportGraph, scope: str) -> list[str]:
    """One entry per import cycle among the modules under ``scope``, with its edges' file:line."""
    inside = {m for m in graph.modules if m == scope or m.startswith(scope + ".")}
    succ: dict[str, list[Edge]] = {m: [] for m in inside}
    for e in graph.edges:
        if e.source in inside and e.target in inside:
            succ[e.source].append(e)
    problems = []
    for component in _strongly_connected(inside, succ):
        if len(component) < 2:
            continue
        members = set(component)
        lines = [
            f"  {e.where()}: {e.source} imports {e.target}"
            for m in sorted(members)
            for e in succ[m]
            if e.target in members
        ]
        problems.append(
            "import cycle among " + ", ".join(sorted(members)) + ":\n" + "\n".join(lines)
        )
    return problems


def _strongly_connected(nodes: Iterable[str], succ: Mapping[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (module graphs can be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = succ[node]
            if i < len(edges):
                work.append((node, i + 1))
                nxt = edges[i].target
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                out.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out
