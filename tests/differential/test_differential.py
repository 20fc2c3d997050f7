"""Differential and robustness samples: wasmrt against Wasmtime on generated modules.

Invariants:
- Every sample is deterministic: a fixed campaign seed (``WASMRT_DIFF_SEED``
  overrides it locally) names the smith inputs, so a failure reproduces with
  ``harness.run_seed(seed, index)``.
- The CI sample is ``DIFF_SHARDS x DIFF_PER_SHARD`` (>= 200) Wasm 2.0 modules
  without SIMD and ``ROBUST_SHARDS x ROBUST_PER_SHARD`` (>= 2,000) mutated
  inputs; shards are separate items so pytest-xdist spreads them.
- Robustness inputs are bounded in size (``robustness_inputs(max_size=...)``)
  instead of time-boxed: the per-input timeout lives in tools/diff_campaign.py.
- Every ``regressions/*.wat`` is replayed; one whose header has ``;; xfail:``
  is a known, unfixed divergence and is ``xfail(strict=True)``, so fixing
  it makes the test fail until the header line is removed.
- Harness self-tests run Wasmtime against itself and against deliberately
  different modules, so a silent harness is caught, not trusted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from differential import harness as h

DIFF_SEED = h.env_seed(20261123)
DIFF_SHARDS = 25
DIFF_PER_SHARD = 8
SIMD_SHARDS = 5
ROBUST_SHARDS = 10
ROBUST_BASES_PER_SHARD = 4
ROBUST_PER_BASE = 50


def _wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


# ---------------------------------------------------------------------------
# The harness itself


def test_scan_interface_finds_v128_exports_and_imports() -> None:
    wasm = _wat(
        """(module
          (type (func (param v128)))
          (import "m" "(func (;0;) (type 1))" (func (type 0)))
          (func (export "scalar") (result i32) i32.const 0)
          (func (export "vector") (type 0))
          (global (export "gv") (mut v128) (v128.const i64x2 0 0))
          (global (export "v128") i32 (i32.const 0)))"""
    )
    iface = h.scan_interface(wasm)
    assert iface.v128_import
    assert iface.v128_exports == frozenset({1, 2})

    plain = _wat('(module (func (export "f") (param i32) (result i32) local.get 0))')
    assert h.scan_interface(plain) == h.Interface(False, frozenset())


def test_norm_value_is_bit_exact_and_nan_tolerant() -> None:
    assert h.norm_value("f64", 0.0) != h.norm_value("f64", -0.0)
    assert h.norm_value("f32", float("nan")) == h.norm_value("f32", -float("nan"))
    assert h.norm_value("i32", -1) == h.norm_value("i32", 0xFFFFFFFF)
    assert h.norm_value("i64", -1) != h.norm_value("i64", 0xFFFFFFFF)
    assert h.norm_value("funcref", None) != h.norm_value("funcref", object())


def test_argument_vectors_cover_zero_one_and_edges() -> None:
    vectors = h.argument_vectors(["i32", "f64"])
    assert vectors[0] == (0, 0.0)
    assert vectors[1] == (1, 1.0)
    assert len(vectors) == 4
    assert h.argument_vectors([]) == [()]


_BASE = """(module
  (import "host" "log" (func $log (param i32)))
  (memory (export "mem") 1 1)
  (global $g (export "g") (mut i32) (i32.const 0))
  (func (export "f") (param i32) (result i32)
    (call $log (local.get 0))
    (i32.store (i32.const 8) (local.get 0))
    (global.set $g (local.get 0))
    %s))"""


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        ("(i32.add (local.get 0) (i32.const 1))", "call:ok-value"),
        ("(unreachable)", "call:ok-vs-trap"),
        ("(i32.div_u (i32.const 1) (i32.const 0))", "call:ok-vs-trap"),
        ("(i32.store (i32.const 9) (i32.const 1)) (local.get 0)", "state"),
        ("(global.set $g (i32.const 5)) (local.get 0)", "state"),
        ("(call $log (i32.const 3)) (local.get 0)", "hostcalls:ok-value"),
    ],
)
def test_harness_reports_each_kind_of_divergence(body: str, signature: str) -> None:
    same = _wat(_BASE % "(local.get 0)")
    other = _wat(_BASE % body)
    assert h.compare_sides(h.Side(wasmtime, same), h.Side(wasmtime, same)).divergence is None
    report = h.compare_sides(h.Side(wasmtime, same), h.Side(wasmtime, other))
    assert report.divergence is not None, report.summary()
    assert report.divergence.signature == signature, report.summary()


def test_harness_reports_trap_code_and_instantiation_differences() -> None:
    div0 = _wat('(module (func (export "f") (result i32) (i32.div_s (i32.const 1) (i32.const 0))))')
    ovf = _wat(
        '(module (func (export "f") (result i32)'
        " (i32.div_s (i32.const 0x80000000) (i32.const -1))))"
    )
    report = h.compare_sides(h.Side(wasmtime, div0), h.Side(wasmtime, ovf))
    assert report.divergence is not None
    assert report.divergence.signature == "call:trap-INTEGER_DIVISION_BY_ZERO-vs-INTEGER_OVERFLOW"

    ok = _wat('(module (memory 1) (data (i32.const 0) "x"))')
    oob = _wat('(module (memory 1) (data (i32.const 65536) "x"))')
    report = h.compare_sides(h.Side(wasmtime, ok), h.Side(wasmtime, oob))
    assert report.divergence is not None
    assert report.divergence.signature == "instantiate:ok-vs-trap"


def test_imported_state_is_compared_after_a_failed_instantiation() -> None:
    """Segments before a failing one stay written in host-owned (imported) memory."""
    template = """(module (import "m" "mem" (memory 1))
      (data (i32.const 0) "%s") (data (i32.const 65535) "xy"))"""
    a, b = _wat(template % "abc"), _wat(template % "abd")
    assert h.compare_sides(h.Side(wasmtime, a), h.Side(wasmtime, a)).divergence is None
    report = h.compare_sides(h.Side(wasmtime, a), h.Side(wasmtime, b))
    assert report.divergence is not None
    assert report.divergence.signature == "state"
    assert "MEMORY_OUT_OF_BOUNDS" in report.divergence.where


def test_fuel_exhaustion_is_skipped_not_compared() -> None:
    spin = _wat('(module (func (export "spin") (loop (br 0))))')
    report = h.compare_sides(h.Side(wasmtime, spin), h.Side(wasmtime, spin))
    assert report.divergence is None
    assert report.skipped_calls == 1 and report.compared_calls == 0


def test_harness_is_deterministic_on_generated_modules() -> None:
    compared = 0
    for index in range(15):
        wasm = h.smith(h.seed_bytes(DIFF_SEED, index))
        if wasm is None:
            continue
        report = h.compare_sides(h.Side(wasmtime, wasm), h.Side(wasmtime, wasm), f"{index}")
        assert report.divergence is None, report.summary()
        compared += report.compared_calls
    assert compared > 0


def test_regression_round_trip(tmp_path: Path) -> None:
    same = _wat(_BASE % "(local.get 0)")
    other = _wat(_BASE % "(i32.const 7)")
    report = h.compare_sides(h.Side(wasmtime, same), h.Side(wasmtime, other), "unit")
    assert report.divergence is not None
    path = h.save_regression(report, other, xfail="demo reason", directory=tmp_path)
    header = h.regression_header(path)
    assert header["divergence"] == "call:ok-value"
    assert header["xfail"] == "demo reason"
    assert h.regression_files(tmp_path) == [path]
    assert bytes(wasmtime.wat2wasm(path.read_text())) == other


def test_mutators_change_inputs_deterministically() -> None:
    import random

    base = _wat('(module (func (export "f") (result i32) i32.const 1))')
    a = [h.byte_mutation(base, random.Random(s)) for s in range(50)]
    b = [h.byte_mutation(base, random.Random(s)) for s in range(50)]
    assert a == b
    assert sum(m != base for m in a) >= 40
    assert h.wasm_mutate(base, 1) == h.wasm_mutate(base, 1)


# ---------------------------------------------------------------------------
# Operator matrix: every numeric and memory operator on every edge-value combination

_INT_BINARY = (
    "add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr"
    " eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u"
).split()
_FLOAT_BINARY = "add sub mul div min max copysign eq ne lt gt le ge".split()
_FLOAT_UNARY = "abs neg ceil floor trunc nearest sqrt".split()
_COMPARISONS = {"eq", "ne", "lt", "gt", "le", "ge", "lt_s", "lt_u", "gt_s", "gt_u"}
_COMPARISONS |= {"le_s", "le_u", "ge_s", "ge_u", "eqz"}


def _operator_funcs() -> dict[str, list[str]]:
    """Group name -> WAT functions ``(export "op") (param ..) (result ..)`` applying one op."""

    def fn(op: str, params: list[str], result: str) -> str:
        ps = " ".join(f"(param {p})" for p in params)
        gets = " ".join(f"local.get {i}" for i in range(len(params)))
        return f'(func (export "{op}") {ps} (result {result}) {gets} {op})'

    groups: dict[str, list[str]] = {}
    for t in ("i32", "i64"):
        unary = ["clz", "ctz", "popcnt", "eqz", "extend8_s", "extend16_s"]
        unary += ["extend32_s"] if t == "i64" else []
        funcs = [fn(f"{t}.{o}", [t, t], "i32" if o in _COMPARISONS else t) for o in _INT_BINARY]
        funcs += [fn(f"{t}.{o}", [t], "i32" if o == "eqz" else t) for o in unary]
        groups[t] = funcs
    for t in ("f32", "f64"):
        funcs = [fn(f"{t}.{o}", [t, t], "i32" if o in _COMPARISONS else t) for o in _FLOAT_BINARY]
        funcs += [fn(f"{t}.{o}", [t], t) for o in _FLOAT_UNARY]
        groups[t] = funcs
    conv = [
        fn("i32.wrap_i64", ["i64"], "i32"),
        fn("i64.extend_i32_s", ["i32"], "i64"),
        fn("i64.extend_i32_u", ["i32"], "i64"),
        fn("f32.demote_f64", ["f64"], "f32"),
        fn("f64.promote_f32", ["f32"], "f64"),
        fn("i32.reinterpret_f32", ["f32"], "i32"),
        fn("i64.reinterpret_f64", ["f64"], "i64"),
        fn("f32.reinterpret_i32", ["i32"], "f32"),
        fn("f64.reinterpret_i64", ["i64"], "f64"),
    ]
    for it in ("i32", "i64"):
        for ft in ("f32", "f64"):
            for sign in ("s", "u"):
                conv.append(fn(f"{it}.trunc_{ft}_{sign}", [ft], it))
                conv.append(fn(f"{it}.trunc_sat_{ft}_{sign}", [ft], it))
                conv.append(fn(f"{ft}.convert_{it}_{sign}", [it], ft))
    groups["conversions"] = conv
    mem = []
    loads = {
        "i32": ["load", "load8_s", "load8_u", "load16_s", "load16_u"],
        "i64": ["load", "load8_s", "load8_u", "load16_s", "load16_u", "load32_s", "load32_u"],
        "f32": ["load"],
        "f64": ["load"],
    }
    for t, ops in loads.items():
        for op in ops:
            for offset in (0, 65532, 4294967295):
                name = f"{t}.{op} offset={offset}"
                mem.append(
                    f'(func (export "{name}") (param i32) (result {t})'
                    f" local.get 0 {t}.{op} offset={offset})"
                )
        for op in ["store"] + [s[:-2].replace("load", "store") for s in ops if s.endswith("_u")]:
            for offset in (0, 65533):
                name = f"{t}.{op} offset={offset}"
                mem.append(
                    f'(func (export "{name}") (param i32 {t})'
                    f" local.get 0 local.get 1 {t}.{op} offset={offset})"
                )
    groups["memory"] = mem
    return groups


_OPERATORS = _operator_funcs()


@pytest.mark.parametrize("group", sorted(_OPERATORS))
def test_operator_matrix(group: str) -> None:
    """One module per operator (so every divergent operator is listed), all edge values."""
    memory = '(memory (export "mem") 1 1) (data (i32.const 65520) "0123456789abcdef")'
    diverged = []
    calls = 0
    for func in _OPERATORS[group]:
        wasm = _wat(f"(module {memory if group == 'memory' else ''} {func})")
        report = h.run_module(wasm, label=func, exhaustive=True)
        calls += report.compared_calls
        if report.divergence is not None:
            diverged.append(report.summary())
    assert not diverged, "\n".join(diverged)
    assert calls >= len(_OPERATORS[group]) * 8


# ---------------------------------------------------------------------------
# The CI samples


@pytest.mark.parametrize("shard", range(DIFF_SHARDS))
def test_differential_sample(shard: int) -> None:
    reports = []
    for index in range(shard * DIFF_PER_SHARD, (shard + 1) * DIFF_PER_SHARD):
        report = h.run_seed(DIFF_SEED, index)
        if report is not None:
            reports.append(report)
    diverged = [r.summary() for r in reports if r.divergence is not None]
    assert not diverged, "\n".join(diverged)
    assert len(reports) >= DIFF_PER_SHARD // 2
    assert sum(r.compared_calls for r in reports) > 0


@pytest.mark.parametrize("shard", range(SIMD_SHARDS))
def test_differential_simd_sample(shard: int) -> None:
    """A smaller sample with SIMD bodies (v128 never crosses the API: see ``Interface``)."""
    opts = h.SmithOptions(simd=True)
    diverged = []
    for index in range(shard * DIFF_PER_SHARD, (shard + 1) * DIFF_PER_SHARD):
        report = h.run_seed(f"simd-{DIFF_SEED}", index, opts)
        if report is not None and report.divergence is not None:
            diverged.append(report.summary())
    assert not diverged, "\n".join(diverged)


@pytest.mark.parametrize("shard", range(ROBUST_SHARDS))
def test_robustness_sample(shard: int) -> None:
    bases = range(shard * ROBUST_BASES_PER_SHARD, (shard + 1) * ROBUST_BASES_PER_SHARD)
    count, problems = h.robustness_batch(DIFF_SEED, bases, ROBUST_PER_BASE)
    detail = "\n".join(
        f"{label}: {what} (input {data.hex()[:200]})" for label, data, what in problems
    )
    assert not problems, detail
    assert count >= len(bases) * ROBUST_PER_BASE // 2


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(20))
def test_differential_long(shard: int) -> None:
    opts = h.SmithOptions(max_funcs=12, max_instructions=150)
    diverged = []
    for index in range(shard * 100, (shard + 1) * 100):
        report = h.run_seed(f"long-{DIFF_SEED}", index, opts)
        if report is not None and report.divergence is not None:
            diverged.append(report.summary())
    assert not diverged, "\n".join(diverged)


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(20))
def test_robustness_long(shard: int) -> None:
    bases = range(1000 + shard * 20, 1000 + (shard + 1) * 20)
    _, problems = h.robustness_batch(DIFF_SEED, bases, 500)
    assert not problems, "\n".join(f"{label}: {what}" for label, _, what in problems)


# ---------------------------------------------------------------------------
# Saved regressions


def _or_skip(params: list[object], reason: str) -> list[object]:
    """``params``, or one skipped case saying why there is nothing to run (pytest's own
    reason for an empty parametrization names no cause)."""
    return params or [pytest.param(None, id="none", marks=pytest.mark.skip(reason=reason))]


def _regression_params() -> list[object]:
    params: list[object] = []
    for path in h.regression_files():
        reason = h.regression_header(path).get("xfail")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return _or_skip(
        params, f"no saved differential regression in {h.REGRESSIONS_DIR} (none found yet)"
    )


@pytest.mark.parametrize("path", _regression_params())
def test_regression_replay(path: Path) -> None:
    wasm = bytes(wasmtime.wat2wasm(path.read_text()))
    report = h.run_module(wasm, label=path.name)
    assert report.divergence is None, report.summary()


def _robust_params() -> list[object]:
    params: list[object] = []
    for path in sorted((h.REGRESSIONS_DIR / "robust").glob("*.wasm")):
        note = path.with_suffix(".xfail")
        marks = (
            [pytest.mark.xfail(strict=True, reason=note.read_text().strip())]
            if note.exists()
            else []
        )
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return _or_skip(
        params, f"no saved robustness regression in {h.REGRESSIONS_DIR / 'robust'} (none found yet)"
    )


@pytest.mark.parametrize("path", _robust_params())
def test_robustness_regression_replay(path: Path) -> None:
    assert h.check_validation(path.read_bytes()).problem is None


@pytest.mark.parametrize(
    "path",
    _or_skip(
        list(h.regression_files()[:1]),
        f"no saved differential regression in {h.REGRESSIONS_DIR} to run the predicate on",
    ),
)
def test_shrink_predicate_script(path: Path, tmp_path: Path) -> None:
    """The predicate wasm-tools shrink runs: exit 0 for the same signature, else 1."""
    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(bytes(wasmtime.wat2wasm(path.read_text())))
    report = h.run_module(wasm.read_bytes())
    if report.divergence is None:
        pytest.skip("the saved regression no longer diverges")
    script = Path(h.__file__).with_name("shrink_predicate.py")
    run = [sys.executable, str(script), "--signature"]
    same = subprocess.run([*run, report.divergence.signature, str(wasm)], check=False)
    other = subprocess.run([*run, "no-such-signature", str(wasm)], check=False)
    assert (same.returncode, other.returncode) == (0, 1)


@pytest.mark.slow
def test_shrink_end_to_end(tmp_path: Path) -> None:
    """Shrinking keeps the divergence and never grows the module (needs a live divergence)."""
    for path in h.regression_files():
        wasm = bytes(wasmtime.wat2wasm(path.read_text()))
        report = h.run_module(wasm)
        if report.divergence is not None:
            break
    else:
        pytest.skip("no saved regression diverges any more")
    small = h.shrink(wasm, report.divergence.signature, attempts=30)
    assert len(small) <= len(wasm)
    again = h.run_module(small)
    assert again.divergence is not None
    assert again.divergence.signature == report.divergence.signature
