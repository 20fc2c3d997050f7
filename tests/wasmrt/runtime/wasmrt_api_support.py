"""Shared helpers for the public-API tests (imported by name; not a conftest).

- ``wat(text)`` converts WAT with ``wasmrt.text`` when it provides
  ``wat2wasm``; until then (tests only) with the ``wasm-tools parse`` binary.
  ``use_wat_fallback()`` points ``wasmrt.runtime.wat`` at the same converter so
  ``Module(engine, str)`` works in tests before the text package lands.
- ``outcome(fn, mod)`` runs a script against a module (``wasmrt`` or the real
  ``wasmtime``) and returns ``("ok", value)`` or ``("err", class name, message)``
  so differential tests can compare both runtimes.
- ``needs_vm`` skips tests that need the vm core when it is not importable.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

import wasmrt.runtime.wat as api_wat
from support.testsuite import wasm_tools


def _has_text() -> bool:
    try:
        mod = importlib.import_module("wasmrt.text")
    except ImportError:
        return False
    return hasattr(mod, "wat2wasm")


def _has_vm() -> bool:
    try:
        vm = importlib.import_module("wasmrt.vm")
        importlib.import_module("wasmrt.compile")
    except ImportError:
        return False
    return all(hasattr(vm, n) for n in ("StoreCore", "instantiate", "LinearMemory"))


HAS_TEXT = _has_text()
HAS_VM = _has_vm()

needs_vm = pytest.mark.skipif(not HAS_VM, reason="wasmrt.vm / wasmrt.compile not available yet")


def _wasm_tools_parse(text: str) -> bytes:
    proc = subprocess.run(
        [wasm_tools(), "parse"], input=text.encode("utf-8"), capture_output=True, check=False
    )
    if proc.returncode != 0:
        from wasmrt.errors import WatParseError

        raise WatParseError(proc.stderr.decode("utf-8", "replace").strip())
    return proc.stdout


def wat(text: str) -> bytes:
    if HAS_TEXT:
        return bytes(api_wat.wat2wasm(text))
    return _wasm_tools_parse(text)


def use_wat_fallback() -> None:
    """Tests only: let ``Module(engine, str)`` use wasm-tools until wasmrt.text exists."""
    if not HAS_TEXT:
        api_wat._parse_text = _wasm_tools_parse  # type: ignore[assignment]


def _public_class(e: BaseException) -> str:
    """wasmrt's WasmtimeError subclasses (MalformedError...) count as WasmtimeError."""
    from wasmrt.errors import WasmtimeError

    if isinstance(e, WasmtimeError) and type(e).__module__.startswith("wasmrt.errors"):
        return "WasmtimeError"
    return type(e).__name__


def outcome(fn: Callable[[Any], Any], mod: Any, messages: bool = True) -> tuple[Any, ...]:
    try:
        return ("ok", fn(mod))
    except Exception as e:  # noqa: BLE001 - the outcome *is* the exception, compared by the test
        return ("err", _public_class(e), str(e)) if messages else ("err", _public_class(e))


def same_outcome(fn: Callable[[Any], Any], messages: bool = True) -> tuple[Any, ...]:
    """Run ``fn`` with ``wasmrt`` and with the real ``wasmtime``; assert equal outcomes.

    ``messages=False`` compares only the exception classes (for errors whose
    wording comes from a different decoder).
    """
    import wasmtime

    import wasmrt

    mine = outcome(fn, wasmrt, messages)
    theirs = outcome(fn, wasmtime, messages)
    assert mine == theirs, f"wasmrt gave {mine!r}, wasmtime gave {theirs!r}"
    return mine
