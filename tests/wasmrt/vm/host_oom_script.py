"""Run by test_host_oom in a fresh interpreter under an address-space limit
(``RLIMIT_AS``): the host's own allocation failures must have the outcomes of a
refusal of the ``try_alloc`` hook (issue 14, item 2), never a bare ``MemoryError``.

Usage: host_oom_script.py LIMIT_BYTES. Prints one ``name: outcome`` line per case.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable

import wasmrt as w

GROW = """(module (memory (export "m") 1)
  (table (export "t") 0 funcref)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "tgrow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))"""


def outcome(fn: Callable[[], object]) -> str:
    try:
        return f"returned {fn()!r}"
    except w.OutOfMemory:
        return "OutOfMemory"
    # Anything else escapes: the script fails with its traceback.


def main() -> int:
    limit = int(sys.argv[1])
    # First, as ``ulimit -v`` would: every memory then lives in a bytearray.
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    engine = w.Engine()
    store = w.Store(engine)
    inst = w.Instance(store, w.Module(engine, GROW), [])
    ex = inst.exports(store)
    huge_memory = w.Module(engine, "(module (memory 65535))")
    huge_table = w.Module(engine, "(module (table 0xffffffff funcref))")
    mem = w.Memory(store, w.MemoryType(w.Limits(1, None)))
    tab = w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(0, None)), None)
    cases: dict[str, Callable[[], object]] = {
        "memory.grow instruction": lambda: ex["grow"](store, 65535),
        "table.grow instruction": lambda: ex["tgrow"](store, 0x7FFFFFFF),
        "Memory.grow": lambda: mem.grow(store, 65535),
        "Memory(65535 pages)": lambda: w.Memory(store, w.MemoryType(w.Limits(65535, None))),
        "Table.grow": lambda: tab.grow(store, 0x7FFFFFFF, None),
        "instantiate huge memory": lambda: w.Instance(store, huge_memory, []),
        "instantiate huge table": lambda: w.Instance(store, huge_table, []),
        # Afterwards the store and everything in it still work.
        "memory.grow 1 after": lambda: ex["grow"](store, 1),
        "size after": lambda: ex["size"](store),
        "store/load after": lambda: (ex["store"](store, 65536, 7), ex["load"](store, 65536))[1],
        "Memory.grow 1 after": lambda: mem.grow(store, 1),
        "Table.grow 3 after": lambda: tab.grow(store, 3, None),
        "new instance after": lambda: type(w.Instance(store, w.Module(engine, GROW), [])).__name__,
        # A large memory (1.25 GiB, more than half the limit) grows, fills and
        # copies without needing a second copy of itself.
        "memory.grow 20000": lambda: ex["grow"](store, 20000),
        "memory.fill all": lambda: ex["fill"](store, 0, 0x5A, 20002 * 65536),
        "memory.copy all": lambda: ex["copy"](store, 1, 0, 20002 * 65536 - 1),
        "bytes at the end": lambda: ex["load"](store, 20002 * 65536 - 4),
    }
    for name, fn in cases.items():
        print(f"{name}: {outcome(fn)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
