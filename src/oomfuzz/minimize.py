"""Shrink a failing WAST scenario while the same failure class at the same site persists.

The script is handled as an s-expression tree (comments and header
directives are kept verbatim at the top). Passes, each repeated to a fixed
point: drop top-level commands; then drop nested lists at increasing depth
(module fields such as exports, functions, segments; then folded
instructions and inline exports inside them).

Invariants:
- A candidate is accepted only if it parses and a sweep restricted to the
  allocation indices whose dry-run site equals the target site (at most
  ``MAX_PROBES`` of them) reproduces the target's failure class there; the
  injection index may move, the site may not.
- Never more than ``budget`` candidate evaluations; the best text so far is
  returned when the budget runs out.
- Flat (unfolded) instruction sequences are not shrunk token by token.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oomfuzz.checks import CheckPolicy, FailureClass
from oomfuzz.inject import Injector
from oomfuzz.oomtest import DryRunError, OomTest, execute
from oomfuzz.scenario import Scenario, ScenarioError, ScenarioRunner, load_scenario

__all__ = ["minimize", "split_sexprs"]

MAX_PROBES = 12


@dataclass
class Node:
    text: str  # atom text, or "" for a list
    children: list[Node] | None = None

    def render(self) -> str:
        if self.children is None:
            return self.text
        return "(" + " ".join(c.render() for c in self.children) + ")"


def split_sexprs(text: str) -> tuple[str, list[Node]]:
    """Return (leading comment header, top-level forms) of a WAST script."""
    header_lines = []
    for line in text.splitlines():
        if line.strip().startswith(";;") or not line.strip():
            header_lines.append(line)
        else:
            break
    pos = 0
    forms: list[Node] = []
    stack: list[list[Node]] = [forms]
    n = len(text)
    while pos < n:
        c = text[pos]
        if c.isspace():
            pos += 1
        elif text.startswith(";;", pos):
            nl = text.find("\n", pos)
            pos = n if nl < 0 else nl + 1
        elif text.startswith("(;", pos):
            depth, pos = 1, pos + 2
            while pos < n and depth:
                if text.startswith("(;", pos):
                    depth, pos = depth + 1, pos + 2
                elif text.startswith(";)", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
        elif c == "(":
            node = Node("", [])
            stack[-1].append(node)
            assert node.children is not None
            stack.append(node.children)
            pos += 1
        elif c == ")":
            if len(stack) == 1:
                raise ScenarioError("unbalanced ')' in scenario")
            stack.pop()
            pos += 1
        elif c == '"':
            end = pos + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            stack[-1].append(Node(text[pos : end + 1]))
            pos = end + 1
        else:
            end = pos
            while end < n and not text[end].isspace() and text[end] not in '()";':
                end += 1
            stack[-1].append(Node(text[pos:end]))
            pos = end
    if len(stack) != 1:
        raise ScenarioError("unbalanced '(' in scenario")
    return "\n".join(header_lines), forms


def render(header: str, forms: list[Node]) -> str:
    body = "\n".join(f.render() for f in forms)
    return f"{header}\n{body}\n" if header else body + "\n"


def _lists_at_depth(forms: list[Node], depth: int) -> list[tuple[list[Node], int]]:
    """(parent children list, index) of every list node at ``depth`` (0 = top level)."""
    out: list[tuple[list[Node], int]] = []

    def walk(children: list[Node], d: int) -> None:
        for i, c in enumerate(children):
            if c.children is None:
                continue
            if d == depth:
                # Keep a node's head keyword (e.g. "module", "func"): only drop lists.
                out.append((children, i))
            else:
                walk(c.children, d + 1)

    walk(forms, 0)
    return out


class _Oracle:
    def __init__(
        self, scn: Scenario, mode: str, allocator: str, target_cls: FailureClass, site: str
    ) -> None:
        self.mode = mode
        self.allocator = allocator
        self.cls = target_cls
        self.site = site
        self.evaluations = 0
        self.index = -1
        self.directives_source = scn

    def reproduces(self, text: str, suffix: str) -> int | None:
        self.evaluations += 1
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"candidate{suffix}"
            path.write_text(text, encoding="utf-8")
            try:
                scn = load_scenario(path)
                runner = ScenarioRunner(scn, self.allocator)
            except ScenarioError:
                return None
            dry = execute(runner.run, Injector(mode="count", record_all=True), runner)
            if dry.exc is not None:
                return None
            indices = [r.index for r in dry.injector.records if str(r.site) == self.site]
            aao = scn.directives.get("allow_alloc_after_oom") == "true"
            for index in indices[:MAX_PROBES]:
                try:
                    res = OomTest(
                        mode=self.mode,
                        indices=[index],
                        raise_on_failure=False,
                        allow_alloc_after_oom=aao,
                        probe=runner,
                        policy=CheckPolicy(tracemalloc_every=0),
                    ).test(runner.run)
                except DryRunError:
                    return None
                if res.iterations and res.iterations[0].verdict is self.cls:
                    return index
        return None


def minimize(
    path: str,
    mode: str,
    allocator: str,
    index: int,
    *,
    budget: int = 400,
    log: Callable[[str], object] = lambda s: None,
) -> str:
    """Return the smallest scenario text found that keeps the failure; see the module doc."""
    from oomfuzz.cli import _replay

    scn = load_scenario(path)
    if scn.func is not None:
        raise ScenarioError("minimize works on .wast scenarios only")
    _, it = _replay(path, mode, allocator, index)
    if it is None or not it.failed or it.injected is None:
        raise ScenarioError(
            f"{path}: index {index} does not fail ({it.verdict if it else 'out of range'})"
        )
    oracle = _Oracle(scn, mode, allocator, it.verdict, str(it.injected.site))
    log(f"target: {it.verdict} at {it.injected.site}")
    header, forms = split_sexprs(scn.text)
    suffix = scn.path.suffix

    def try_remove(children: list[Node], i: int) -> bool:
        if oracle.evaluations >= budget:
            return False
        removed = children.pop(i)
        if oracle.reproduces(render(header, forms), suffix) is not None:
            return True
        children.insert(i, removed)
        return False

    changed = True
    while changed and oracle.evaluations < budget:
        changed = False
        i = len(forms) - 1
        while i >= 0:
            if len(forms) > 1 and try_remove(forms, i):
                changed = True
                log(f"dropped command; {len(forms)} left")
            i -= 1
        for depth in (1, 2, 3, 4):
            for children, idx in reversed(_lists_at_depth(forms, depth)):
                if idx < len(children) and try_remove(children, idx):
                    changed = True
    text = render(header, forms)
    final = oracle.reproduces(text, suffix)
    log(f"minimized in {oracle.evaluations} evaluations; reproduce at --index {final}")
    try:
        from wasmrt.text.printer import print_module  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return text
    wat = _as_wat(text, print_module)
    return text if wat is None else f"{text}\n;; modules as printed by wasmrt:\n{wat}"


def _as_wat(text: str, print_module: Callable[..., str]) -> str | None:
    try:
        from wasmrt.text.wast import parse_wast
    except ImportError:
        return None
    out = []
    for cmd in parse_wast(text):
        module = getattr(cmd, "module", None)
        if type(cmd).__name__ == "ModuleCommand" and module is not None:
            try:
                printed = print_module(module.parse())
            except Exception as e:  # noqa: BLE001 - printing is best effort; say why it failed
                printed = f";; (could not print: {type(e).__name__}: {e})"
            out.append("\n".join(";; " + ln for ln in printed.splitlines()))
    return "\n".join(out) if out else None
