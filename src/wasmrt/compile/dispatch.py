"""The flat (state machine) form's dispatch: segments laid out as a search tree on ``_pc``.

A function too deeply nested for Python's block limits is generated flat
(``codegen``): ``_pc = 0; while True:`` around one ``if _pc == <label>:``
segment per jump target, in program order; a jump sets ``_pc`` and
``continue``s, falling into the next segment sets ``_pc`` and runs on. In
that chain a jump to the k-th segment tests k labels, so a function of S
segments taking J jumps runs in O(J * S): quadratic for hostile input (a
chain of 100,000 nested ``if``/``else``).

Invariants:
- ``tree_dispatch`` keeps every segment's lines unchanged but for a deeper
  indent, orders the segments by label and nests them in a search tree:
  each node an ``if _pc < <label>: ... elif ...: ... else: ...`` chain of
  at most ``FANOUT`` children, each leaf a chain of at most ``LEAF``
  segments. A jump tests at most ``FANOUT`` labels per level and ``LEAF``
  in its leaf, O(log S) in all. Within a leaf, falling into a later
  segment runs on as before; any other fall leaves the tree and the
  ``while`` dispatches it again: the same semantics, as every segment ends
  by setting ``_pc`` (or by ``continue``, ``return`` or raising).
- The output is linear in the input plus 4 characters per tree level per
  line; the levels are ``ceil(log_FANOUT(S / LEAF))``, at most 5 for any
  function Wasmtime accepts (7,654,321 body bytes). Each added line is
  attributed, in the returned line map, to the instruction of the first
  segment it leads to (its comparison cannot raise).
- Input it cannot lay out (labels not unique) is returned unchanged.
"""

from __future__ import annotations

__all__ = ["LEAF", "tree_dispatch"]

#: Most segments a leaf of the tree chains.
LEAF = 16
#: Most children of an inner node of the tree.
FANOUT = 16
#: Indentation of a segment header (``if _pc == k:``) in the flat form.
HEADER_INDENT = 2
_PAD = "    "


def tree_dispatch(
    lines: list[str], instrs: list[int], starts: list[tuple[int, int]]
) -> tuple[list[str], list[int]]:
    """``lines`` (with ``instrs``, one per line) with the segments starting at
    ``starts`` (``(label, line index)`` in program order) laid out as a tree."""
    labels = [label for label, _ in starts]
    if len(starts) <= LEAF or len(set(labels)) != len(labels) or len(lines) != len(instrs):
        return lines, instrs
    bounds = [index for _, index in starts] + [len(lines)]
    segments = sorted((label, bounds[k], bounds[k + 1]) for k, (label, _) in enumerate(starts))
    out_lines = lines[: bounds[0]]
    out_instrs = instrs[: bounds[0]]
    # An explicit stack, not recursion: (segments lo..hi, depth, branch line leading to them).
    work: list[tuple[int, int, int, str | None]] = [(0, len(segments), 0, None)]
    while work:
        lo, hi, depth, branch = work.pop()
        if branch is not None:
            out_lines.append(_PAD * (HEADER_INDENT + depth - 1) + branch)
            out_instrs.append(instrs[segments[lo][1]])
        if hi - lo <= LEAF:
            pad = _PAD * depth
            for _, start, end in segments[lo:hi]:
                out_lines.extend(pad + line for line in lines[start:end])
                out_instrs.extend(instrs[start:end])
            continue
        work.extend(reversed(_children(segments, lo, hi, depth + 1)))
    return out_lines, out_instrs


def _children(
    segments: list[tuple[int, int, int]], lo: int, hi: int, depth: int
) -> list[tuple[int, int, int, str | None]]:
    """The inner node over ``segments[lo:hi]``: its children, each with its branch line."""
    size = max(-(-(hi - lo) // FANOUT), LEAF)
    cuts = list(range(lo, hi, size)) + [hi]
    out: list[tuple[int, int, int, str | None]] = []
    for k in range(len(cuts) - 1):
        a, b = cuts[k], cuts[k + 1]
        if k == 0:
            branch = f"if _pc < {segments[b][0]}:"
        elif b < hi:
            branch = f"elif _pc < {segments[b][0]}:"
        else:
            branch = "else:"
        out.append((a, b, depth, branch))
    return out
