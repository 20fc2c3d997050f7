"""The universe of injection sites: every place in the code under test that can reach ``try_alloc``.

A *site* is where :func:`oomfuzz.inject.capture_site` stops its frame walk at
run time: the first frame outside the alloc module. So a site is a call of
``try_alloc`` in any scanned file, or an operation on one of the alloc
module's fallible containers that can reach ``try_alloc`` (``TryList.append``,
``TryDict[key] = value``, ``TryList.with_capacity(n)``, ``xs += items``, a
``TryList(items)`` construction ...); the alloc module itself is transparent,
exactly as it is to the frame walk.

Invariants:
- Nothing is hard-coded: the allocation entry point is ``try_alloc``'s own
  name, the containers and which of their operations allocate are found by
  reading the alloc module's source (a fixpoint over its classes' methods),
  and the files are whatever the roots hold (default: the ``wasmrt``
  package; a user's package that calls ``try_alloc`` is scanned the same way).
- Static and dynamic ids agree exactly: a site's line and function come from
  the compiled bytecode of its file (the call or store instruction's line,
  its code object's ``co_qualname``), which is what ``frame.f_lineno`` and
  ``frame.f_code.co_qualname`` report while that instruction runs; the file
  is ``oomfuzz.inject.short_path`` of the scanned file, as at run time.
  Code the compiler drops (``if False:``) declares no site.
- A receiver counts as a fallible container when its name or attribute is
  typed as one: annotated with a container class, or assigned a
  construction, a ``with_capacity`` or a call of a function annotated to
  return one. ``self.x`` is typed by the bindings of ``x`` in self's class
  (or its bases); ``obj.x`` by the bindings of ``x`` in any scanned file (a
  linker's ``_defs`` used from another module still counts).
- Names are followed through imports: aliases (``as``), modules
  (``alloc.try_alloc``), and re-exports under any name through the scanned
  packages and the alloc module's own. A function stored in a variable or
  passed as a value is not followed; ``Coverage.outside`` names any site the
  run time records in a scanned file that the scan did not declare.
- Filling room an earlier ``reserve`` granted (``put_reserved``,
  ``append_reserved``) never reaches ``try_alloc``, so it is no site: the
  alloc module's own source says so, not a list here.
- Exclusions (``corpus/sites-exclusions.json``) name a site by its
  line-free id ``path:qualname`` (as the baseline does) with a reason; a
  reason is required and an exclusion that matches no declared site is an
  error, so the file cannot silently rot.
"""

from __future__ import annotations

import ast
import dis
import functools
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

import wasmrt
import wasmrt.alloc as _alloc_module
from oomfuzz.inject import Site, short_path

__all__ = [
    "Coverage",
    "Exclusion",
    "ExclusionError",
    "StaticSite",
    "Universe",
    "coverage",
    "default_roots",
    "find_exclusions",
    "line_free_id",
    "load_exclusions",
    "package_path",
    "scan",
    "source_files",
]

EXCLUSIONS_SCHEMA = "oomfuzz-site-exclusions/1"

#: Augmented-assignment operators and the in-place method each calls.
_INPLACE = {
    ast.Add: "__iadd__",
    ast.Sub: "__isub__",
    ast.Mult: "__imul__",
    ast.BitOr: "__ior__",
    ast.BitAnd: "__iand__",
    ast.BitXor: "__ixor__",
}
_CALL_OPS = frozenset({"CALL", "CALL_FUNCTION_EX", "CALL_KW"})


@dataclass(frozen=True, slots=True)
class StaticSite:
    """One declared site: where it is and what it calls there."""

    site: Site
    via: str  # "try_alloc", "TryList.append", "TryDict[]=", ...

    @property
    def id(self) -> str:
        return line_free_id(self.site)

    def __str__(self) -> str:
        return f"{self.site} ({self.via})"

    def to_dict(self) -> dict[str, object]:
        return self.site.to_dict() | {"via": self.via}


def line_free_id(site: Site) -> str:
    """``package/relative/path.py:qualname`` (the baseline's site id; no line)."""
    return f"{package_path(site.file)}:{site.function}"


def package_path(path: str) -> str:
    """A site's file relative to its top-level package (``mypkg/sub/mod.py``), when the
    file is on disk; else the path as the site names it (already package-relative for
    code under ``src/`` or ``site-packages``)."""
    if not os.path.isfile(path):
        return path.replace(os.sep, "/")
    p = Path(os.path.abspath(path))
    parts = [p.name]
    d = p.parent
    while (d / "__init__.py").is_file():
        parts.insert(0, d.name)
        d = d.parent
    return "/".join(parts)


