"""``Memory``: read/write slice rules, grow errors, raw access, type."""

from __future__ import annotations

from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt


def _mem(w: Any, lo: int = 1, hi: int | None = 3) -> tuple[Any, Any]:
    s = w.Store()
    return s, w.Memory(s, w.MemoryType(w.Limits(lo, hi)))


def _on(fn: Any) -> Any:
    def run(w: Any) -> Any:
        s, m = _mem(w)
        m.write(s, b"\x01\x02\x03\x04", 0)
        m.write(s, b"\xaa\xbb", 65534)
        return fn(s, m)

    return run


CASES = {
    "size": _on(lambda s, m: (m.size(s), m.data_len(s), m.page_size(s), m.page_size_log2(s))),
    "type": _on(lambda s, m: (m.grow(s, 1), m.type(s).limits.min, m.type(s).limits.max)),
    "read": _on(lambda s, m: m.read(s, 0, 6)),
    "read_neg": _on(lambda s, m: m.read(s, -2)),
    "read_neg_stop": _on(lambda s, m: m.read(s, -4, -2)),
    "read_rev": _on(lambda s, m: m.read(s, 10, 5)),
    "read_oob": _on(lambda s, m: m.read(s, 70000, 80000)),
    "read_none": _on(lambda s, m: len(m.read(s, None, None))),
    "write_ret": _on(lambda s, m: (m.write(s, b"xyz", 1), m.read(s, 0, 5))),
    "write_neg": _on(lambda s, m: (m.write(s, b"ab", -2), m.read(s, -2))),
    "write_end": _on(lambda s, m: m.write(s, b"", m.data_len(s))),
    "write_end_nonempty": _on(lambda s, m: m.write(s, b"a", m.data_len(s))),
    "write_empty": _on(lambda s, m: m.write(s, b"", 5)),
    "write_past": _on(lambda s, m: m.write(s, b"abc", m.data_len(s) - 2)),
    "write_str": _on(lambda s, m: m.write(s, "abc", 0)),
    "write_list": _on(lambda s, m: (m.write(s, [7, 8], 0), m.read(s, 0, 2))),
    "write_none_start": _on(lambda s, m: (m.write(s, b"q"), m.read(s, 0, 1))),
    "grow": _on(lambda s, m: (m.grow(s, 0), m.grow(s, 2), m.size(s))),
    "grow_fail": _on(lambda s, m: m.grow(s, 5)),
    "grow_neg": _on(lambda s, m: m.grow(s, -1)),
    "grow_unbounded": lambda w: (lambda s, m: (m.grow(s, 65535), m.grow(s, 1)))(*_mem(w, 0, None)),
    "bad_store": lambda w: w.Memory(1, w.MemoryType(w.Limits(1, None))),
    "bad_type": lambda w: w.Memory(w.Store(), 1),
    "data_ptr": _on(
        lambda s, m: (m.data_ptr(s)[1], m.data_ptr(s).__setitem__(0, 9), m.read(s, 0, 1))
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    same_outcome(CASES[name])


def test_grow_type_error() -> None:
    s, m = _mem(wasmrt)
    with pytest.raises(TypeError):
        m.grow(s, "x")
    with pytest.raises(TypeError):
        m.grow(s, 1.0)


def test_buffer_ptr_is_zero_copy() -> None:
    s, m = _mem(wasmrt)
    buf = m.get_buffer_ptr(s)
    assert len(buf) == m.data_len(s)
    buf[10] = 77
    del buf
    assert m.read(s, 10, 11) == b"\x4d"
    part = m.get_buffer_ptr(s, 4, 100)
    part[:] = b"abcd"
    del part
    assert m.read(s, 100, 104) == b"abcd"


def test_wasm_sees_embedder_writes() -> None:
    s = wasmrt.Store()
    mod = wasmrt.Module(
        s.engine,
        '(module (memory (export "m") 1 2) (func (export "load") (param i32) (result i32) local.get 0 i32.load8_u)'
        ' (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))',
    )
    ex = wasmrt.Instance(s, mod, []).exports(s)
    mem = ex["m"]
    mem.write(s, b"\x7f", 3)
    assert ex["load"](s, 3) == 0x7F
    assert ex["grow"](s, 5) == -1
    assert ex["grow"](s, 1) == 1
    assert mem.data_len(s) == 2 * 65536
    with pytest.raises(wasmrt.WasmtimeError, match="failed to grow memory by `1`"):
        mem.grow(s, 1)


def test_unsupported_memory_kinds() -> None:
    s = wasmrt.Store()
    with pytest.raises(wasmrt.WasmtimeError):
        wasmrt.Memory(s, wasmrt.MemoryType(wasmrt.Limits(1, 2), is_64=True))
