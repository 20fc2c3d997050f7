"""Scenario layer: corpus files load, a WAST scenario sweeps clean, minimize shrinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import seeded

from oomfuzz.checks import ExpectationFailed, FailureClass
from oomfuzz.cli import main
from oomfuzz.minimize import instruction_spans, minimize, split_sexprs
from oomfuzz.oomtest import OomTest
from oomfuzz.scenario import ScenarioError, ScenarioRunner, find_scenarios, load_scenario
from wasmrt.errors import OutOfMemory
from wasmrt.runtime.func import Func
from wasmrt.trap import Trap, TrapCode

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def test_corpus_has_25_loadable_scenarios() -> None:
    files = find_scenarios([str(CORPUS)])
    assert len(files) >= 25
    for f in files:
        scn = load_scenario(f)
        assert scn.commands or scn.func is not None


@pytest.mark.parametrize("name", ["func_call.wast", "memory_grow_wasm.wast", "start_trap.wast"])
def test_corpus_scenarios_sweep_clean(name: str) -> None:
    scn = load_scenario(CORPUS / name)
    runner = ScenarioRunner(scn, "ondemand")
    res = OomTest(probe=runner, max_iters=60).test(runner.run)
    assert res.passed and res.total > 0
    assert res.baseline and all(isinstance(x, str) for x in res.baseline)  # type: ignore[union-attr]


def test_expectations_are_checked(tmp_path: Path) -> None:
    p = tmp_path / "wrong.wast"
    p.write_text(
        '(module (func (export "f") (result i32) (i32.const 1)))\n'
        '(assert_return (invoke "f") (i32.const 2))\n'
    )
    assert main(["sweep", str(p), "-q", "--allocator", "ondemand"]) == 1  # fails without injection


def test_malformed_module_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "bad.wast"
    p.write_text("(module (func (result i32) (i32.const)))\n")
    assert main(["sweep", str(p), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    q = tmp_path / "unbalanced.wast"
    q.write_text("(module\n")
    with pytest.raises(ScenarioError):
        load_scenario(q)


def test_minimize_keeps_class_and_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded.oom_becomes_wasmtime_error(monkeypatch)
    p = tmp_path / "big.wast"
    p.write_text(
        '(module (func (export "a") (result i32) (i32.const 1)))\n'
        '(module (memory 1) (func (export "b") (result i32) (i32.const 2)) (func (export "c")))\n'
        '(assert_return (invoke "b") (i32.const 2))\n'
    )
    scn = load_scenario(p)
    runner = ScenarioRunner(scn, "ondemand")
    res = OomTest(probe=runner, raise_on_failure=False, fail_fast=True).test(runner.run)
    it = res.failures[0]
    text = minimize(str(p), "transient", "ondemand", it.index)
    assert '"a"' not in text and '"c"' not in text and '(invoke "b")' in text


TRAPS = """\
(module
  (table 1 funcref)
  (type $v (func))
  (func $f (param i32) (result i32) (local.get 0))
  (elem (i32.const 0) $f)
  (func (export "div") (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
  (func (export "unr") unreachable)
  (func (export "oob") (result i32) (i32.load (i32.const 70000)))
  (func (export "null") (call_indirect (type $v) (i32.const 1)))
  (func (export "sig") (call_indirect (type $v) (i32.const 0)))
  (memory 1))
(invoke "div" (i32.const 0))
(invoke "unr")
(assert_return (invoke "div" (i32.const 1)) (i32.const 1))
(assert_trap (invoke "div" (i32.const 0)) "integer divide by zero")
(assert_trap (invoke "unr") "unreachable")
(assert_trap (invoke "unr") "unreachable executed")
(assert_trap (invoke "oob") "out of bounds memory access")
(assert_trap (invoke "null") "undefined element")
(assert_trap (invoke "sig") "indirect call type mismatch")
"""


def _run(tmp_path: Path, text: str) -> list[str]:
    p = tmp_path / "s.wast"
    p.write_text(text)
    return ScenarioRunner(load_scenario(p), "ondemand").run()


def test_plain_invoke_trap_is_recorded_and_the_script_continues(tmp_path: Path) -> None:
    out = _run(tmp_path, TRAPS)
    assert out[1] == "12: div trapped: INTEGER_DIVISION_BY_ZERO (integer divide by zero)"
    assert out[2].startswith("13: unr trapped: UNREACHABLE (")
    assert out[3] == "14: div = 1" and len(out) == 10  # every command ran


def test_assert_trap_compares_the_message_loosely(tmp_path: Path) -> None:
    # Spec semantics stay: a wrong message, a missing trap, a trap in assert_return fail.
    for cmd, needle in (
        ('(assert_trap (invoke "unr") "integer divide by zero")', "trapped with"),
        ('(assert_trap (invoke "div" (i32.const 1)) "integer divide by zero")', "call gave 1"),
        ('(assert_trap (invoke "oob") "out of bounds table access")', "out of bounds memory"),
    ):
        with pytest.raises(ExpectationFailed, match=needle):
            _run(tmp_path, TRAPS + cmd + "\n")
    with pytest.raises(Trap):
        _run(tmp_path, TRAPS + '(assert_return (invoke "unr"))\n')


def test_trapping_generated_scenario_sweeps_and_compares_trap_codes(tmp_path: Path) -> None:
    calls = {"n": 0}
    real = Func.__call__

    def flip(self: Func, store: Any, *params: Any) -> Any:
        calls["n"] += 1
        try:
            return real(self, store, *params)
        except Trap:
            if calls["n"] > 4:  # after the dry runs: the post-OOM rerun traps differently
                raise Trap(TrapCode.INTEGER_OVERFLOW) from None
            raise

    p = tmp_path / "gen.wast"
    p.write_text(TRAPS.split("(assert_return")[0])  # the module and two trapping invokes
    runner = ScenarioRunner(load_scenario(p), "ondemand")
    res = OomTest(probe=runner, max_iters=10).test(runner.run)
    assert res.passed and "INTEGER_DIVISION_BY_ZERO" in res.baseline[1]  # type: ignore[index]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Func, "__call__", flip)
        res = OomTest(probe=runner, indices=[0], raise_on_failure=False).test(runner.run)
    assert res.iterations[0].verdict is FailureClass.POST_OOM_FAILURE
    assert "INTEGER_OVERFLOW" in res.iterations[0].detail


def test_a_trap_wrapping_an_oom_is_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Func.__call__

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        try:
            return real(self, store, *params)
        except OutOfMemory:
            raise Trap("out of memory, as a trap")  # noqa: B904 - the seeded bug keeps the context

    monkeypatch.setattr(Func, "__call__", wrap)
    p = tmp_path / "t.wast"
    p.write_text('(module (func (export "f")))\n(invoke "f")\n')
    runner = ScenarioRunner(load_scenario(p), "ondemand")
    res = OomTest(probe=runner, raise_on_failure=False).test(runner.run)
    bad = [it for it in res.iterations if it.failed]
    assert bad and all(it.verdict is FailureClass.WRONG_ERROR for it in bad)
    assert "OutOfMemory wrapped in wasmrt.trap.Trap" in bad[0].detail


def test_minimize_shrinks_flat_instruction_sequences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded.oom_becomes_wasmtime_error(monkeypatch)
    p = tmp_path / "flat.wast"
    p.write_text(
        '(module (func (export "b") (result i32)\n'
        "  i32.const 1 i32.const 2 i32.add drop\n"
        "  block nop nop end\n"
        "  loop $l nop end nop\n"
        "  i32.const 40 i32.const 2 i32.add))\n"
        '(assert_return (invoke "b") (i32.const 42))\n'
    )
    _, forms = split_sexprs(p.read_text())
    body = forms[0].children[1].children  # type: ignore[index]
    assert [body[s].text for s, _ in instruction_spans(body)][:4] == [
        "i32.const", "i32.const", "i32.add", "drop",
    ]  # fmt: skip
    scn = load_scenario(p)
    runner = ScenarioRunner(scn, "ondemand")
    it = OomTest(probe=runner, raise_on_failure=False, fail_fast=True).test(runner.run).failures[0]
    text = minimize(str(p), "transient", "ondemand", it.index)
    head = text.split(";;")[0]
    assert "(result i32) i32.const 40 i32.const 2 i32.add)" in head  # the sum must stay 42
    assert "drop" not in head and "nop" not in head and "block" not in head and "loop" not in head


def test_minimize_refuses_python_scenarios_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["minimize", str(CORPUS / "api_store.py"), "--index", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "a Python scenario cannot be minimized" in err
