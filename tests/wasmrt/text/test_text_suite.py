"""The text layer against the whole spec testsuite, one test per .wast file and check.

(a) every text module meant to be valid -> our bytes; ``wasm-tools wast``
    accepts them and ``decode_module(ours) == decode_module(wasm-tools')``
    (names and custom sections cleared);
(b) every text ``assert_malformed`` module fails with ``WatParseError``; every
    text ``assert_invalid`` module parses and ``validate_module`` rejects it;
(c) our command list equals ``wasm-tools json-from-wast``'s (kinds, lines,
    module bytes, names, actions, argument and expected values).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import wasmrt.binary as binary  # noqa: E402
from support.testsuite import json_from_wast, wasm_tools, wast_files
from wasmrt import ir
from wasmrt.errors import InvalidModuleError, MalformedError, WatParseError
from wasmrt.text.wast import (
    ActionCommand,
    AssertExhaustion,
    AssertInvalid,
    AssertMalformed,
    AssertReturn,
    AssertTrap,
    AssertUninstantiable,
    AssertUnlinkable,
    Command,
    ModuleCommand,
    Register,
    WastModule,
    WastValue,
    parse_wast,
)

FILES = wast_files()
IDS = [f.stem for f in FILES]

_JSON_CACHE: dict[str, tuple[dict, Path]] = {}


@pytest.fixture
def suite(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    def load(wast: Path) -> tuple[dict, Path]:
        if wast.stem not in _JSON_CACHE:
            outdir = tmp_path_factory.mktemp(wast.stem)
            _JSON_CACHE[wast.stem] = (json_from_wast(wast, outdir), outdir)
        return _JSON_CACHE[wast.stem]

    return load


def _commands(wast: Path) -> list[Command]:
    return parse_wast(wast.read_text(encoding="utf-8"), str(wast))


def _clean(m: ir.Module) -> ir.Module:
    m.names = None
    m.customs = []
    return m


def _module_of(c: Command) -> WastModule | None:
    m = getattr(c, "module", None)
    return m if isinstance(m, WastModule) else None


_VALID_KINDS = (ModuleCommand, AssertUnlinkable, AssertUninstantiable, AssertTrap)


def _escape(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


@pytest.mark.parametrize("wast", FILES, ids=IDS)
def test_text_modules_match_wasm_tools(wast: Path, suite, tmp_path: Path) -> None:
    doc, outdir = suite(wast)
    ours = _commands(wast)
    assert len(ours) == len(doc["commands"])
    valid: list[bytes] = []
    checked = 0
    for c, j in zip(ours, doc["commands"], strict=True):
        m = _module_of(c)
        if m is None or m.kind == "binary" or isinstance(c, AssertMalformed):
            continue
        data = m.to_bytes()
        theirs = (outdir / j.get("binary_filename", j["filename"])).read_bytes()
        assert _clean(binary.decode_module(data)) == _clean(binary.decode_module(theirs)), (
            f"{wast.name}:{c.line}"
        )
        checked += 1
        if isinstance(c, _VALID_KINDS):
            valid.append(data)
    if valid:
        script = tmp_path / "ours.wast"
        script.write_text("".join(f'(module binary "{_escape(b)}")\n' for b in valid))
        proc = subprocess.run([wasm_tools(), "wast", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
    if not checked:
        pytest.skip("no text modules in this file")


@pytest.mark.parametrize("wast", FILES, ids=IDS)
def test_text_malformed_and_invalid(wast: Path) -> None:
    ours = _commands(wast)
    malformed = [c for c in ours if isinstance(c, AssertMalformed) and c.module.kind != "binary"]
    invalid = [c for c in ours if isinstance(c, AssertInvalid) and c.module.kind != "binary"]
    if not malformed and not invalid:
        pytest.skip("no text assert_malformed/assert_invalid modules in this file")
    for c in malformed:
        with pytest.raises(WatParseError):
            c.module.parse()
    if not invalid:
        return
    from wasmrt.validate import validate_module as validate

    for c in invalid:
        module = c.module.parse()
        with pytest.raises((InvalidModuleError, MalformedError)):
            validate(module)


def _json_value(v: WastValue) -> dict:
    """Our value in json-from-wast's shape (strings of unsigned bits)."""
    if v.type == "v128":
        assert v.lane_type is not None
        return {"type": "v128", "lane_type": v.lane_type, "value": [str(x) for x in v.lanes]}
    if v.type in ir.REFTYPES:
        return {"type": v.type, "value": "null" if v.is_null else str(v.bits)}
    return {"type": v.type, "value": v.pattern if v.bits is None else str(v.bits)}


