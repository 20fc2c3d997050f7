"""``Store``: engine/data rules, fuel, epochs, limits, limiter, lifecycle."""

from __future__ import annotations

from typing import Any

import pytest
from wasmrt_api_support import same_outcome

import wasmrt


def _fuel_store(w: Any) -> Any:
    c = w.Config()
    c.consume_fuel = True
    return w.Store(w.Engine(c))


CASES = {
    "bad_engine": lambda w: w.Store(3),
    "default_engine": lambda w: isinstance(w.Store().engine, w.Engine),
    "data_falsy": lambda w: w.Store(None, 0).data(),
    "data": lambda w: w.Store(None, [1]).data(),
    "fuel_off_get": lambda w: w.Store().get_fuel(),
    "fuel_off_set": lambda w: w.Store().set_fuel(1),
    "fuel": lambda w: (lambda s: (s.get_fuel(), s.set_fuel(10), s.get_fuel()))(_fuel_store(w)),
    "fuel_neg": lambda w: (lambda s: (s.set_fuel(-1), s.get_fuel()))(_fuel_store(w)),
    "gc": lambda w: w.Store().gc(),
    "deadline": lambda w: w.Store().set_epoch_deadline(5),
    "limits": lambda w: w.Store().set_limits(memory_size=1 << 20),
    "limits_mem0": lambda w: (
        lambda s: (s.set_limits(memory_size=0), w.Memory(s, w.MemoryType(w.Limits(1, None))))
    )(w.Store()),
    "limits_table1": lambda w: (
        lambda s: (
            s.set_limits(table_elements=1),
            w.Table(s, w.TableType(w.ValType.funcref(), w.Limits(1, None)), None).size(s),
        )
    )(w.Store()),
    "limits_table2": lambda w: (
        lambda s: (
            s.set_limits(table_elements=1),
            w.Table(s, w.TableType(w.ValType.funcref(), w.Limits(2, None)), None),
        )
    )(w.Store()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_wasmtime(name: str) -> None:
    outcome = same_outcome(CASES[name])
    if name.startswith("limits_mem0") or name == "limits_table2":
        assert outcome[0] == "err"


def test_closed_store() -> None:
    s = wasmrt.Store()
    s.close()
    s.close()
    for op in (
        s.data,
        s.gc,
        s.get_fuel,
        lambda: s.set_limits(1),
        lambda: wasmrt.Func(s, wasmrt.FuncType([], []), lambda: None),
    ):
        with pytest.raises(ValueError, match="already closed"):
            op()


def test_with_closes_store() -> None:
    with wasmrt.Store() as s:
        g = wasmrt.Global(s, wasmrt.GlobalType(wasmrt.ValType.i32(), False), 3)
        assert g.value(s) == 3
    with pytest.raises(ValueError, match="already closed"):
        g.value(s)


def test_set_limits_resets_unpassed_fields() -> None:
    s = wasmrt.Store()
    s.set_limits(memory_size=0)
    with pytest.raises(wasmrt.WasmtimeError):
        wasmrt.Memory(s, wasmrt.MemoryType(wasmrt.Limits(1, None)))
    s.set_limits(table_elements=5)  # memory_size back to unlimited
    assert wasmrt.Memory(s, wasmrt.MemoryType(wasmrt.Limits(1, None))).size(s) == 1


def test_limiter_is_consulted() -> None:
    calls: list[tuple[int, int, int | None]] = []

    class Policy(wasmrt.ResourceLimiter):
        def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
            calls.append((current, desired, maximum))
            return desired <= 2 * 65536

    s = wasmrt.Store()
    s.limiter(Policy())
    mem = wasmrt.Memory(s, wasmrt.MemoryType(wasmrt.Limits(1, None)))
    assert mem.grow(s, 1) == 1
    with pytest.raises(wasmrt.WasmtimeError, match="failed to grow memory by `1`"):
        mem.grow(s, 1)
    assert calls[0][:2] == (0, 65536)
    with pytest.raises(TypeError):
        s.limiter(object())


def test_instance_count_limit() -> None:
    s = wasmrt.Store()
    s.set_limits(instances=1)
    m = wasmrt.Module(s.engine, "(module)")
    wasmrt.Instance(s, m, [])
    with pytest.raises(wasmrt.WasmtimeError, match="instance count too high"):
        wasmrt.Instance(s, m, [])


def test_fuel_and_epoch_trap() -> None:
    c = wasmrt.Config()
    c.consume_fuel = True
    s = wasmrt.Store(wasmrt.Engine(c))
    m = wasmrt.Module(s.engine, '(module (func (export "f") (loop br 0)))')
    f = wasmrt.Instance(s, m, []).exports(s)["f"]
    s.set_fuel(1000)
    with pytest.raises(wasmrt.Trap) as info:
        f(s)
    assert info.value.trap_code == wasmrt.TrapCode.OUT_OF_FUEL

    c = wasmrt.Config()
    c.epoch_interruption = True
    s = wasmrt.Store(wasmrt.Engine(c))
    m = wasmrt.Module(s.engine, '(module (func (export "f")))')
    f = wasmrt.Instance(s, m, []).exports(s)["f"]
    with pytest.raises(wasmrt.Trap) as info:
        f(s)
    assert info.value.trap_code == wasmrt.TrapCode.INTERRUPT
    s.set_epoch_deadline(1)
    assert f(s) is None


def test_store_creation_oom_then_ok() -> None:
    from wasmrt.alloc import install_hook, refusing_after

    e = wasmrt.Engine()
    with install_hook(refusing_after(0)), pytest.raises(wasmrt.OutOfMemory):
        wasmrt.Store(e)
    assert wasmrt.Store(e).data() is None