# -- the alloc module: entry point and fallible containers -----------------------------


@dataclass(frozen=True, slots=True)
class _Container:
    """A fallible container class and the operations of it that can reach ``try_alloc``."""

    name: str
    allocating: frozenset[str]  # method names, dunders included
    init_params: frozenset[str]  # __init__ parameters whose value decides whether it allocates
    returns_self: frozenset[str]  # class/static methods that return a new container


@dataclass(frozen=True, slots=True)
class _AllocApi:
    module: str  # dotted name of the alloc module
    path: str  # its file, normalised
    entry: str  # the allocation function's name
    containers: dict[str, _Container]


@functools.lru_cache(maxsize=8)
def _alloc_api(path: str, module: str, entry: str) -> _AllocApi:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), path)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    containers: dict[str, _Container] = {}
    for cls in classes:
        c = _analyse_container(cls, entry)
        if c is not None:
            containers[cls.name] = c
    return _AllocApi(module, _norm(path), entry, containers)


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _reaches(node: ast.AST, entry: str, allocating: set[str]) -> list[ast.AST]:
    """The nodes in ``node`` that call ``entry`` or one of the class's ``allocating`` operations."""
    found: list[ast.AST] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name) and f.id == entry:
                found.append(n)
            elif isinstance(f, ast.Attribute) and f.attr in allocating and not _is_super(f.value):
                found.append(n)  # super().m(...) is the base type's m, which never allocates
        elif isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if "__setitem__" in allocating and any(
                isinstance(t, ast.Subscript) and _is_self(t.value) for t in targets
            ):
                found.append(n)
            if isinstance(n, ast.AugAssign) and _is_self(n.target):
                dunder = _INPLACE.get(type(n.op))
                if dunder in allocating:
                    found.append(n)
    return found


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _is_super(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def _analyse_container(cls: ast.ClassDef, entry: str) -> _Container | None:
    methods = _methods(cls)
    allocating: set[str] = set()
    changed = True
    while changed:  # fixpoint: a method allocates if it reaches try_alloc or an allocating method
        changed = False
        for name, fn in methods.items():
            if name not in allocating and _reaches(fn, entry, allocating):
                allocating.add(name)
                changed = True
    if not allocating:
        return None
    init_params: set[str] = set()
    init = methods.get("__init__")
    if init is not None and "__init__" in allocating:
        params = {a.arg for a in (*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs)}
        for hit in _reaches(init, entry, allocating):
            init_params |= {n.id for n in ast.walk(hit) if isinstance(n, ast.Name)} & params
        init_params.discard("self")
    returns_self = {
        name
        for name, fn in methods.items()
        if _is_classmethod(fn) and fn.returns is not None and _names_in(fn.returns) & {cls.name}
    }
    return _Container(
        cls.name, frozenset(allocating), frozenset(init_params), frozenset(returns_self)
    )


def _is_classmethod(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        isinstance(d, ast.Name) and d.id in ("classmethod", "staticmethod")
        for d in fn.decorator_list
    )


def _names_in(annotation: ast.AST) -> set[str]:
    """Names an annotation mentions (string annotations parsed too)."""
    out: set[str] = set()
    for n in ast.walk(annotation):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            try:
                out |= _names_in(ast.parse(n.value, mode="eval"))
            except SyntaxError:
                continue
    return out


def _default_alloc_api() -> _AllocApi:
    path = _alloc_module.__file__
    assert path is not None
    return _alloc_api(path, _alloc_module.__name__, _alloc_module.try_alloc.__name__)


def _norm(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.abspath(path))


# -- roots and files -------------------------------------------------------------------


def default_roots() -> tuple[Path, ...]:
    """The package under test: wasmrt."""
    return tuple(Path(p) for p in wasmrt.__path__)


def _root_path(root: str | os.PathLike[str]) -> Path:
    """A directory or file, or an importable module/package name."""
    p = Path(root)
    if p.exists():
        return p
    spec = importlib.util.find_spec(str(root))
    if spec is None:
        raise FileNotFoundError(f"site root {root!s}: no such file, directory or module")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin is None:
        raise FileNotFoundError(f"site root {root!s}: module has no source file")
    return Path(spec.origin)


def _files(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    out: dict[str, Path] = {}
    for r in roots:
        p = _root_path(r)
        paths = [p] if p.is_file() else sorted(p.rglob("*.py"))
        for f in paths:
            if "__pycache__" not in f.parts:
                # Not resolved: a code object names its file by the path it was imported
                # from, symlinks included, and so must the declared site.
                out.setdefault(_norm(f), Path(os.path.abspath(f)))
    return [out[k] for k in sorted(out)]


def _module_name(path: Path) -> str:
    """The dotted name of ``path``, found by walking up through packages."""
    parts = [path.stem] if path.stem != "__init__" else []
    d = path.parent
    while (d / "__init__.py").exists():
        parts.insert(0, d.name)
        d = d.parent
    return ".".join(parts)


# -- name resolution ---------------------------------------------------------------------


class _Names:
    """What the alloc API's names are called in one file (imports, aliases, re-exports)."""

    def __init__(
        self,
        imports: Iterable[ast.AST],
        module: str,
        is_package: bool,
        api: _AllocApi,
        packages: frozenset[str],
        trees: dict[str, tuple[ast.Module, bool]],
    ) -> None:
        self.api = api
        self.packages = packages
        self.trees = trees  # the scanned modules, by dotted name (they may not be on sys.path)
        self.entry_names: set[str] = set()  # bare names bound to try_alloc
        self.class_names: dict[str, _Container] = {}  # bare names bound to a container class
        self.module_aliases: dict[str, str] = {}  # local name -> dotted module
        package = module if is_package else module.rpartition(".")[0]
        for node in imports:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.module_aliases[a.asname] = a.name
                    else:
                        top = a.name.partition(".")[0]
                        self.module_aliases[top] = top
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node.module, node.level, package)
                for a in node.names:
                    local = a.asname or a.name
                    self._bind(local, f"{base}.{a.name}" if base else a.name)

    def _may_name_api(self, dotted: str) -> bool:
        """Only the alloc module's package and the scanned packages can re-export it."""
        return dotted.partition(".")[0] in self.packages

    def _bind(self, local: str, dotted: str) -> None:
        target = self._resolve(dotted) if self._may_name_api(dotted) else None
        if target is None:
            # Maybe a module (``from wasmrt import alloc``); harmless if it is not.
            self.module_aliases[local] = dotted
            return
        if target == self.api.entry:
            self.entry_names.add(local)
        elif target in self.api.containers:
            self.class_names[local] = self.api.containers[target]

    def dotted(self, node: ast.AST) -> str | None:
        """``a.b.c`` with ``a`` an imported module, as a dotted name."""
        if isinstance(node, ast.Name):
            return self.module_aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def resolve(self, node: ast.AST) -> str | None:
        """The alloc-API object an expression names: the entry point or a container class."""
        if isinstance(node, ast.Name):
            if node.id in self.entry_names:
                return self.api.entry
            c = self.class_names.get(node.id)
            return c.name if c else None
        dotted = self.dotted(node) if isinstance(node, ast.Attribute) else None
        if dotted is None or not self._may_name_api(dotted):
            return None
        return self._resolve(dotted)

    def _resolve(self, dotted: str) -> str | None:
        return _resolve_dotted(dotted, self.api, self.trees)

    def container_class(self, node: ast.AST) -> _Container | None:
        name = self.resolve(node)
        return self.api.containers.get(name) if name else None


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    base = package.split(".") if package else []
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def _resolve_dotted(
    dotted: str, api: _AllocApi, trees: dict[str, tuple[ast.Module, bool]], depth: int = 0
) -> str | None:
    """Which alloc-API name ``module.name`` refers to, following re-exports statically."""
    module, _, name = dotted.rpartition(".")
    if not module or depth > 8:
        return None
    if module == api.module:
        if name == api.entry or name in api.containers:
            return name
        return None
    source = trees.get(module) or _module_source(module)
    if source is None:
        return None
    tree, is_package = source
    package = module if is_package else module.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if (a.asname or a.name) == name:
                    base = _absolute(node.module, node.level, package)
                    return _resolve_dotted(f"{base}.{a.name}", api, trees, depth + 1)
    return None


@functools.lru_cache(maxsize=512)
def _module_source(module: str) -> tuple[ast.Module, bool] | None:
    """A module's parsed source, found on ``sys.path`` without importing anything."""
    rel = Path(*module.split("."))
    for entry in sys.path:
        base = Path(entry or ".")
        for candidate, is_package in (
            (base / rel / "__init__.py", True),
            (base / f"{rel}.py", False),
        ):
            if candidate.is_file():
                try:
                    tree = ast.parse(candidate.read_text(encoding="utf-8"), str(candidate))
                except (OSError, SyntaxError, ValueError):
                    return None
                return tree, is_package
    return None


# -- typing receivers as containers ------------------------------------------------------


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_BINDINGS = (ast.AnnAssign, ast.Assign, ast.NamedExpr)
_STORES = (ast.Assign, ast.AugAssign, ast.AnnAssign)


@dataclass(slots=True)
class _FileScan:
    """One file, indexed in a single pass over its tree."""

    path: Path
    module: str
    imports: list[ast.AST] = field(default_factory=list)
    classes: list[ast.ClassDef] = field(default_factory=list)
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=list)
    # Binding nodes (assignments, annotated arguments) and operation candidates, with scopes.
    bindings: list[tuple[ast.AST, ast.AST]] = field(default_factory=list)
    candidates: list[tuple[ast.AST, ast.AST]] = field(default_factory=list)
    # Statements directly in a class body (the names they bind are attributes): id -> class.
    class_body: dict[int, str] = field(default_factory=dict)
    # Function node id -> the class it is defined in (directly).
    owner_class: dict[int, str] = field(default_factory=dict)
    tree: ast.Module = field(default_factory=lambda: ast.Module(body=[], type_ignores=[]))
    names: _Names | None = None
    # Container-typed locals per scope node (module, function, lambda).
    locals_: dict[ast.AST, dict[str, _Container]] = field(default_factory=dict)
    # Functions in this file annotated to return a container.
    returning: dict[str, _Container] = field(default_factory=dict)
    # Classes in this file that subclass a container: name -> container.
    subclasses: dict[str, _Container] = field(default_factory=dict)

    @property
    def n(self) -> _Names:
        assert self.names is not None
        return self.names


