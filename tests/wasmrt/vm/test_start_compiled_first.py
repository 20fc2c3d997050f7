"""A start function that cannot be compiled fails instantiation before any segment
is applied: the imported memory and table keep their contents (atomic instantiation)."""

from __future__ import annotations

from typing import Any

import pytest

import wasmrt
from wasmrt.alloc import AllocKind, install_hook

WAT = """(module
  (import "env" "mem" (memory 1))
  (import "env" "tab" (table 2 funcref))
  (func $f (result i32) i32.const 7)
  (elem (i32.const 1) $f)
  (data (i32.const 16) "written")
  (func $start (drop (i32.const 1)))
  (start $start))"""


class RefuseCode:
    """Refuses every lazy code compilation (AllocKind.CODE) after construction."""

    def __init__(self) -> None:
        self.refused = 0

    def __call__(self, size: int, kind: AllocKind, absorbing: bool) -> None:
        if kind is AllocKind.CODE:
            self.refused += 1
            raise wasmrt.OutOfMemory(size)


def _ref(v: Any) -> Any:
    """A table entry as a reference (``Table.get`` may wrap it in a ``Val``)."""
    return v.value if isinstance(v, wasmrt.Val) else v


def test_failed_start_compile_leaves_imports_untouched() -> None:
    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    module = wasmrt.Module(engine, WAT)
    mem = wasmrt.Memory(store, wasmrt.MemoryType(wasmrt.Limits(1, None)))
    tab = wasmrt.Table(
        store, wasmrt.TableType(wasmrt.ValType.funcref(), wasmrt.Limits(2, None)), None
    )
    before_mem = bytes(mem.read(store, 0, 64))
    hook = RefuseCode()
    with install_hook(hook), pytest.raises(wasmrt.OutOfMemory):
        wasmrt.Instance(store, module, [mem, tab])
    assert hook.refused >= 1
    assert bytes(mem.read(store, 0, 64)) == before_mem
    assert _ref(tab.get(store, 1)) is None
    # The same store instantiates it afterwards, with the segments applied once.
    wasmrt.Instance(store, module, [mem, tab])
    assert bytes(mem.read(store, 16, 23)) == b"written"
    got: Any = _ref(tab.get(store, 1))
    assert got is not None and got(store) == 7
