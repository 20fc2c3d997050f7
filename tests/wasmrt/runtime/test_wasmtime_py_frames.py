"""Trap frames: wasmtime-py's ``test_frames`` / ``test_frames_no_module``, and per-instruction
offsets compared with the real Wasmtime.

Each frame's ``func_offset`` is the offset of the instruction it stopped at (the trapping
instruction, or the call in an outer frame) from the start of the function body, and
``module_offset`` is its offset in the binary; the trap's text lists them in Wasmtime's
format. The differential part runs the same trapping modules under wasmtime-py (skipped
when it is not installed) and compares ``(func_index, func_offset, module_offset)``.
"""

from __future__ import annotations

import pytest

import wasmrt as wasmtime

CHAIN = """
(module $module
  (func (export "init") call $foo)
  (func $foo call $bar)
  (func $bar unreachable))
"""


def _trap(module_text: str, export: str, *args: object, rt: object = wasmtime) -> object:
    store = rt.Store()  # type: ignore[attr-defined]
    module = rt.Module(store.engine, module_text)  # type: ignore[attr-defined]
    instance = rt.Instance(store, module, [])  # type: ignore[attr-defined]
    with pytest.raises(rt.Trap) as exn:  # type: ignore[attr-defined]
        instance.exports(store)[export](store, *args)
    return exn.value


def test_frames() -> None:
    trap = _trap(CHAIN, "init")
    frames = trap.frames  # type: ignore[attr-defined]
    assert [f.func_index for f in frames] == [2, 1, 0]
    assert [f.func_name for f in frames] == ["bar", "foo", None]
    assert [f.module_name for f in frames] == ["module"] * 3
    assert [f.func_offset for f in frames] == [1, 1, 1]
    assert str(trap) == (
        "error while executing at wasm backtrace:\n"
        "    0:     0x2d - module!bar\n"
        "    1:     0x28 - module!foo\n"
        "    2:     0x23 - module!<wasm function 0>\n"
        "\n"
        "Caused by:\n"
        "    wasm trap: wasm `unreachable` instruction executed\n"
    )
    assert trap.trap_code == wasmtime.TrapCode.UNREACHABLE  # type: ignore[attr-defined]


def test_frames_no_module_name() -> None:
    trap = _trap('(module (func (export "init") unreachable))', "init")
    frames = trap.frames  # type: ignore[attr-defined]
    assert len(frames) == 1
    assert (frames[0].func_index, frames[0].func_name, frames[0].module_name) == (0, None, None)


PROGRAMS = {
    "div after pending ops": (
        """(module (func (export "f") (param i32) (result i32) (local i32)
             i32.const 1 local.get 0 i32.div_u drop nop nop
             i32.const 5 local.get 0 i32.const 1 i32.sub i32.div_s))""",
        "f",
        (1,),
    ),
    "load out of bounds in a loop": (
        """(module (memory 1)
             ;; the load's value goes to a local: Cranelift would fold a load feeding an
             ;; add into the add and report the add's offset.
             (func (export "f") (param i32) (result i32) (local i32)
               (loop $l
                 (local.set 1 (i32.load (local.get 0)))
                 (local.set 0 (i32.add (local.get 0) (i32.const 4096)))
                 (br $l))
               local.get 1))""",
        "f",
        (0,),
    ),
    "store in nested blocks": (
        """(module (memory 1)
             (func $inner (param i32)
               (block (block (if (local.get 0) (then nop) (else nop))
                 (i32.store offset=70000 (local.get 0) (i32.const 9)))))
             (func (export "f") (param i32) (call $inner (local.get 0)) (call $inner (i32.const 1))))""",
        "f",
        (0,),
    ),
    "call_indirect null and overflow in br_table": (
        """(module (table 2 funcref) (type $t (func (result i32)))
             (func $g (param i32) (result i32)
               (block $a (block $b (br_table $a $b (local.get 0))))
               (call_indirect (type $t) (i32.const 1)))
             (func (export "f") (param i32) (result i32)
               i32.const 0x7fffffff i32.const 1 i32.add drop
               (call $g (local.get 0))))""",
        "f",
        (1,),
    ),
    "integer overflow after a call": (
        """(module
             (func $id (param i64) (result i64) local.get 0)
             (func (export "f") (result i64)
               (i64.div_s (call $id (i64.const 0x8000000000000000)) (i64.const -1))))""",
        "f",
        (),
    ),
    "float truncation": (
        """(module (func (export "f") (param f64) (result i32)
             (i32.trunc_f64_s (f64.mul (local.get 0) (f64.const 1e300)))))""",
        "f",
        (2.0,),
    ),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_offsets_match_wasmtime(name: str) -> None:
    real = pytest.importorskip("wasmtime", reason="the differential part needs wasmtime-py")
    text, export, args = PROGRAMS[name]

    def shape(trap: object) -> list[tuple[int, int, int]]:
        return [(f.func_index, f.func_offset, f.module_offset) for f in trap.frames]  # type: ignore[attr-defined]

    ours = _trap(text, export, *args)
    theirs = _trap(text, export, *args, rt=real)
    assert shape(ours) == shape(theirs)

    def backtrace(trap: object) -> str:
        return str(trap).split("Caused by:")[0]

    assert backtrace(ours) == backtrace(theirs)