def _index(path: Path, tree: ast.Module, api: _AllocApi) -> _FileScan:
    s = _FileScan(path, _module_name(path), tree=tree)
    stack: list[tuple[ast.AST, ast.AST]] = [(tree, tree)]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            s.imports.append(node)
        elif isinstance(node, ast.ClassDef):
            s.classes.append(node)
            for stmt in node.body:
                s.class_body[id(stmt)] = node.name
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    s.owner_class[id(stmt)] = node.name
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            s.functions.append(node)
        if isinstance(node, _BINDINGS) or (isinstance(node, ast.arg) and node.annotation):
            s.bindings.append((node, scope))
        if isinstance(node, (ast.Call, *_STORES)):
            s.candidates.append((node, scope))
        inner = node if isinstance(node, _FUNCTIONS) else scope
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return s


class _Typer:
    """Decides which expressions are fallible containers (see the module invariants)."""

    def __init__(self, scans: Sequence[_FileScan]) -> None:
        # attribute name -> {owning class (None: any), container}
        self.attributes: dict[str, dict[str | None, _Container]] = {}
        self.bases: dict[str, set[str]] = {}  # class name -> base class names
        for s in scans:
            for cls in s.classes:
                self.bases.setdefault(cls.name, set()).update(
                    b.id for b in cls.bases if isinstance(b, ast.Name)
                )
                for b in cls.bases:
                    c = s.n.container_class(b.value if isinstance(b, ast.Subscript) else b)
                    if c is not None:
                        s.subclasses[cls.name] = c
        for s in scans:
            for fn in s.functions:
                c = self._annotation(s, fn.returns) if fn.returns else None
                if c is not None:
                    s.returning[fn.name] = c
        changed = True
        while changed:  # a name assigned from a container-typed name is one too
            changed = False
            for s in scans:
                changed |= self._collect_bindings(s)

    def _annotation(self, s: _FileScan, ann: ast.AST) -> _Container | None:
        for name in sorted(_names_in(ann)):
            c = s.n.class_names.get(name) or s.subclasses.get(name)
            if c is not None:
                return c
        for n in ast.walk(ann):
            if isinstance(n, ast.Attribute):
                c = s.n.container_class(n)
                if c is not None:
                    return c
        return None

    def value(self, s: _FileScan, value: ast.AST, scope: ast.AST) -> _Container | None:
        """The container an expression evaluates to, if it is typed as one."""
        if isinstance(value, ast.Call):
            f = value.func
            c = s.n.container_class(f)
            if c is None and isinstance(f, ast.Name):
                c = s.subclasses.get(f.id) or s.returning.get(f.id)
            if c is None and isinstance(f, ast.Attribute):
                owner = s.n.container_class(f.value)
                if owner is not None and f.attr in owner.returns_self:
                    c = owner
                else:
                    c = s.returning.get(f.attr)
            return c
        if isinstance(value, ast.NamedExpr):
            return self.value(s, value.value, scope)
        if isinstance(value, ast.Name):
            return s.locals_.get(scope, {}).get(value.id) or s.locals_.get(s.tree, {}).get(value.id)
        if isinstance(value, ast.Attribute):
            return self._attribute(s, value, scope)
        return None

    def _attribute(self, s: _FileScan, node: ast.Attribute, scope: ast.AST) -> _Container | None:
        """``self.x`` is typed by x's bindings in self's class (or its bases, or untyped
        owners); ``obj.x`` by x's bindings anywhere (the receiver's class is unknown)."""
        owners = self.attributes.get(node.attr)
        if not owners:
            return None
        cls = s.owner_class.get(id(scope)) if _is_self(node.value) else None
        if cls is None:
            return next(iter(owners.values()))
        seen: set[str] = set()
        todo = [cls]
        while todo:
            c = todo.pop()
            if c in owners:
                return owners[c]
            seen.add(c)
            todo += [b for b in self.bases.get(c, ()) if b not in seen]
        return owners.get(None)

    def _collect_bindings(self, s: _FileScan) -> bool:
        changed = False
        for node, scope in s.bindings:
            targets: list[ast.AST] = []
            c: _Container | None = None
            if isinstance(node, ast.AnnAssign):
                c = self._annotation(s, node.annotation)
                if c is None and node.value is not None:
                    c = self.value(s, node.value, scope)
                targets = [node.target]
            elif isinstance(node, (ast.Assign, ast.NamedExpr)):
                c = self.value(s, node.value, scope)
                targets = list(node.targets) if isinstance(node, ast.Assign) else [node.target]
            elif isinstance(node, ast.arg) and node.annotation is not None:
                c = self._annotation(s, node.annotation)
                targets = [ast.Name(id=node.arg)]
            if c is not None:
                for t in targets:
                    changed |= self._bind(s, t, c, scope, s.class_body.get(id(node)))
        return changed

    def _bind(
        self, s: _FileScan, target: ast.AST, c: _Container, scope: ast.AST, in_class: str | None
    ) -> bool:
        if isinstance(target, ast.Name) and in_class is None:
            names = s.locals_.setdefault(scope, {})
            if target.id in names:
                return False
            names[target.id] = c
            return True
        if isinstance(target, ast.Name):  # a class-body annotation: an attribute of that class
            attr, owner = target.id, in_class
        elif isinstance(target, ast.Attribute):
            attr = target.attr
            owner = s.owner_class.get(id(scope)) if _is_self(target.value) else None
        else:
            return False
        owners = self.attributes.setdefault(attr, {})
        if owner in owners:
            return False
        owners[owner] = c
        return True


