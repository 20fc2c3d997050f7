"""``wasm-tools shrink`` predicate: exit 0 iff the module still shows the divergence.

Usage: ``python shrink_predicate.py --signature SIG MODULE.wasm``.

Invariants:
- "Interesting" means: Wasmtime accepts the module and the differential run
  reports a divergence whose ``signature`` equals ``SIG`` (a coarse class, so
  the divergence may move to another export while the module shrinks).
- Exit codes: 0 interesting, 1 not interesting. Any exception escaping the
  harness is a bug of the harness and propagates (non-zero exit, so the
  shrinker simply treats that candidate as not interesting).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from differential.harness import run_module  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signature", required=True)
    parser.add_argument("module", type=Path)
    ns = parser.parse_args(argv)
    report = run_module(ns.module.read_bytes())
    if report.divergence is not None and report.divergence.signature == ns.signature:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
