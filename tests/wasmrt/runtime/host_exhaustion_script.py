"""Run by test_host_exhaustion in a fresh interpreter: one case under a ladder
of address-space limits (``RLIMIT_AS``), each step in a forked child.

Usage: host_exhaustion_script.py CASE. For each limit (the address space
mapped at the fork plus a margin) a child lowers its soft limit, runs CASE
once and reports how it ended: ``ok``, ``OutOfMemory``, ``Trap:<code>``, or
``ERROR <type>: <message>`` with the traceback for anything else (a bare
``MemoryError``, ``SystemError``, ``RuntimeError`` escaping wasmrt). The
parent prints one ``margin: outcome`` line per step.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmrt as w

PROGRAMS = Path(__file__).resolve().parents[3] / "corpus" / "programs"
#: Address space (bytes) a child may map beyond what it had at the fork.
MARGINS = [0, 64 << 10, 256 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20, 32 << 20]
RECURSE = """(module
  (func $r (export "recurse") (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))
  (func (export "ok") (result i32) (i32.const 5)))"""
ADD = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'


def _text_module() -> str:
    funcs = "".join(
        f'(func (export "f{i}") (param i32) (result i32) (local i64)'
        f" (block (result i32) (i32.add (local.get 0) (i32.const {i}))))"
        for i in range(3000)
    )
    return f"(module {funcs})"


class Allowing(w.ResourceLimiterAsync):
    async def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return True

    async def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return True


def case_module() -> Callable[[], object]:
    binary = (PROGRAMS / "brotli.wasm").read_bytes()
    engine = w.Engine()
    return lambda: w.Module(engine, binary)


def case_text() -> Callable[[], object]:
    text = _text_module()
    engine = w.Engine()
    return lambda: w.Module(engine, text)


def case_recursion() -> Callable[[], object]:
    config = w.Config()
    config.max_wasm_stack = 64 << 20  # deeper than any limit below lets the interpreter go
    engine = w.Engine(config)
    store = w.Store(engine)
    ex: Any = w.Instance(store, w.Module(engine, RECURSE), []).exports(store)

    def run() -> object:
        try:
            return ex["recurse"](store, 0)
        finally:
            # Whatever the recursion ended with, the store works afterwards.
            assert ex["ok"](store) == 5
            assert (
                w.Instance(store, w.Module(engine, ADD), []).exports(store)["add"](store, 2, 3) == 5
            )

    return run


def case_async() -> Callable[[], object]:
    engine = w.Engine()
    store = w.Store(engine)
    store.limiter_async(Allowing())
    module = w.Module(engine, ADD)

    async def go() -> int:
        inst = await w.Instance.new_async(store, module, [])
        add: Any = inst.exports(store)["add"]
        return int(await add.call_async(store, 40, 2))

    return lambda: asyncio.run(go())


CASES = {"module": case_module, "text": case_text, "recursion": case_recursion, "async": case_async}


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _outcome(run: Callable[[], object]) -> str:
    """How ``run`` ended, if documented; anything else propagates (see ``main``)."""
    try:
        run()
        return "ok"
    except w.OutOfMemory:
        return "OutOfMemory"
    except w.Trap as t:
        return f"Trap:{t.trap_code}"


def _child(run: Callable[[], object], limit: int, write_fd: int) -> None:
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        verdict = _outcome(run)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    os.write(write_fd, verdict.encode())


def _report_escape(write_fd: int, exc: BaseException | None) -> None:
    """An undocumented error that left the case: its type, message and traceback."""
    if exc is not None:
        text = "".join(traceback.format_exception(exc))
        os.write(write_fd, f"ERROR {type(exc).__name__}: {exc}\n{text}".encode())


def main() -> int:
    run = CASES[sys.argv[1]]()
    for margin in MARGINS:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 70
            try:
                os.close(read_fd)
                _child(run, _vm_size() + margin, write_fd)
                status = 0
            finally:
                # The child never returns into the parent's code: an escaping
                # error is written to the pipe (the limit is lifted by then).
                _report_escape(write_fd, sys.exc_info()[1])
                os._exit(status)
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 1 << 16):
            chunks.append(chunk)
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        verdict = b"".join(chunks).decode() or f"ERROR child died: status {status}"
        print(f"{margin}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