# -- finding the operations ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Op:
    node: ast.AST  # the Call, the Subscript target, or the AugAssign
    ops: frozenset[str]  # bytecode operations that perform it
    via: str


def _operations(s: _FileScan, typer: _Typer) -> list[_Op]:
    api = s.n.api
    ops: list[_Op] = []
    for node, scope in s.candidates:
        in_sub = s.subclasses.get(s.owner_class.get(id(scope), ""))
        if isinstance(node, ast.Call):
            op = _call_op(s, typer, node, scope, in_sub, api)
            if op is not None:
                ops.append(op)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in _flatten(targets):
                if isinstance(t, ast.Subscript):
                    c = _receiver(s, typer, t.value, scope, in_sub)
                    if c is not None and "__setitem__" in c.allocating:
                        ops.append(_Op(t, frozenset({"STORE_SUBSCR"}), f"{c.name}[]="))
            if isinstance(node, ast.AugAssign):
                dunder = _INPLACE.get(type(node.op))
                c = _receiver(s, typer, node.target, scope, in_sub)
                if dunder and c is not None and dunder in c.allocating:
                    ops.append(_Op(node, frozenset({"BINARY_OP"}), f"{c.name}.{dunder}"))
    return ops


def _flatten(targets: Iterable[ast.AST]) -> Iterator[ast.AST]:
    for t in targets:
        if isinstance(t, (ast.Tuple, ast.List)):
            yield from _flatten(t.elts)
        else:
            yield t


