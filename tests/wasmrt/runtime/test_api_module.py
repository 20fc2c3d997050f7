"""``Module``: text/binary rules, validate, imports/exports, serialization, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from wasmrt_api_support import same_outcome, wat

import wasmrt

SIG = (
    '(module (import "a" "b" (func (param i32) (result f64))) (import "a" "t" (table 1 2 externref))'
    ' (memory (export "m") 1 2) (global (export "g") (mut i64) (i64.const 0))'
    ' (table (export "t") 1 funcref) (func (export "f")))'
)


def _describe(t: Any) -> Any:
    name = type(t).__name__
    if name == "FuncType":
        return (name, [str(p) for p in t.params], [str(r) for r in t.results])
    if name in ("TableType", "MemoryType"):
        return (name, t.limits.min, t.limits.max)
    return (name, str(t.content), t.mutable)


CASES = {
    "validate_ok": lambda w: w.Module.validate(w.Engine(), wat("(module)")),
    "validate_str": lambda w: w.Module.validate(w.Engine(), "(module)"),
    "validate_empty": lambda w: type(w.Module.validate(w.Engine(), b"")),
    "validate_bad_engine": lambda w: w.Module.validate(1, b""),
    "empty": lambda w: w.Module(w.Engine(), b""),
    "nul": lambda w: w.Module(w.Engine(), b"\x00"),
    "bad_engine": lambda w: w.Module(1, b""),
    "bad_type": lambda w: w.Module(w.Engine(), 2),
    "nul_str": lambda w: w.Module(w.Engine(), "\x00asm"),
    "empty_str": lambda w: w.Module(w.Engine(), ""),
    "bytearray_text": lambda w: w.Module(w.Engine(), bytearray(b"(module)")),
    "wat2wasm": lambda w: bytes(w.wat2wasm("(module)")),
    "wat2wasm_bytes": lambda w: type(w.wat2wasm(b"(module)")).__name__,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    decode_error = name in ("empty", "nul", "bytearray_text", "validate_empty")
    outcome = same_outcome(CASES[name], messages=not decode_error)
    if decode_error:
        assert outcome[1] == "WasmtimeError"


def test_wat_parse_error_class() -> None:
    same_outcome(
        lambda w: isinstance(_raises(lambda: w.wat2wasm("(module (func (foo)))")), w.WasmtimeError)
    )


def _raises(fn: Any) -> BaseException | None:
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - returned to the caller for inspection
        return e
    return None


def test_invalid_module_is_wasmtime_error() -> None:
    bad = wat("(module (func (result i32) i64.const 0))")
    with pytest.raises(wasmrt.WasmtimeError) as info:
        wasmrt.Module.validate(wasmrt.Engine(), bad)
    assert "type mismatch" in str(info.value)


def test_imports_and_exports() -> None:
    def run(w: Any) -> Any:
        m = w.Module(w.Engine(), SIG)
        imps = [(i.module, i.name, _describe(i.type)) for i in m.imports]
        exps = [(e.name, _describe(e.type)) for e in m.exports]
        return imps, exps

    same_outcome(run)


def test_from_file(tmp_path: Path) -> None:
    p = tmp_path / "m.wasm"
    p.write_bytes(wat('(module (func (export "f") (result i32) i32.const 3))'))
    m = wasmrt.Module.from_file(wasmrt.Engine(), str(p))
    assert [e.name for e in m.exports] == ["f"]
    t = tmp_path / "m.wat"
    t.write_text("(module)")
    assert wasmrt.Module.from_file(wasmrt.Engine(), t).imports == []


def test_serialize_roundtrip(tmp_path: Path) -> None:
    engine = wasmrt.Engine()
    m = wasmrt.Module(engine, '(module (func (export "f") (result i32) i32.const 3))')
    blob = m.serialize()
    assert isinstance(blob, bytearray)
    m2 = wasmrt.Module.deserialize(engine, blob)
    s = wasmrt.Store(engine)
    assert wasmrt.Instance(s, m2, []).exports(s)["f"](s) == 3
    p = tmp_path / "m.bin"
    p.write_bytes(bytes(blob))
    assert [e.name for e in wasmrt.Module.deserialize_file(engine, str(p)).exports] == ["f"]
    with pytest.raises(wasmrt.WasmtimeError):
        wasmrt.Module.deserialize(engine, b"garbage")
    with pytest.raises(TypeError):
        wasmrt.Module.deserialize(engine, "x")  # type: ignore[arg-type]
    c = wasmrt.Config()
    c.consume_fuel = True
    with pytest.raises(wasmrt.WasmtimeError):
        wasmrt.Module.deserialize(wasmrt.Engine(c), blob)


def test_pooling_rejects_module_at_creation() -> None:
    c = wasmrt.Config()
    pool = wasmrt.PoolingAllocationConfig()
    pool.max_memory_size(1 << 16)
    c.allocation_strategy = pool
    engine = wasmrt.Engine(c)
    with pytest.raises(wasmrt.WasmtimeError):
        wasmrt.Module(engine, "(module (memory 2))")
    wasmrt.Module(engine, "(module (memory 1))")


def test_closed_module() -> None:
    m = wasmrt.Module(wasmrt.Engine(), "(module)")
    m.close()
    with pytest.raises(ValueError, match="already closed"):
        _ = m.exports
