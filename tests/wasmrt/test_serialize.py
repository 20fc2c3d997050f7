"""Module serialization: header checks, corruption, truncation, settings, try_alloc use."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import pytest

import wasmrt
from wasmrt import ir, serialize
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.errors import OutOfMemory, WasmtimeError

WASM = b"\x00asm\x01\x00\x00\x00"  # the empty module
SETTINGS = {"consume_fuel": True, "max_wasm_stack": 524288, "wasm_simd": True}


class FailNth:
    """An allocation hook that refuses exactly the ``n``-th request (0-based)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0
        self.raised: OutOfMemory | None = None

    def __call__(self, size: int, kind: AllocKind, absorbing: bool) -> None:
        self.calls += 1
        if self.calls == self.n + 1:
            self.raised = OutOfMemory(size)
            raise self.raised


def blob(**kw: Any) -> bytearray:
    return serialize.serialize_module(
        kw.get("wasm", WASM),
        kw.get("config", SETTINGS),
        kw.get("artifacts", {"python_source": b"x = 1\n"}),
    )


def reseal(data: bytearray) -> bytearray:
    """Recompute the trailing checksum after a deliberate edit."""
    body = data[:-32]
    return body + hashlib.sha256(body).digest()


def test_round_trip() -> None:
    data = blob()
    assert data.startswith(serialize.MAGIC)
    out = serialize.deserialize_module(data, SETTINGS)
    assert out.wasm == WASM
    assert out.artifacts == {"python_source": b"x = 1\n"}
    assert out.wasmrt_version == serialize.wasmrt_version()
    assert out.settings == SETTINGS
    assert out.fingerprint == serialize.fingerprint(SETTINGS)
    assert serialize.read_header(data) == (serialize.FORMAT_VERSION, len(data), out.wasmrt_version)


def test_deterministic() -> None:
    assert blob() == blob()


def test_not_a_serialized_module() -> None:
    for data in (b"", WASM, b"\x00wasmrt", b"garbage" * 10):
        with pytest.raises(WasmtimeError, match="not a compatible serialized wasmrt module"):
            serialize.deserialize_module(data, SETTINGS)


def test_wrong_format_version() -> None:
    data = blob()
    struct.pack_into("<H", data, len(serialize.MAGIC), serialize.FORMAT_VERSION + 1)
    with pytest.raises(
        WasmtimeError, match=r"format version 2, but this wasmrt reads format version 1"
    ):
        serialize.deserialize_module(reseal(data), SETTINGS)


def test_wrong_wasmrt_version() -> None:
    version = serialize.wasmrt_version().encode()
    other = b"9" * len(version)
    data = blob()
    at = data.index(version)
    data[at : at + len(version)] = other
    with pytest.raises(WasmtimeError) as e:
        serialize.deserialize_module(reseal(data), SETTINGS)
    assert str(e.value).startswith(
        f"Module was compiled with incompatible wasmrt version '{other.decode()}'"
    )


@pytest.mark.parametrize("cut", [1, 10, 33, 100])
def test_truncated(cut: int) -> None:
    data = blob()
    with pytest.raises(WasmtimeError, match="truncated"):
        serialize.deserialize_module(data[:-cut], SETTINGS)


def test_trailing_bytes() -> None:
    with pytest.raises(WasmtimeError, match="unexpected bytes after its end"):
        serialize.deserialize_module(blob() + b"\x00", SETTINGS)


def test_every_single_byte_flip_is_detected() -> None:
    data = blob()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(WasmtimeError):
            serialize.deserialize_module(bad, SETTINGS)


def test_body_corruption_reports_checksum() -> None:
    data = blob()
    data[-40] ^= 0xFF  # inside the last section payload
    with pytest.raises(WasmtimeError, match="corrupt: checksum mismatch"):
        serialize.deserialize_module(data, SETTINGS)


def test_settings_mismatch_names_the_setting() -> None:
    data = blob()
    with pytest.raises(WasmtimeError) as e:
        serialize.deserialize_module(data, {**SETTINGS, "consume_fuel": False})
    assert str(e.value) == (
        "Module was compiled with a different 'consume_fuel' setting: expected 'true' "
        "but host has 'false'"
    )
    with pytest.raises(WasmtimeError, match="different 'epoch_interruption' setting"):
        serialize.deserialize_module(data, {**SETTINGS, "epoch_interruption": True})


def test_ignored_settings_do_not_matter() -> None:
    data = blob()
    serialize.deserialize_module(data, {**SETTINGS, "profiler": "jitdump", "cache": True})


