"""Shrink a failing WAST scenario while the same failure class at the same site persists.

The script is handled as an s-expression tree (comments and header
directives are kept verbatim at the top). Passes, each repeated to a fixed
point: drop top-level commands; then drop nested lists at increasing depth
(module fields such as exports, functions, segments; then folded
instructions and inline exports inside them); then shrink flat instruction
sequences in every ``func``/``block``/``loop``/``if``/``then``/``else`` body:
drop a whole flat ``block``/``loop``/``if`` ... ``end``, unwrap one (drop its
opener and ``end``), drop a pair of adjacent instructions, drop a single
instruction (an instruction is its mnemonic plus its immediates: numbers,
``$ids``, ``offset=``/``align=``, type words, a ``(type ...)``/``(param
...)``/``(result ...)`` use).

Invariants:
- A candidate is accepted only if it parses and a sweep restricted to the
  allocation indices whose dry-run site equals the target site (at most
  ``MAX_PROBES`` of them) reproduces the target's failure class there; the
  injection index may move, the site may not.
- A candidate whose module no longer validates (or whose script no longer
  runs fault-free) is rejected: the oracle's fault-free dry run compiles
  and instantiates every module first.
- Never more than ``budget`` candidate evaluations (a candidate text seen
  before is answered from a cache and not counted); the best text so far
  is returned when the budget runs out.
- A ``.wast`` scenario is shrunk as text. A lifecycle ``.py`` scenario
  (``setup``/``steps``/``teardown``) is shrunk by its steps: drop steps
  (one at a time, to a fixed point) while the same class at the same site
  persists, and return the file with a ``# oomfuzz: steps=...`` directive
  naming the steps kept. Any other ``.py`` scenario is code:
  :func:`minimize` raises ``ScenarioError`` with a one-line message (the
  CLI exits 2).
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oomfuzz.checks import FailureClass
from oomfuzz.inject import Injector
from oomfuzz.oomtest import DryRunError, execute
from oomfuzz.report import FailureRecord
from oomfuzz.scenario import Scenario, ScenarioError, ScenarioRunner, load_scenario
from oomfuzz.sweep import replay, replay_scenario
from wasmrt.text.printer import print_module
from wasmrt.text.wast import parse_wast

__all__ = ["FailureKey", "minimize", "minimize_failures", "split_sexprs"]

#: A failure as ``minimize_failures`` names it: (scenario, mode, allocator, index).
FailureKey = tuple[str, str, str, int]

MAX_PROBES = 12

_MNEMONIC = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$")
_TYPE_WORDS = frozenset(
    {"i32", "i64", "f32", "f64", "v128", "funcref", "externref", "func", "extern"}
)
_BODY_HEADS = frozenset({"func", "block", "loop", "if", "then", "else"})
_BLOCK_OPENERS = frozenset({"block", "loop", "if"})
_BLOCK_USES = frozenset({"type", "param", "result"})


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


def _is_immediate(node: Node) -> bool:
    if node.children is not None:
        head = node.children[0].text if node.children else ""
        return head in _BLOCK_USES
    t = node.text
    return (
        t.startswith(("$", '"', "offset=", "align="))
        or t[:1] in "+-0123456789"
        or t in _TYPE_WORDS
        or t.startswith(("nan", "inf"))
    )


def instruction_spans(body: list[Node]) -> list[tuple[int, int]]:
    """``[start, end)`` child ranges of the flat instructions of a body list.

    ``body[0]`` is the list's head keyword; lists that are not immediates
    (folded instructions, ``(local ...)``, inline exports) are skipped.
    """
    spans: list[tuple[int, int]] = []
    i, n = 1, len(body)
    while i < n:
        c = body[i]
        if c.children is not None or c.text in _TYPE_WORDS or not _MNEMONIC.match(c.text):
            i += 1
            continue
        j = i + 1
        while j < n and _is_immediate(body[j]):
            j += 1
        spans.append((i, j))
        i = j
    return spans


def _flat_candidates(body: list[Node]) -> list[list[tuple[int, int]]]:
    """Cuts to try on one body, biggest first: whole blocks, unwraps, pairs, singles."""
    spans = instruction_spans(body)
    heads = [body[s].text for s, _ in spans]
    whole: list[list[tuple[int, int]]] = []
    unwrap: list[list[tuple[int, int]]] = []
    for k, head in enumerate(heads):
        if head not in _BLOCK_OPENERS:
            continue
        depth = 0
        for m in range(k, len(spans)):
            if heads[m] in _BLOCK_OPENERS:
                depth += 1
            elif heads[m] == "end":
                depth -= 1
                if depth == 0:
                    whole.append([(spans[k][0], spans[m][1])])
                    unwrap.append([spans[k], spans[m]])
                    break
    pairs = [[(spans[k][0], spans[k + 1][1])] for k in range(len(spans) - 1)]
    singles = [[sp] for sp in spans]
    return [*whole, *unwrap, *pairs, *singles]


def _bodies(forms: list[Node]) -> list[list[Node]]:
    """Every list (at any depth) whose head keyword opens an instruction sequence."""
    out: list[list[Node]] = []

    def walk(children: list[Node]) -> None:
        for c in children:
            if c.children is None:
                continue
            if c.children and c.children[0].children is None:
                if c.children[0].text in _BODY_HEADS:
                    out.append(c.children)
            walk(c.children)

    walk(forms)
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
        self.cache: dict[str, int | None] = {}

    def reproduces(self, text: str, suffix: str) -> int | None:
        if text not in self.cache:
            self.evaluations += 1
            self.cache[text] = self._evaluate(text, suffix)
        return self.cache[text]

    def _evaluate(self, text: str, suffix: str) -> int | None:
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
            for index in indices[:MAX_PROBES]:
                try:
                    res = replay_scenario(scn, self.allocator, self.mode, index)
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
    scn = load_scenario(path)
    if Path(path).suffix == ".py":
        if not scn.step_names:
            raise ScenarioError(
                f"{path}: a Python scenario cannot be minimized (only .wast scenarios and "
                "lifecycle .py scenarios, with setup() and steps, are shrunk)"
            )
        return _minimize_steps(scn, mode, allocator, index, budget, log)
    if scn.commands is None:
        raise ScenarioError(f"{path}: only .wast scenarios can be minimized")
    _, it = replay(path, mode, allocator, index)
    if it is None or not it.failed or it.injected is None:
        raise ScenarioError(
            f"{path}: index {index} does not fail ({it.verdict if it else 'out of range'})"
        )
    oracle = _Oracle(scn, mode, allocator, it.verdict, str(it.injected.site))
    log(f"target: {it.verdict} at {it.injected.site}")
    header, forms = split_sexprs(scn.text)
    suffix = scn.path.suffix

    def try_cut(body: list[Node], cuts: list[tuple[int, int]]) -> bool:
        if oracle.evaluations >= budget:
            return False
        saved = list(body)
        for start, end in sorted(cuts, reverse=True):
            del body[start:end]
        if oracle.reproduces(render(header, forms), suffix) is not None:
            return True
        body[:] = saved
        return False

    def shrink_flat() -> bool:
        """One cut accepted in some body (then the bodies are collected afresh)."""
        for body in _bodies(forms):
            for cuts in _flat_candidates(body):
                if oracle.evaluations >= budget:
                    return False
                if try_cut(body, cuts):
                    return True
        return False

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
        cuts = 0
        while oracle.evaluations < budget and shrink_flat():
            cuts += 1
        if cuts:
            changed = True
            log(f"dropped {cuts} flat instruction group(s)")
    text = render(header, forms)
    final = oracle.reproduces(text, suffix)
    log(f"minimized in {oracle.evaluations} evaluations; reproduce at --index {final}")
    wat = _as_wat(text)
    return text if wat is None else f"{text}\n;; modules as printed by wasmrt:\n{wat}"


def _target(path: str, mode: str, allocator: str, index: int) -> tuple[FailureClass, str]:
    _, it = replay(path, mode, allocator, index)
    if it is None or not it.failed or it.injected is None:
        raise ScenarioError(
            f"{path}: index {index} does not fail ({it.verdict if it else 'out of range'})"
        )
    return it.verdict, str(it.injected.site)


def _reproduces(
    scn: Scenario, allocator: str, mode: str, cls: FailureClass, site: str
) -> int | None:
    """The first index at ``site`` (of at most ``MAX_PROBES``) failing with ``cls``, or None."""
    try:
        runner = ScenarioRunner(scn, allocator)
    except ScenarioError:
        return None
    dry = execute(runner.run, Injector(mode="count", record_all=True), runner)
    if dry.exc is not None:
        return None
    indices = [r.index for r in dry.injector.records if str(r.site) == site]
    for index in indices[:MAX_PROBES]:
        try:
            res = replay_scenario(scn, allocator, mode, index)
        except DryRunError:
            return None
        if res.iterations and res.iterations[0].verdict is cls:
            return index
    return None


def _minimize_steps(
    scn: Scenario,
    mode: str,
    allocator: str,
    index: int,
    budget: int,
    log: Callable[[str], object],
) -> str:
    """Drop steps of a lifecycle scenario while the failure persists; see the module doc."""
    cls, site = _target(str(scn.path), mode, allocator, index)
    log(f"target: {cls} at {site}")
    kept = list(scn.step_names)
    if "steps" in scn.directives:
        kept = [n for n in kept if n in scn.directives["steps"].split(",")]
    evaluations = 0
    found: int | None = index
    changed = True
    while changed and evaluations < budget:
        changed = False
        for name in reversed(list(kept)):
            if len(kept) == 1 or evaluations >= budget:
                break
            trial = [n for n in kept if n != name]
            evaluations += 1
            directives = {**scn.directives, "steps": ",".join(trial)}
            at = _reproduces(
                dataclasses.replace(scn, directives=directives), allocator, mode, cls, site
            )
            if at is not None:
                kept, found, changed = trial, at, True
                log(f"dropped step {name!r}; {len(kept)} left")
    log(f"minimized in {evaluations} evaluations; reproduce at --index {found}")
    return _with_steps(scn.text, kept)


def _with_steps(text: str, kept: list[str]) -> str:
    """``text`` with its ``steps=`` directive set to ``kept`` (added on top if absent)."""
    value = "steps=" + ",".join(kept)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*#\s*oomfuzz:", line) and re.search(r"\bsteps=\S*", line):
            lines[i] = re.sub(r"\bsteps=\S*", value, line)
            return "\n".join(lines) + "\n"
    return f"# oomfuzz: {value}\n{text}"


def _as_wat(text: str) -> str | None:
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


def minimize_failures(
    failures: list[FailureRecord], limit: int, *, budget: int = 100
) -> dict[FailureKey, str]:
    """Minimize the first failure (lowest index) of each of the first ``limit`` groups of
    ``failures`` with one site and class (in site order): its minimized scenario text,
    or why it was not minimized (a line starting ``not minimized:``). Failures of a
    targeted or program-overridden unit (``options``) are not minimized: ``minimize``
    replays without those flags."""
    firsts: dict[tuple[str, str], FailureRecord] = {}
    for f in sorted(failures, key=lambda f: (f.site, f.cls.value, f.index)):
        firsts.setdefault((f.site, f.cls.value), f)
    out: dict[FailureKey, str] = {}
    for f in list(firsts.values())[:limit]:
        key = (f.scenario, f.mode, f.allocator, f.index)
        if f.options:
            out[key] = f"not minimized: the unit ran with {f.options}"
            continue
        try:
            out[key] = minimize(f.scenario, f.mode, f.allocator, f.index, budget=budget)
        except ScenarioError as e:
            out[key] = f"not minimized: {e}"
    return out
