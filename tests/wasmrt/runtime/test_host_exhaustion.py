"""The host's own exhaustion outside the modelled allocation sites (issue 14,
the ``sweep --exhaust`` findings): building a module, starting an async
worker and deep wasm recursion each end with a documented error
(``OutOfMemory``, a stack-overflow ``Trap``), never a bare ``MemoryError``,
``RuntimeError`` or ``SystemError``, and the store keeps working after.

The in-process cases make the host refuse by replacing one constructor or
entry point; ``test_real_exhaustion_ladder`` runs ``host_exhaustion_script.py``
in fresh interpreters whose forked children lower ``RLIMIT_AS`` step by step.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import wasmrt as w
from wasmrt.binary import decode as binary_decode
from wasmrt.runtime import limits
from wasmrt.text import wat as text_wat
from wasmrt.vm import backtrace

SCRIPT = Path(__file__).with_name("host_exhaustion_script.py")
#: What each case of the script may end with under a limit, and must end with at some limit.
LADDER = {
    "module": ({"ok", "OutOfMemory"}, {"ok", "OutOfMemory"}),
    "text": ({"ok", "OutOfMemory"}, {"ok", "OutOfMemory"}),
    "async": ({"ok", "OutOfMemory"}, {"ok", "OutOfMemory"}),
    "recursion": ({"Trap:TrapCode.STACK_OVERFLOW"}, {"Trap:TrapCode.STACK_OVERFLOW"}),
}

WAT = """(module
  (memory (export "mem") 1 10)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"""


class Allowing(w.ResourceLimiterAsync):
    async def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return True

    async def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return True


def _refuse(*args: object, **kwargs: object) -> Any:
    raise MemoryError


def test_decoder_memory_error_is_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = w.Engine()
    binary = w.wat2wasm(WAT)
    monkeypatch.setattr(binary_decode._Decoder, "instrs", _refuse)
    with pytest.raises(w.OutOfMemory) as ei:
        w.Module(engine, binary)
    assert ei.value.requested_allocation_size == len(binary)
    assert ei.value.__context__ is None and ei.value.__cause__ is None
    with pytest.raises(w.OutOfMemory):
        w.Module.validate(engine, binary)
    monkeypatch.undo()
    store = w.Store(engine)
    inst = w.Instance(store, w.Module(engine, binary), [])
    assert inst.exports(store)["add"](store, 2, 3) == 5


def test_text_reader_memory_error_is_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_wat, "wat2wasm", _refuse)
    monkeypatch.setattr(w.runtime.wat, "text_wat2wasm", _refuse)
    with pytest.raises(w.OutOfMemory) as ei:
        w.Module(w.Engine(), WAT)
    assert ei.value.requested_allocation_size == len(WAT)
    with pytest.raises(w.OutOfMemory):
        w.wat2wasm(WAT.encode())


def test_serialize_and_deserialize_memory_error_is_out_of_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = w.Engine()
    module = w.Module(engine, WAT)
    blob = module.serialize()
    monkeypatch.setattr(w.runtime.module.serialization, "serialize", _refuse)
    monkeypatch.setattr(w.runtime.module.serialization, "deserialize_compiled", _refuse)
    with pytest.raises(w.OutOfMemory):
        module.serialize()
    with pytest.raises(w.OutOfMemory) as ei:
        w.Module.deserialize(engine, blob)
    assert ei.value.requested_allocation_size == len(blob)
    monkeypatch.undo()
    store = w.Store(engine)
    inst = w.Instance(store, w.Module.deserialize(engine, blob), [])
    assert inst.exports(store)["add"](store, 1, 1) == 2


class _RefusingFile:
    """A file whose read() the host refuses (a huge module on a small machine)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __enter__(self) -> _RefusingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()

    def fileno(self) -> int:
        return int(self.real.fileno())

    def read(self, *args: object) -> bytes:
        raise MemoryError


def test_reading_a_module_file_the_host_cannot_hold_is_out_of_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = w.Engine()
    wasm, blob = tmp_path / "m.wasm", tmp_path / "m.cwasm"
    wasm.write_bytes(w.wat2wasm(WAT))
    blob.write_bytes(w.Module(engine, WAT).serialize())
    real_open = open
    monkeypatch.setattr(
        w.runtime.module,
        "open",
        lambda p, mode="r": _RefusingFile(real_open(p, mode)),
        raising=False,
    )
    with pytest.raises(w.OutOfMemory) as ei:
        w.Module.from_file(engine, wasm)
    assert ei.value.requested_allocation_size == wasm.stat().st_size
    with pytest.raises(w.OutOfMemory) as ei:
        w.Module.deserialize_file(engine, str(blob))
    assert ei.value.requested_allocation_size == blob.stat().st_size
    monkeypatch.undo()
    store = w.Store(engine)
    inst = w.Instance(store, w.Module.from_file(engine, wasm), [])
    assert inst.exports(store)["add"](store, 2, 3) == 5
    with pytest.raises(FileNotFoundError):  # open's own errors pass, as in wasmtime-py
        w.Module.from_file(engine, tmp_path / "missing.wasm")


def test_async_worker_thread_refused_is_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = w.Engine()
    store = w.Store(engine)
    store.limiter_async(Allowing())
    module = w.Module(engine, WAT)
    real_start = threading.Thread.start

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    async def scenario() -> int:
        monkeypatch.setattr(threading.Thread, "start", no_thread)
        with pytest.raises(w.OutOfMemory) as ei:
            await w.Instance.new_async(store, module, [])
        assert ei.value.requested_allocation_size == (threading.stack_size() or 8 << 20)
        with pytest.raises(w.OutOfMemory):
            await w.Linker(engine).instantiate_async(store, module)
        monkeypatch.setattr(threading.Thread, "start", real_start)
        inst = await w.Instance.new_async(store, module, [])
        add: Any = inst.exports(store)["add"]
        monkeypatch.setattr(threading.Thread, "start", no_thread)
        with pytest.raises(w.OutOfMemory):
            await add.call_async(store, 1, 2)
        monkeypatch.setattr(threading.Thread, "start", real_start)
        return int(await add.call_async(store, 40, 2))

    assert asyncio.run(scenario()) == 42
    # The refused operations never ran: only the one successful instance exists.
    assert store.ptr().instance_count == 1
    adapter = store.get_limiter()
    assert isinstance(adapter, limits.AsyncLimiterAdapter) and not adapter.in_async_scope


@pytest.mark.parametrize("case", sorted(LADDER))
def test_real_exhaustion_ladder(case: str) -> None:
    """Under every limit from the address space already mapped up to 32 MiB more,
    building brotli, reading a big text module, an async instantiate+call and
    unbounded recursion end with their documented outcomes only."""
    pytest.importorskip("resource", reason="RLIMIT_AS needs the Unix resource module")
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        pytest.skip("RLIMIT_AS is enforced for mappings on Linux only (and the ladder forks)")
    env = dict(os.environ)
    src = str(Path(w.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), case],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    steps = [line.split(": ", 1) for line in out.stdout.splitlines() if line[:1].isdigit()]
    outcomes = {verdict for _, verdict in steps}
    allowed, required = LADDER[case]
    assert outcomes <= allowed, out.stdout[-6000:]
    assert outcomes >= required, out.stdout[-6000:]


CALLS_HOST = """(module (import "h" "f" (func $f (param i32) (result i32)))
  (func (export "g") (param i32) (result i32) (call $f (local.get 0))))"""


def _raising_in_wasmrt() -> Any:
    """A function whose code is filed under wasmrt's package, raising ``MemoryError``
    (what an allocation in wasmrt's host-call glue does when the host refuses)."""
    filename = os.path.join(os.path.dirname(w.vm.func.__file__), "<host refuses>.py")
    namespace: dict[str, Any] = {}
    exec(compile("def refuse(*args):\n    raise MemoryError\n", filename, "exec"), namespace)
    return namespace["refuse"]


def _host_call_setup(fn: Any) -> tuple[w.Store, Any]:
    engine = w.Engine()
    store = w.Store(engine)
    ty = w.FuncType([w.ValType.i32()], [w.ValType.i32()])
    inst = w.Instance(store, w.Module(engine, CALLS_HOST), [w.Func(store, ty, fn)])
    return store, inst.exports(store)["g"]


def test_memory_error_in_wasmrt_code_under_a_call_is_not_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each allocation site maps the host's refusal itself (``HostAlloc``), where its
    semantics are known; the call boundary does not turn a stray ``MemoryError``
    from wasmrt's code into something else, so the real-exhaustion sweep sees it."""
    store, g = _host_call_setup(lambda x: x + 1)
    monkeypatch.setattr(w.vm.func, "try_alloc", _raising_in_wasmrt())
    with pytest.raises(MemoryError):
        g(store, 1)
    monkeypatch.undo()
    assert g(store, 1) == 2


def _guest_frame_raising(exc: type[BaseException]) -> Any:
    """A function the vm takes for generated wasm code (its globals name an owning
    module) that fails as the interpreter does when it cannot push the next frame."""
    namespace: dict[str, Any] = {backtrace.OWNER_KEY: lambda: None}
    source = f"def f0(*args):\n    raise {exc.__name__}('error return without exception set')\n"
    exec(compile(source, "<wasm module>", "exec"), namespace)
    return SimpleNamespace(call=namespace["f0"])


@pytest.mark.parametrize("exc", [SystemError, MemoryError])
def test_frame_push_failure_in_a_guest_frame_is_stack_overflow(exc: type[BaseException]) -> None:
    engine = w.Engine()
    store = w.Store(engine)
    core = store.ptr()
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        try:
            core.call(_guest_frame_raising(exc), [])
        except w.Trap as t:
            assert t.trap_code == w.TrapCode.STACK_OVERFLOW
            assert t.__cause__ is None and t.__suppress_context__
            ref = weakref.ref(t)
        assert ref() is None  # no frame of its traceback keeps it: freed at once
    finally:
        if was:
            gc.enable()
    assert w.Instance(store, w.Module(engine, WAT), []).exports(store)["add"](store, 2, 3) == 5


def test_host_function_memory_error_passes_unchanged() -> None:
    def host(x: int) -> int:
        raise MemoryError("the embedder's own")

    store, g = _host_call_setup(host)
    with pytest.raises(MemoryError, match="the embedder's own"):
        g(store, 1)


def test_async_worker_is_gone_when_the_call_returns() -> None:
    """The worker holds the operation (and so the store) until it exits: it is
    joined before ``call_async`` returns, so no store outlives its calls (the
    sweep's leak check runs right after)."""
    engine = w.Engine()
    store = w.Store(engine)
    store.limiter_async(Allowing())
    module = w.Module(engine, WAT)

    def workers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("wasmrt-async")]

    async def scenario() -> list[list[str]]:
        seen = []
        inst = await w.Instance.new_async(store, module, [])
        seen.append(workers())
        add: Any = inst.exports(store)["add"]
        for k in range(20):
            assert await add.call_async(store, k, 1) == k + 1
            seen.append(workers())
        return seen

    assert asyncio.run(scenario()) == [[]] * 21
