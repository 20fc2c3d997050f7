"""OutOfMemory through the public API: refused allocations surface unchanged and the
store keeps working once the hook is removed."""

from __future__ import annotations

import pytest

import wasmrt
from wasmrt.alloc import AllocKind

WAT = """
(module
  (import "host" "double" (func $double (param i32) (result i32)))
  (func (export "f") (param i32) (result i32) local.get 0 call $double))
"""


def refuse_everything(size: int, kind: AllocKind, absorbing: bool) -> None:
    raise wasmrt.OutOfMemory(size)


def test_host_call_under_refusing_hook_raises_oom_then_recovers() -> None:
    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    calls: list[int] = []

    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    ty = wasmrt.FuncType([wasmrt.ValType.i32()], [wasmrt.ValType.i32()])
    linker = wasmrt.Linker(engine)
    linker.define_func("host", "double", ty, double)
    instance = linker.instantiate(store, wasmrt.Module(engine, WAT))
    f = instance.exports(store)["f"]
    assert f(store, 2) == 4

    with wasmrt.install_hook(refuse_everything):
        with pytest.raises(wasmrt.OutOfMemory) as info:
            instance.exports(store)["f"](store, 21)
        assert type(info.value) is wasmrt.OutOfMemory
        assert calls == [2]  # the host callback never ran

    assert instance.exports(store)["f"](store, 21) == 42
    assert calls == [2, 21]
    mem = wasmrt.Memory(store, wasmrt.MemoryType(wasmrt.Limits(1, None)))
    assert mem.grow(store, 1) == 1


@pytest.mark.parametrize("n", range(0, 40, 3))
def test_refusal_at_every_point_of_a_small_program(n: int) -> None:
    """Fail the n-th allocation (and all later ones): either the whole script
    succeeds, or it raises OutOfMemory; afterwards a fresh run succeeds."""

    def script() -> int:
        engine = wasmrt.Engine()
        store = wasmrt.Store(engine)
        linker = wasmrt.Linker(engine)
        ty = wasmrt.FuncType([wasmrt.ValType.i32()], [wasmrt.ValType.i32()])
        linker.define_func("host", "double", ty, lambda x: 2 * x)
        inst = linker.instantiate(store, wasmrt.Module(engine, WAT))
        return int(inst.exports(store)["f"](store, 5))

    expected = script()
    with wasmrt.install_hook(wasmrt.alloc.refusing_after(n)):
        try:
            assert script() == expected
        except wasmrt.OutOfMemory:
            pass
    assert script() == expected
