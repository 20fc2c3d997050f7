"""Shared helpers for the binary-format tests: the suite's modules as bytes.

Invariants:
- ``load_corpus(tmp_dir)`` converts every .wast file of the suite once per
  process (so once per xdist worker) into a directory the caller owns and
  caches the result in this module; later calls return the cache.
- ``validator()`` returns ``wasmrt.validate.validate_module`` (a seam the
  fuzz tests replace to check that unexpected exceptions escape).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from support.testsuite import json_from_wast, wast_files
from wasmrt import ir
from wasmrt.validate import validate_module

#: Commands whose module must decode (and validate) cleanly.
VALID_TYPES = frozenset(
    {"module", "assert_unlinkable", "assert_uninstantiable", "assert_trap", "assert_return"}
)


@dataclass(frozen=True)
class SuiteModule:
    wast: str
    line: int
    kind: str  # the JSON command type
    module_type: str  # "binary" or "text" (for assert_* commands about a module)
    data: bytes


_CACHE: list[SuiteModule] | None = None


def modules_of(json_doc: dict, outdir: Path, wast: str) -> list[SuiteModule]:
    out = []
    for cmd in json_doc["commands"]:
        fn = cmd.get("filename")
        if not fn or not fn.endswith(".wasm"):
            continue
        data = (outdir / fn).read_bytes()
        out.append(
            SuiteModule(wast, cmd["line"], cmd["type"], cmd.get("module_type", "binary"), data)
        )
    return out


def load_corpus(tmp_dir: Path) -> list[SuiteModule]:
    global _CACHE
    if _CACHE is None:
        mods: list[SuiteModule] = []
        for wast in wast_files():
            outdir = tmp_dir / wast.stem
            doc = json_from_wast(wast, outdir)
            mods += modules_of(doc, outdir, wast.stem)
        _CACHE = mods
    return _CACHE


def validator() -> Callable[[ir.Module], object]:
    return validate_module
