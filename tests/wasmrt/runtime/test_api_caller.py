"""``Caller``: export lookup of the calling instance, validity after the call."""

from __future__ import annotations

from typing import Any

import pytest

import wasmrt

WAT = """
(module
  (import "" "h" (func $h))
  (memory (export "mem") 1)
  (func (export "run") call $h))
"""


def test_caller_get_and_invalidation() -> None:
    s = wasmrt.Store()
    kept: list[Any] = []

    def host(caller: Any) -> None:
        mem = caller.get("mem")
        assert isinstance(mem, wasmrt.Memory)
        assert caller["mem"] is not None
        assert caller.get("missing") is None
        with pytest.raises(KeyError):
            caller["missing"]
        mem.write(caller, b"hi", 0)
        assert mem.read(caller, 0, 2) == b"hi"
        kept.append(caller)

    h = wasmrt.Func(s, wasmrt.FuncType([], []), host, access_caller=True)
    inst = wasmrt.Instance(s, wasmrt.Module(s.engine, WAT), [h])
    inst.exports(s)["run"](s)
    caller = kept[0]
    assert caller.get("mem") is None
    with pytest.raises(KeyError):
        caller["mem"]
    with pytest.raises(ValueError, match="caller is no longer valid"):
        inst.exports(s)["mem"].data_len(caller)


def test_caller_without_wasm_caller() -> None:
    s = wasmrt.Store()
    seen: list[Any] = []
    f = wasmrt.Func(
        s, wasmrt.FuncType([], []), lambda c: seen.append(c.get("mem")), access_caller=True
    )
    f(s)
    assert seen == [None]


def test_caller_invalidated_when_host_raises() -> None:
    s = wasmrt.Store()
    kept: list[Any] = []

    def host(caller: Any) -> None:
        kept.append(caller)
        raise RuntimeError("x")

    h = wasmrt.Func(s, wasmrt.FuncType([], []), host, access_caller=True)
    inst = wasmrt.Instance(s, wasmrt.Module(s.engine, WAT), [h])
    with pytest.raises(RuntimeError):
        inst.exports(s)["run"](s)
    with pytest.raises(ValueError, match="caller is no longer valid"):
        kept[0]._context()
