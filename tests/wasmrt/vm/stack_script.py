"""Run by test_stack_safety in a fresh interpreter: unbounded guest recursion on a
thread with a given stack size must end in a clean stack-overflow ``Trap`` inside
that thread (never a segfault), and the store must keep working afterwards.

Usage: stack_script.py STACK_BYTES(0 = default, -1 = the main thread)
    host|pure|stores|concurrent probe|fallback
(``concurrent``: the thread recurses through its host while the main thread
keeps running deep pure-wasm recursion in its own store.)
Prints ``ok <round trips or frames reached>`` on success.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import wasmrt as w
from wasmrt.vm import cstack

REENTER = """(module (import "h" "cb" (func $c (param i32) (result i32)))
  (func (export "g") (param i32) (result i32) local.get 0 call $c)
  (func (export "id") (param i32) (result i32) local.get 0))"""
SELF = """(module (global $d (mut i32) (i32.const 0))
  (func $g (export "g") (param i32) (result i32)
    (global.set $d (i32.add (global.get $d) (i32.const 1)))
    (call $g (i32.add (local.get 0) (i32.const 1))))
  (func (export "id") (param i32) (result i32) local.get 0)
  (func (export "depth") (result i32) global.get $d))"""
I32 = w.ValType.i32()


def reentrant(engine: Any, store: Any, target: list[Any], reached: list[int]) -> Any:
    """An instance of REENTER whose import calls ``target[0]`` (store, func) with x + 1."""

    def cb(x: int) -> int:
        reached[0] = max(reached[0], x)
        other_store, other_func = target[0]
        return int(other_func(other_store, x + 1))

    fn = w.Func(store, w.FuncType([I32], [I32]), cb)
    return w.Instance(store, w.Module(engine, REENTER), [fn])


def run(mode: str) -> str:
    engine = w.Engine()
    store = w.Store(engine)
    reached = [0]
    if mode == "pure":
        inst = w.Instance(store, w.Module(engine, SELF), [])
        entry = inst.exports(store)["g"]
    elif mode == "host":
        target: list[Any] = []
        inst = reentrant(engine, store, target, reached)
        entry = inst.exports(store)["g"]
        target.append((store, entry))
    else:  # two stores calling each other through their hosts
        store2 = w.Store(engine)
        t1: list[Any] = []
        t2: list[Any] = []
        inst = reentrant(engine, store, t1, reached)
        inst2 = reentrant(engine, store2, t2, reached)
        entry = inst.exports(store)["g"]
        t1.append((store2, inst2.exports(store2)["g"]))
        t2.append((store, entry))
    try:
        entry(store, 0)
    except w.Trap as t:
        if t.trap_code != w.TrapCode.STACK_OVERFLOW:
            return f"wrong trap code {t.trap_code}"
    else:
        return "no trap"
    if mode == "pure":
        reached[0] = inst.exports(store)["depth"](store)
    if inst.exports(store)["id"](store, 7) != 7:
        return "store unusable after the trap"
    return f"ok {reached[0]}"


def main() -> int:
    size, mode, probe = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if probe == "fallback":
        cstack._loaded = True  # as if libc had no probe: the estimate is used
        cstack._iterate = None
    out: list[str] = []
    if size < 0:  # on the main thread (its stack: RLIMIT_STACK, set by the test)
        out.append(run(mode))
        print(out[0])
        return 0
    if size:
        threading.stack_size(size)

    def body() -> None:
        # An escaping exception is printed by ``threading.excepthook``; "thread died".
        out.append(run(mode))

    if mode == "concurrent":
        mode = "host"
        t = threading.Thread(target=body)
        t.start()
        while t.is_alive():
            got = run("pure")
            if not got.startswith("ok "):
                print(f"main thread: {got}")
                return 1
    else:
        t = threading.Thread(target=body)
        t.start()
    t.join()
    print(out[0] if out else "thread died")
    return 0


if __name__ == "__main__":
    sys.exit(main())
