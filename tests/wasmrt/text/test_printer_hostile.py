"""``print_module`` on deeply nested code (issue 14): output linear in the module
(indentation capped at ``MAX_INDENT`` levels, runs of ``end`` closed at once),
and still read back to the same module."""

from __future__ import annotations

import pytest

from support.bounds import measure
from wasmrt.text import parse_wat
from wasmrt.text.printer import MAX_INDENT, print_module

#: Characters of output per instruction: the capped indent plus the longest text here.
CHARS_PER_INSTR = 2 * MAX_INDENT + 40
#: Traced bytes per instruction while printing (the lines list and their strings).
BYTES_PER_INSTR = 400
TIME_FIXED = 20.0
TIME_PER_INSTR = 100e-6


def _deep(depth: int) -> str:
    body = "local.get 0 if (result i32) i32.const 1 else " * depth + "i32.const 2" + " end" * depth
    return f"(module (func (param i32) (result i32) block {body} end))"


@pytest.mark.parametrize("folded", [False, True], ids=["flat", "folded"])
def test_deep_nesting_prints_in_linear_size_and_reads_back(folded: bool) -> None:
    depth = 30_000
    module = parse_wat(_deep(depth))
    n = len(module.funcs[0].body)
    got = measure(lambda: print_module(module, folded=folded))
    text = got.value
    assert len(text) <= CHARS_PER_INSTR * n
    assert got.peak <= BYTES_PER_INSTR * n + (8 << 20)
    assert got.seconds <= TIME_FIXED + TIME_PER_INSTR * n
    assert max(len(line) - len(line.lstrip(" ")) for line in text.splitlines()) == 2 * MAX_INDENT
    assert parse_wat(text) == module


def test_shallow_code_keeps_its_indentation() -> None:
    module = parse_wat("(module (func block loop nop end end))")
    lines = print_module(module).splitlines()
    assert "      loop" in lines and "        nop" in lines
    folded = print_module(module, folded=True)
    assert "(block\n      (loop\n        (nop))))" in folded