def test_config_values_object_is_accepted() -> None:
    class Values:
        flags = {"consume_fuel": True, "wasm_simd": True}
        ints = {"max_wasm_stack": 524288}
        choices = {"profiler": "none", "strategy": "auto"}
        epoch_interruption = False
        target = None
        cranelift_flags: dict[str, str] = {}

    settings = serialize.config_settings(Values())
    assert settings["consume_fuel"] is True and "profiler" not in settings
    data = serialize.serialize_module(WASM, Values())
    assert serialize.deserialize_module(data, Values()).wasm == WASM
    with pytest.raises(WasmtimeError, match="Module was compiled with a different '"):
        serialize.deserialize_module(data, SETTINGS)


def test_reserved_and_bad_artifacts() -> None:
    with pytest.raises(ValueError):
        serialize.serialize_module(WASM, SETTINGS, {"wasm": b""})
    with pytest.raises(TypeError):
        serialize.serialize_module(WASM, SETTINGS, {"src": "text"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        serialize.deserialize_module("text", SETTINGS)  # type: ignore[arg-type]


def test_deserialize_asks_try_alloc_and_oom_propagates() -> None:
    data = blob(artifacts={"python_source": b"s" * 100})
    seen: list[tuple[int, AllocKind]] = []

    def counting(size: int, kind: AllocKind, absorbing: bool) -> None:
        seen.append((size, kind))

    with install_hook(counting):
        serialize.deserialize_module(data, SETTINGS)
    assert (len(WASM), AllocKind.MODULE) in seen
    assert (100, AllocKind.CODE) in seen
    for n in range(len(seen)):
        hook = FailNth(n)
        with install_hook(hook), pytest.raises(OutOfMemory) as e:
            serialize.deserialize_module(data, SETTINGS)
        assert e.value is hook.raised


def test_serialize_asks_try_alloc() -> None:
    def refuse(size: int, kind: AllocKind, absorbing: bool) -> None:
        raise OutOfMemory(size)

    with install_hook(refuse), pytest.raises(OutOfMemory):
        serialize.serialize_module(WASM, SETTINGS)


def test_ir_level_pair() -> None:
    m = ir.Module(types=[ir.FuncType(("i32",), ("i32",))])
    data = serialize.serialize(m, SETTINGS)
    assert serialize.deserialize(data, SETTINGS) == m

    class Compiled:
        source = "def f():\n    return 1\n"

    data = serialize.serialize(m, SETTINGS, Compiled())
    assert serialize.deserialize_module(data, SETTINGS).artifacts == {
        "python_source": Compiled.source.encode()
    }


def test_undecodable_module_binary() -> None:
    data = serialize.serialize_module(b"\x00asm\x01\x00\x00\x00\x01", SETTINGS)
    with pytest.raises(WasmtimeError, match="its module binary does not decode"):
        serialize.deserialize(data, SETTINGS)


# --- through the public API ---------------------------------------------------------


def test_module_serialize_round_trip_and_run(tmp_path: Any) -> None:
    w = wasmrt
    engine = w.Engine()
    module = w.Module(engine, '(module (func (export "f") (result i32) (i32.const 42)))')
    data = module.serialize()
    assert isinstance(data, bytearray)
    again = w.Module.deserialize(engine, data)
    store = w.Store(engine)
    assert w.Instance(store, again, []).exports(store)["f"](store) == 42
    path = tmp_path / "m.cwasm"
    path.write_bytes(data)
    from_file = w.Module.deserialize_file(engine, str(path))
    assert [e.name for e in from_file.exports] == ["f"]


def test_module_deserialize_other_config_fails() -> None:
    w = wasmrt
    data = w.Module(w.Engine(), "(module)").serialize()
    cfg = w.Config()
    cfg.consume_fuel = True
    with pytest.raises(w.WasmtimeError, match="consume_fuel"):
        w.Module.deserialize(w.Engine(cfg), data)
    with pytest.raises(w.WasmtimeError):
        w.Module.deserialize(w.Engine(), data[:-5])


SER_WAT = """
(module
  (memory (export "mem") 1)
  (data (i32.const 8) "hi")
  (func (export "f32") (result f32) (f32.const 1.25))
  (func (export "nan") (result i64) (i64.reinterpret_f64 (f64.const nan:0x4000000000001)))
  (func (export "br") (param i32) (result i32)
    (block (block (block (br_table 0 1 2 (local.get 0))) (return (i32.const 10)))
      (return (i32.const 20)))
    (i32.const 30))
  (func (export "loop") (param i32) (result i32) (local i32)
    (block (loop
      (br_if 1 (i32.eqz (local.get 0)))
      (local.set 1 (i32.add (local.get 1) (local.get 0)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br 0)))
    (local.get 1)))
"""


def _exercise(w: Any, engine: Any, module: Any) -> list[Any]:
    store = w.Store(engine)
    if engine._core.config.consume_fuel:
        store.set_fuel(10_000)
    ex = w.Instance(store, module, []).exports(store)
    out = [ex["f32"](store), ex["nan"](store), ex["mem"].read(store, 8, 10)]
    out += [ex["br"](store, i) for i in range(4)]
    out.append(ex["loop"](store, 100))
    if engine._core.config.consume_fuel:
        out.append(store.get_fuel())
    return out


@pytest.mark.parametrize("fuel", [False, True])
def test_deserialize_reuses_generated_code(monkeypatch: pytest.MonkeyPatch, fuel: bool) -> None:
    w = wasmrt
    import wasmrt.compile as compile_pkg
    from wasmrt.compile import codegen

    cfg = w.Config()
    cfg.consume_fuel = fuel
    engine = w.Engine(cfg)
    module = w.Module(engine, SER_WAT)
    expected = _exercise(w, engine, module)
    data = module.serialize()
    assert (
        serialize.COMPILED_ARTIFACT
        in serialize.deserialize_module(data, engine._core.config).artifacts
    )

    def no_codegen(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the code generator ran during deserialization")

    monkeypatch.setattr(codegen.ModuleCodegen, "generate", no_codegen)
    monkeypatch.setattr(compile_pkg, "ModuleCodegen", no_codegen)
    again = w.Module.deserialize(engine, data)
    assert _exercise(w, engine, again) == expected
    # The rebuilt module serializes to the same blob (same code, same constants).
    assert again.serialize() == data


def test_deserialize_rejects_a_bad_compiled_artifact() -> None:
    w = wasmrt
    engine = w.Engine()
    config = engine._core.config
    data = w.Module(engine, SER_WAT).serialize()
    unpacked = serialize.deserialize_module(data, config)
    for bad in (b"not json", b'{"format": 1, "variants": [{"source": 3}]}', b'{"format": 1}'):
        blob = serialize.serialize_module(unpacked.wasm, config, {serialize.COMPILED_ARTIFACT: bad})
        with pytest.raises(w.WasmtimeError, match="compiled_variants"):
            w.Module.deserialize(engine, blob)
    blob = serialize.serialize_module(
        unpacked.wasm, config, {serialize.COMPILED_ARTIFACT: b'{"format": 99, "variants": []}'}
    )
    with pytest.raises(w.WasmtimeError, match="unknown 'compiled_variants' format 99"):
        w.Module.deserialize(engine, blob)
    # A blob without compiled code (e.g. from ``serialize_module``) is still compiled on load.
    plain = serialize.serialize_module(unpacked.wasm, config)
    store = w.Store(engine)
    inst = w.Instance(store, w.Module.deserialize(engine, plain), [])
    assert inst.exports(store)["br"](store, 1) == 20


def test_header_checks_run_before_any_code_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    w = wasmrt
    import wasmrt.compile as compile_pkg

    data = w.Module(w.Engine(), SER_WAT).serialize()

    def no_load(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled code loaded before the header was checked")

    monkeypatch.setattr(compile_pkg, "load_variant", no_load)
    cfg = w.Config()
    cfg.epoch_interruption = True
    with pytest.raises(w.WasmtimeError, match="epoch_interruption"):
        w.Module.deserialize(w.Engine(cfg), data)
    monkeypatch.setattr(serialize, "wasmrt_version", lambda: "0.0.0-other")
    with pytest.raises(w.WasmtimeError, match="incompatible wasmrt version"):
        w.Module.deserialize(w.Engine(), data)


def test_deserialize_rejects_compiled_code_for_another_module() -> None:
    import json

    w = wasmrt
    engine = w.Engine()
    config = engine._core.config
    unpacked = serialize.deserialize_module(w.Module(engine, SER_WAT).serialize(), config)
    payload = json.loads(unpacked.artifacts[serialize.COMPILED_ARTIFACT])
    del payload["variants"][0]["function_sources"][0]  # one function short
    bad = json.dumps(payload).encode()
    blob = serialize.serialize_module(unpacked.wasm, config, {serialize.COMPILED_ARTIFACT: bad})
    with pytest.raises(w.WasmtimeError, match="compiled_variants"):
        w.Module.deserialize(engine, blob)


def test_serializing_a_lazily_compiled_module_ships_every_function() -> None:
    w = wasmrt
    engine = w.Engine()
    module = w.Module(engine, SER_WAT)
    store = w.Store(engine)
    assert w.Instance(store, module, []).exports(store)["br"](store, 0) == 10  # one compiled
    again = w.Module.deserialize(engine, module.serialize())
    sources = again._core.compiled.variant().sources
    assert len(sources) == 4 and all(s is not None and s.startswith("def f") for s in sources)