def _receiver(
    s: _FileScan, typer: _Typer, node: ast.AST, scope: ast.AST, in_sub: _Container | None
) -> _Container | None:
    """The container class a receiver expression is, if it is one."""
    if in_sub is not None and (_is_self(node) or _is_super(node)):
        return in_sub
    return typer.value(s, node, scope)


def _call_op(
    s: _FileScan,
    typer: _Typer,
    node: ast.Call,
    scope: ast.AST,
    in_sub: _Container | None,
    api: _AllocApi,
) -> _Op | None:
    f = node.func
    target = s.n.resolve(f)
    if target == api.entry:
        return _Op(node, _CALL_OPS, api.entry)
    made = api.containers.get(target) if target else None
    if made is None and isinstance(f, ast.Name):
        made = s.subclasses.get(f.id)
    if made is not None:  # a construction: allocates when it is given items
        if "__init__" in made.allocating and _binds(node, made.init_params):
            return _Op(node, _CALL_OPS, f"{made.name}()")
        return None
    if not isinstance(f, ast.Attribute):
        return None
    cls = s.n.container_class(f.value)
    if cls is not None:  # TryList.with_capacity(...)
        return _Op(node, _CALL_OPS, f"{cls.name}.{f.attr}") if f.attr in cls.allocating else None
    c = _receiver(s, typer, f.value, scope, in_sub)
    if c is not None and f.attr in c.allocating:
        return _Op(node, _CALL_OPS, f"{c.name}.{f.attr}")
    return None


