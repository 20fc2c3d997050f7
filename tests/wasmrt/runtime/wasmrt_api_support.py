"""Shared helpers for the public-API tests (imported by name; not a conftest).

- ``wat(text)`` converts WAT with ``wasmrt.text`` (through the public
  ``wasmrt.runtime.wat.wat2wasm``).
- ``outcome(fn, mod)`` runs a script against a module (``wasmrt`` or the real
  ``wasmtime``) and returns ``("ok", value)`` or ``("err", class name, message)``
  so differential tests can compare both runtimes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wasmtime

import wasmrt
from wasmrt.errors import WasmtimeError
from wasmrt.runtime.wat import wat2wasm


def wat(text: str) -> bytes:
    return bytes(wat2wasm(text))


def _public_class(e: BaseException) -> str:
    """wasmrt's WasmtimeError subclasses (MalformedError...) count as WasmtimeError."""
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
    mine = outcome(fn, wasmrt, messages)
    theirs = outcome(fn, wasmtime, messages)
    assert mine == theirs, f"wasmrt gave {mine!r}, wasmtime gave {theirs!r}"
    return mine
