"""The ``wasmrt`` command: results on stdout, one-line errors, exit codes 0/1/2."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmrt.cli import main

WAT = """(module
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (memory (export "mem") 1))"""


@pytest.fixture
def wat_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.wat"
    path.write_text(WAT)
    return path


def test_run_prints_result(wat_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(wat_file), "--invoke", "add", "2", "-5"]) == 0
    assert capsys.readouterr().out.strip() == "-3"


def test_trap_is_one_line_exit_1(wat_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(wat_file), "--invoke", "div", "1", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "wasmrt: trap: integer divide by zero"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--invoke", "nope"], "no export named `nope`"),
        (["--invoke", "mem"], "`mem` is not a function"),
        (["--invoke", "add", "x", "1"], "neither an integer nor a float"),
    ],
)
def test_bad_invocations(
    wat_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["run", str(wat_file), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "absent.wasm")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_wat2wasm_then_validate_and_print(
    wat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.wasm"
    assert main(["wat2wasm", str(wat_file), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\0asm"
    assert main(["validate", str(out)]) == 0
    assert main(["print", str(out)]) == 0
    assert "i32.div_s" in capsys.readouterr().out


def test_malformed_text_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.wat"
    bad.write_text("(module (func (result i32) i32.const))")
    assert main(["validate", str(bad)]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
