"""The host's own allocation failures have the outcomes of a refused ``try_alloc``
(issue 14, item 2): -1 from the ``memory.grow``/``table.grow`` instructions,
``OutOfMemory`` from ``Memory.grow``, ``Memory(...)``, ``Table.grow`` and
instantiation, never a bare ``MemoryError``; the store keeps working after.

The real case runs ``host_oom_script.py`` in a fresh interpreter under an
address-space limit (``ulimit -v 2500000`` as in the issue); the in-process
cases make the host refuse by replacing the buffer/list constructors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wasmrt as w
from wasmrt.vm import memory as vm_memory

SCRIPT = Path(__file__).with_name("host_oom_script.py")
EXPECTED = {
    "memory.grow instruction": "returned -1",
    "table.grow instruction": "returned -1",
    "Memory.grow": "OutOfMemory",
    "Memory(65535 pages)": "OutOfMemory",
    "Table.grow": "OutOfMemory",
    "instantiate huge memory": "OutOfMemory",
    "instantiate huge table": "OutOfMemory",
    "memory.grow 1 after": "returned 1",
    "size after": "returned 2",
    "store/load after": "returned 7",
    "Memory.grow 1 after": "returned 1",
    "Table.grow 3 after": "returned 0",
    "new instance after": "returned 'Instance'",
    "memory.grow 20000": "returned 2",
    "memory.fill all": "returned None",
    "memory.copy all": "returned None",
    "bytes at the end": f"returned {0x5A5A5A5A}",
}


def test_real_address_space_exhaustion_maps_to_oom_outcomes() -> None:
    pytest.importorskip("resource", reason="RLIMIT_AS needs the Unix resource module")
    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_AS is enforced for mappings on Linux only")
    env = dict(os.environ)
    src = str(Path(w.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(2_500_000 * 1024)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    assert got == EXPECTED


GROW = """(module (memory (export "m") 1 100)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size)))"""


def _refusing_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new linear-memory buffer and in-place extension fails as the host would."""

    def refuse(nbytes: int, at_least: int = 0) -> vm_memory.Buffer:
        raise MemoryError

    monkeypatch.setattr(vm_memory, "reserve_buffer", refuse)


def test_memory_creation_refused_by_host_is_out_of_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = w.Engine()
    store = w.Store(engine)
    module = w.Module(engine, GROW)
    _refusing_buffers(monkeypatch)
    with pytest.raises(w.OutOfMemory) as ei:
        w.Memory(store, w.MemoryType(w.Limits(2, None)))
    assert ei.value.requested_allocation_size == 2 * 65536
    with pytest.raises(w.OutOfMemory):
        w.Instance(store, module, [])
    monkeypatch.undo()
    inst = w.Instance(store, module, [])
    assert inst.exports(store)["size"](store) == 1


def test_memory_growth_refused_by_host(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = w.Engine(w.Config())
    store = w.Store(engine)
    inst = w.Instance(store, w.Module(engine, GROW), [])
    ex = inst.exports(store)
    mem = ex["m"]
    core = mem._memory  # the vm LinearMemory: force growth past its buffer
    data = core.data
    core.data = bytearray(data[: core.size])
    view = memoryview(core.data)  # pins the bytearray: growth must move
    _refusing_buffers(monkeypatch)
    assert ex["grow"](store, 3) == -1
    with pytest.raises(w.OutOfMemory):
        mem.grow(store, 3)
    assert ex["size"](store) == 1 and mem.size(store) == 1
    monkeypatch.undo()
    view.release()
    assert ex["grow"](store, 3) == 1
    assert ex["size"](store) == 4
