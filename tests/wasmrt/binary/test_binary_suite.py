"""The spec testsuite through the decoder: malformed binaries are rejected,
every other module decodes and validates as the script expects, and
decode -> encode -> decode is the identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from binary_corpus import SuiteModule, load_corpus, modules_of, validator

from support.testsuite import json_from_wast, wast_files
from wasmrt.binary import decode_module, encode_module
from wasmrt.errors import InvalidModuleError, MalformedError

WASTS = wast_files()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[SuiteModule]:
    return load_corpus(tmp_path_factory.mktemp("suite"))


def test_suite_present() -> None:
    assert WASTS, "no .wast files found"


@pytest.mark.parametrize("wast", WASTS, ids=[w.stem for w in WASTS])
def test_wast_binary_modules(wast: Path, tmp_path: Path) -> None:
    doc = json_from_wast(wast, tmp_path)
    validate = validator()
    checked = 0
    for mod in modules_of(doc, tmp_path, wast.stem):
        where = f"{wast.name}:{mod.line} ({mod.kind})"
        if mod.kind == "assert_malformed":
            if mod.module_type != "binary":
                continue
            with pytest.raises(MalformedError):
                decode_module(mod.data)
                pytest.fail(f"{where}: decoded a malformed module")
            checked += 1
            continue
        try:
            m = decode_module(mod.data)
        except MalformedError as e:
            pytest.fail(f"{where}: {e}")
        checked += 1
        if mod.kind == "assert_invalid":
            with pytest.raises(InvalidModuleError):
                validate(m)
                pytest.fail(f"{where}: validated an invalid module")
        else:
            try:
                validate(m)
            except InvalidModuleError as e:
                pytest.fail(f"{where}: {e}")
    if "module" in {c["type"] for c in doc["commands"]}:
        assert checked, f"{wast.name}: no binary module checked"


@pytest.mark.parametrize("wast", WASTS, ids=[w.stem for w in WASTS])
def test_wast_round_trip(wast: Path, corpus: list[SuiteModule]) -> None:
    for mod in corpus:
        if mod.wast != wast.stem or mod.kind == "assert_malformed":
            continue
        m = decode_module(mod.data)
        encoded = encode_module(m)
        assert decode_module(encoded) == m, f"{wast.name}:{mod.line}"
        # The canonical encoding is a fixed point.
        assert encode_module(decode_module(encoded)) == encoded