def _binds(call: ast.Call, params: frozenset[str]) -> bool:
    """Whether a construction passes a value for one of ``params`` (they follow ``self``)."""
    if not params:
        return False
    if call.args:
        return True
    return any(k.arg is None or k.arg in params for k in call.keywords)


# -- bytecode: the line and function the frame walk will report -------------------------


def _code_objects(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _code_objects(const)


def _instruction_index(
    code: CodeType,
) -> dict[tuple[int, int], list[tuple[str, int, int, int, str]]]:
    """End position -> [(opname, start line, start col, end line, qualname)] of every instruction."""
    index: dict[tuple[int, int], list[tuple[str, int, int, int, str]]] = {}
    wanted = _CALL_OPS | {"STORE_SUBSCR", "BINARY_OP"}
    for c in _code_objects(code):
        for ins in dis.get_instructions(c):
            if ins.opname not in wanted:
                continue
            p = ins.positions
            if p is None or p.lineno is None or p.end_lineno is None or p.end_col_offset is None:
                continue
            index.setdefault((p.end_lineno, p.end_col_offset), []).append(
                (ins.opname, p.lineno, p.col_offset or 0, p.end_lineno, c.co_qualname)
            )
    return index


def _locate(
    op: _Op, index: dict[tuple[int, int], list[tuple[str, int, int, int, str]]]
) -> list[tuple[int, str]]:
    """(line, qualname) of each instruction that performs ``op`` (none if compiled away)."""
    n = op.node
    end: tuple[int, int] = (getattr(n, "end_lineno", 0) or 0, getattr(n, "end_col_offset", 0) or 0)
    start: tuple[int, int] = (getattr(n, "lineno", 0), getattr(n, "col_offset", 0))
    out: list[tuple[int, str]] = []
    for opname, line, col, _end_line, qualname in index.get(end, ()):
        if opname in op.ops and (line, col) >= start:
            out.append((line, qualname))
    return sorted(set(out))


# -- the universe --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Universe:
    """Every declared site under the roots."""

    roots: tuple[str, ...]
    sites: tuple[StaticSite, ...]
    files: frozenset[str] = frozenset()  # every scanned file, as a Site names it
    _by_site: dict[Site, StaticSite] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_site", {s.site: s for s in self.sites})

    def __len__(self) -> int:
        return len(self.sites)

    def __iter__(self) -> Iterator[StaticSite]:
        return iter(self.sites)

    def __contains__(self, site: object) -> bool:
        return site in self._by_site

    def get(self, site: Site) -> StaticSite | None:
        return self._by_site.get(site)

    def ids(self) -> set[str]:
        return {s.id for s in self.sites}

    def covers_file(self, file: str) -> bool:
        """Whether a run-time site in ``file`` should have been declared."""
        return file in self.files or file.startswith("<")  # "<...>": generated code

    def to_dict(self) -> dict[str, object]:
        return {"roots": list(self.roots), "sites": [s.to_dict() for s in self.sites]}


def source_files(roots: Iterable[str | os.PathLike[str]] | None = None) -> list[Path]:
    """The files :func:`scan` reads for ``roots``: the ``.py`` files under them and the
    alloc module (what the universe is a function of, with this module's own code)."""
    root_list = list(roots) if roots is not None else list(default_roots())
    return [*_files(root_list), Path(_default_alloc_api().path)]


def scan(roots: Iterable[str | os.PathLike[str]] | None = None) -> Universe:
    """Declare every site under ``roots`` (files, directories or module names; default wasmrt)."""
    root_list = list(roots) if roots is not None else list(default_roots())
    api = _default_alloc_api()
    scans: list[_FileScan] = []
    sources: dict[Path, str] = {}
    for f in _files(root_list):
        if _norm(f) == api.path:
            continue  # transparent to the frame walk, as it is at run time
        sources[f] = f.read_text(encoding="utf-8")
        scans.append(_index(f, ast.parse(sources[f], str(f)), api))
    packages = frozenset(
        {api.module.partition(".")[0]} | {s.module.partition(".")[0] for s in scans}
    )
    trees = {s.module: (s.tree, s.path.stem == "__init__") for s in scans}
    for s in scans:
        s.names = _Names(s.imports, s.module, trees[s.module][1], api, packages, trees)
    typer = _Typer(scans)
    sites: set[StaticSite] = set()
    for s in scans:
        ops = _operations(s, typer)
        if not ops:
            continue
        index = _instruction_index(compile(sources[s.path], str(s.path), "exec", dont_inherit=True))
        file = short_path(str(s.path))
        for op in ops:
            for line, qualname in _locate(op, index):
                sites.add(StaticSite(Site(file, line, qualname), op.via))
    files = frozenset(short_path(str(s.path)) for s in scans)
    return Universe(tuple(str(r) for r in root_list), tuple(_dedupe(sites)), files)


def _dedupe(sites: Iterable[StaticSite]) -> list[StaticSite]:
    """One entry per (file, line, function): two operations on one line are one site at run time."""
    by_site: dict[Site, StaticSite] = {}
    for s in sorted(sites, key=_order):
        prev = by_site.get(s.site)
        by_site[s.site] = s if prev is None else StaticSite(s.site, f"{prev.via}, {s.via}")
    return sorted(by_site.values(), key=_order)


def _order(s: StaticSite) -> tuple[str, int, str, str]:
    return (s.site.file, s.site.line, s.site.function, s.via)


# -- exclusions ------------------------------------------------------------------------------


class ExclusionError(ValueError):
    """The exclusions file is malformed, lacks a reason, or names no declared site."""


@dataclass(frozen=True, slots=True)
class Exclusion:
    id: str  # line-free site id, path:qualname
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"site": self.id, "reason": self.reason}


