"""Run by test_followups in a fresh interpreter: garbage stores collected during
deep wasm recursion must not make any finalizer fail. Prints the unraisables."""

from __future__ import annotations

import gc
import sys

import wasmrt
from wasmrt.vm import deferred

seen: list[str] = []
sys.unraisablehook = lambda u: seen.append(f"{u.object!r:.60}: {type(u.exc_value).__name__}")
engine = wasmrt.Engine()
via_host = wasmrt.Module(
    engine,
    """(module (import "" "h" (func $h (param i32)))
         (func $r (export "r") (param i32)
           (call $h (local.get 0)) (call $r (i32.add (local.get 0) (i32.const 1)))))""",
)
plain = wasmrt.Module(
    engine,
    """(module (func $r (export "r") (param i32)
         (call $r (i32.add (local.get 0) (i32.const 1)))))""",
)
small = wasmrt.Module(engine, '(module (memory 1) (func (export "f")))')


def garbage(n: int) -> None:
    for _ in range(n):
        s = wasmrt.Store(engine)
        wasmrt.Instance(s, small, [])
        s.cycle = s  # type: ignore[attr-defined]  # only the collector frees it


def h(x: int) -> None:
    if x % 7 == 0:
        [[] for _ in range(5)]


gc.set_threshold(50)
for trial in range(40):
    s = wasmrt.Store(engine)
    f = wasmrt.Func(s, wasmrt.FuncType([wasmrt.ValType.i32()], []), h)
    inst = wasmrt.Instance(s, via_host, [f]) if trial % 2 else wasmrt.Instance(s, plain, [])
    garbage(20)
    try:
        run = inst.exports(s)["r"]
        assert isinstance(run, wasmrt.Func)
        run(s, 0)
    except wasmrt.Trap as t:
        assert t.trap_code == wasmrt.TrapCode.STACK_OVERFLOW, t
    else:
        raise AssertionError("no stack overflow")
    assert not deferred.PENDING, "parked finalizers left after the outermost exit"
print("unraisable:", len(seen), seen[:3])