_LANE_BITS = {"i8": 8, "i16": 16, "i32": 32, "i64": 64, "f32": 32, "f64": 64}


def _norm_json_value(v: dict) -> dict:
    """wasm-tools prints some integer lanes signed: reduce them to unsigned bits."""
    if v["type"] == "v128":
        bits = _LANE_BITS[v["lane_type"]]
        lanes = [x if x.startswith("nan") else str(int(x) & ((1 << bits) - 1)) for x in v["value"]]
        return {**v, "value": lanes}
    if v["type"] in ("i32", "i64"):
        return {**v, "value": str(int(v["value"]) & ((1 << int(v["type"][1:])) - 1))}
    return v


def _json_action(c: ActionCommand | AssertReturn | AssertTrap | AssertExhaustion) -> dict:
    a = c.action
    assert a is not None
    out: dict = {"type": a.kind, "field": a.field}
    if a.module is not None:
        out["module"] = a.module
    if a.kind == "invoke":
        out["args"] = [_json_value(x) for x in a.args]
    return out


def _norm_json_action(a: dict) -> dict:
    out = dict(a)
    if "args" in out:
        out["args"] = [_norm_json_value(x) for x in out["args"]]
    return out


_KIND = {
    ModuleCommand: "module",
    Register: "register",
    ActionCommand: "action",
    AssertReturn: "assert_return",
    AssertExhaustion: "assert_exhaustion",
    AssertInvalid: "assert_invalid",
    AssertMalformed: "assert_malformed",
    AssertUnlinkable: "assert_unlinkable",
    AssertUninstantiable: "assert_uninstantiable",
}


def _same_module(m: WastModule, j: dict, outdir: Path, malformed: bool) -> None:
    if m.kind == "binary":
        assert m.binary == (outdir / j["filename"]).read_bytes()
        return
    if malformed:  # wasm-tools writes the quoted text, each string followed by a space
        text = (outdir / j["filename"]).read_text(encoding="utf-8", errors="surrogateescape")
        assert m.kind == "quote" and j["module_type"] == "text"
        assert m.text is not None and text.split() == m.text.split()
        return
    theirs = (outdir / j.get("binary_filename", j["filename"])).read_bytes()
    ours = m.to_bytes()
    try:
        expect = _clean(binary.decode_module(theirs))
    except MalformedError:
        assert ours == theirs
        return
    assert _clean(binary.decode_module(ours)) == expect


@pytest.mark.parametrize("wast", FILES, ids=IDS)
def test_text_commands_match_json_from_wast(wast: Path, suite) -> None:
    doc, outdir = suite(wast)
    ours = _commands(wast)
    theirs = doc["commands"]
    assert len(ours) == len(theirs)
    for c, j in zip(ours, theirs, strict=True):
        where = f"{wast.name}:{c.line}"
        # wasm-tools reports the line of the keyword or of the inner action/module,
        # ours is the line of the command's "(": they may differ by a line or two.
        m = _module_of(c)
        assert 0 <= j["line"] - c.line <= 3, where
        kind = _KIND.get(type(c))
        if isinstance(c, AssertTrap):
            kind = "assert_trap" if c.action is not None else "assert_uninstantiable"
        assert kind == j["type"], where
        if isinstance(c, ModuleCommand):
            assert c.module.name == j.get("name"), where
            _same_module(c.module, j, outdir, malformed=False)
        elif isinstance(c, Register):
            assert (c.name, c.module) == (j["as"], j.get("name")), where
        elif isinstance(c, (ActionCommand, AssertReturn, AssertExhaustion)) or (
            isinstance(c, AssertTrap) and c.action is not None
        ):
            assert _json_action(c) == _norm_json_action(j["action"]), where
            if isinstance(c, AssertReturn):
                got = [_json_value(v) for v in c.expected]
                assert got == [_norm_json_value(v) for v in j["expected"]], where
            else:
                assert getattr(c, "message", None) == j.get("text"), where
        else:
            assert m is not None, where
            assert getattr(c, "message", None) == j["text"], where
            _same_module(m, j, outdir, malformed=isinstance(c, AssertMalformed))