def load_exclusions(path: str | os.PathLike[str]) -> list[Exclusion]:
    """Read an exclusions file; a missing file excludes nothing."""
    p = Path(path)
    if not p.exists():
        return []
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ExclusionError(f"{p}: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != EXCLUSIONS_SCHEMA:
        raise ExclusionError(f"{p}: not a site-exclusions file (schema {EXCLUSIONS_SCHEMA!r})")
    out: list[Exclusion] = []
    for i, row in enumerate(doc.get("exclusions", ())):
        if not isinstance(row, dict) or not isinstance(row.get("site"), str):
            raise ExclusionError(f"{p}: exclusion #{i} has no 'site'")
        reason = row.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ExclusionError(f"{p}: exclusion of {row['site']} gives no reason")
        out.append(Exclusion(row["site"], reason.strip()))
    return out


EXCLUSIONS_FILE = "sites-exclusions.json"


def exclusions_path(root: str | os.PathLike[str]) -> Path:
    """The repository's exclusions file (next to ``corpus/sites-baseline.json``)."""
    return Path(root) / "corpus" / EXCLUSIONS_FILE


def find_exclusions(paths: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The exclusions file for a sweep of ``paths``: in their common directory or above it."""
    resolved = [Path(p).resolve() for p in paths]
    if not resolved:
        return None
    dirs = [p if p.is_dir() else p.parent for p in resolved]
    try:
        start = Path(os.path.commonpath([str(d) for d in dirs]))
    except ValueError:  # different drives
        return None
    for d in (start, *start.parents):
        candidate = d / EXCLUSIONS_FILE
        if candidate.is_file():
            return candidate
    return None


# -- coverage ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coverage:
    """Sites injected ÷ sites declared, with every unreached site named."""

    declared: int
    injected: tuple[StaticSite, ...]
    unreached: tuple[StaticSite, ...]  # declared, never injected, not excluded
    excluded: tuple[tuple[StaticSite, str], ...]  # declared, never injected, excluded (reason)
    outside: tuple[Site, ...]  # injected at run time but not declared: the scan missed them
    stale_exclusions: tuple[Exclusion, ...] = ()  # name no declared site, or a site that is reached

    @property
    def ratio(self) -> float:
        return len(self.injected) / self.declared if self.declared else 1.0

    def text(self) -> str:
        return f"{len(self.injected)}/{self.declared} ({self.ratio:.1%})"

    def to_dict(self) -> dict[str, object]:
        return {
            "declared": self.declared,
            "injected": len(self.injected),
            "ratio": round(self.ratio, 4),
            "injected_sites": [s.to_dict() for s in self.injected],
            "unreached": [s.to_dict() for s in self.unreached],
            "excluded": [s.to_dict() | {"reason": r} for s, r in self.excluded],
            "outside": [s.to_dict() for s in self.outside],
            "stale_exclusions": [e.to_dict() for e in self.stale_exclusions],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Coverage:
        return cls(
            int(d["declared"]),
            tuple(_static_from_dict(x) for x in d.get("injected_sites", ())),
            tuple(_static_from_dict(x) for x in d.get("unreached", ())),
            tuple((_static_from_dict(x), str(x["reason"])) for x in d.get("excluded", ())),
            tuple(Site.from_dict(x) for x in d.get("outside", ())),
            tuple(
                Exclusion(str(x["site"]), str(x["reason"])) for x in d.get("stale_exclusions", ())
            ),
        )

    def problems(self) -> list[str]:
        """What the gate fails on: unreached sites, sites the scan missed, stale exclusions."""
        out = [
            f"site {s} is declared but no scenario reaches it: add a scenario, or exclude "
            f"{s.id} with a reason in the exclusions file"
            for s in self.unreached
        ]
        out += [
            f"site {s} was injected at run time but the static scan did not declare it "
            "(an allocation the site universe misses)"
            for s in self.outside
        ]
        out += [
            f"exclusion of {e.id} is stale: it names no declared site, or the corpus reaches it"
            for e in self.stale_exclusions
        ]
        return out

    def report_lines(self) -> list[str]:
        """The summary line and one line per unreached, excluded or undeclared site."""
        lines = [f"site coverage {self.text()}"]
        lines += [f"  unreached: {s}" for s in self.unreached]
        lines += [f"  excluded: {s} — {reason}" for s, reason in self.excluded]
        lines += [f"  not declared (scan missed it): {s}" for s in self.outside]
        lines += [f"  stale exclusion: {e.id}" for e in self.stale_exclusions]
        return lines


def _static_from_dict(d: dict[str, Any]) -> StaticSite:
    return StaticSite(Site.from_dict(d), str(d.get("via", "")))


def coverage(
    universe: Universe, injected: Iterable[Site], exclusions: Sequence[Exclusion] = ()
) -> Coverage:
    """Measure injected sites against the declared universe."""
    hit = set(injected)
    reasons = {e.id: e.reason for e in exclusions}
    done: list[StaticSite] = []
    unreached: list[StaticSite] = []
    excluded: list[tuple[StaticSite, str]] = []
    for s in universe:
        if s.site in hit:
            done.append(s)
        elif s.id in reasons:
            excluded.append((s, reasons[s.id]))
        else:
            unreached.append(s)
    outside = sorted(
        (s for s in hit if s not in universe and universe.covers_file(s.file)),
        key=lambda s: (s.file, s.line, s.function),
    )
    declared_ids = universe.ids()
    excluded_ids = {s.id for s, _ in excluded}
    stale = [e for e in exclusions if e.id not in declared_ids or e.id not in excluded_ids]
    return Coverage(
        len(universe), tuple(done), tuple(unreached), tuple(excluded), tuple(outside), tuple(stale)
    )
