"""Scenario layer: corpus files load, a WAST scenario sweeps clean, minimize shrinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("wasmrt.runtime")
pytest.importorskip("wasmrt.text.wast")

from oomfuzz.cli import main  # noqa: E402
from oomfuzz.oomtest import OomTest  # noqa: E402
from oomfuzz.scenario import ScenarioError, ScenarioRunner, find_scenarios, load_scenario  # noqa: E402
from wasmrt.errors import OutOfMemory, WasmtimeError  # noqa: E402
from wasmrt.runtime.func import Func  # noqa: E402

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
    real = Func.__call__

    def wrap(self: Func, store: Any, *params: Any) -> Any:
        try:
            return real(self, store, *params)
        except OutOfMemory:
            raise WasmtimeError("call failed") from None

    monkeypatch.setattr(Func, "__call__", wrap)
    p = tmp_path / "big.wast"
    p.write_text(
        '(module (func (export "a") (result i32) (i32.const 1)))\n'
        '(module (memory 1) (func (export "b") (result i32) (i32.const 2)) (func (export "c")))\n'
        '(assert_return (invoke "b") (i32.const 2))\n'
    )
    from oomfuzz.minimize import minimize

    scn = load_scenario(p)
    runner = ScenarioRunner(scn, "ondemand")
    res = OomTest(probe=runner, raise_on_failure=False, fail_fast=True).test(runner.run)
    it = res.failures[0]
    text = minimize(str(p), "transient", "ondemand", it.index)
    assert '"a"' not in text and '"c"' not in text and '(invoke "b")' in text
