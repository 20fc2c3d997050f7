"""The flat form's dispatch tree (``wasmrt.compile.dispatch``): deeply nested
hostile functions run in time linear in their size (issue 14: a chain of
nested ``if``/``else`` used to cost O(depth) per jump, O(depth^2) per call).

Work is counted, not timed: the Python line events of one call (each
``_pc`` comparison is one) must stay within a stated multiple of the depth.
Building, compiling (on the first call) and running such a chain stays within

    peak traced memory <= BUILD_BYTES_PER_CHAR * len(text) + BUILD_FIXED
    wall time          <= TIME_FIXED + TIME_PER_CHAR * len(text)

(measured ~290 bytes per character of text, most of it CPython compiling
the generated function; time only catches super-linear blowups).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

import wasmrt as w
from support.bounds import measure
from wasmrt.compile import dispatch

#: Line events one nesting level may cost: its own few lines plus one tree
#: path (at most FANOUT = 16 tests per level, a handful of levels, a LEAF = 16 chain).
LINES_PER_LEVEL = 256
BUILD_BYTES_PER_CHAR = 400
BUILD_FIXED = 16 << 20
TIME_FIXED = 20.0
TIME_PER_CHAR = 100e-6


def _chain(depth: int) -> str:
    """``f(x)`` = 3*x for 0 <= x < depth, else -1: an if/else-if chain ``depth`` deep."""
    body = "".join(
        f"local.get 0 i32.const {k} i32.eq if (result i32) i32.const {3 * k} else "
        for k in range(depth)
    )
    body += "i32.const -1" + " end" * depth
    return f'(module (func (export "f") (param i32) (result i32) {body}))'


def _nested_loop(depth: int) -> str:
    """``g(n)`` = 0 + 1 + ... + (n-1), computed by a loop under ``depth`` nested blocks."""
    inner = (
        "(local $i i32) (local $s i32) "
        + "block " * depth
        + "loop $l local.get $i local.get 0 i32.lt_u if "
        "local.get $s local.get $i i32.add local.set $s "
        "local.get $i i32.const 1 i32.add local.set $i br $l end end "
        + "end " * depth
        + "local.get $s"
    )
    return f'(module (func (export "g") (param i32) (result i32) {inner}))'


def _exports(wat: str) -> tuple[w.Store, Any]:
    engine = w.Engine()
    store = w.Store(engine)
    return store, w.Instance(store, w.Module(engine, wat), []).exports(store)


def _line_events(call: Callable[[], object]) -> tuple[object, int]:
    """``call()``'s result and the number of lines it ran in generated code."""
    count = [0]

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename == "<wasm module>":
            if event == "line":
                count[0] += 1
            return tracer
        return None

    sys.settrace(tracer)
    try:
        result = call()
    finally:
        sys.settrace(None)
    return result, count[0]


@pytest.mark.parametrize("depth", [50, 3000])
def test_deep_if_else_chain_computes_every_branch(depth: int) -> None:
    store, ex = _exports(_chain(depth))
    for x in (0, 1, depth // 2, depth - 1, depth, -5):
        want = 3 * x if 0 <= x < depth else -1
        assert ex["f"](store, x) == want


def test_deep_if_else_chain_runs_in_linear_work() -> None:
    depth = 4000
    store, ex = _exports(_chain(depth))
    assert ex["f"](store, depth) == -1  # compile first: only the call is counted
    result, lines = _line_events(
        lambda: ex["f"](store, depth)
    )  # every test fails: the deepest path
    assert result == -1
    assert lines <= LINES_PER_LEVEL * depth, f"{lines} line events for depth {depth}"


def test_deep_if_else_chain_builds_compiles_and_runs_within_linear_bounds() -> None:
    depth = 4000
    text = _chain(depth)

    def build_and_call() -> object:
        store, ex = _exports(text)
        return ex["f"](store, depth - 1)

    got = measure(build_and_call)
    assert got.value == 3 * (depth - 1)
    limit = BUILD_BYTES_PER_CHAR * len(text) + BUILD_FIXED
    assert got.peak <= limit, f"peak {got.peak} > {limit} for {len(text)} chars"
    assert got.seconds <= TIME_FIXED + TIME_PER_CHAR * len(text)


def test_loop_in_a_flat_function_costs_a_tree_path_per_iteration() -> None:
    depth, n = 300, 2000
    store, ex = _exports(_nested_loop(depth))
    assert ex["g"](store, 10) == 45
    result, lines = _line_events(lambda: ex["g"](store, n))
    assert result == n * (n - 1) // 2
    assert lines <= LINES_PER_LEVEL * (depth + n), f"{lines} line events"


def test_small_flat_functions_keep_the_plain_chain() -> None:
    lines = [
        "    _pc = 0",
        "    while True:",
        "        if _pc == 0:",
        "            return 1",
    ]
    assert dispatch.tree_dispatch(lines, [0] * 4, [(0, 2)]) == (lines, [0] * 4)
