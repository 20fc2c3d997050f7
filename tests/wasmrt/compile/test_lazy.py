"""Functions are generated and compiled on their first call: what that must keep true.

Instantiation compiles nothing; a first call compiles one function and asks
``try_alloc`` for its code; an OOM there leaves the call as ``OutOfMemory``
and the function compilable later; a second module with the same code reuses
the process's compiled code but still asks for its own; stubs never stay on
the call path; imports of lazily compiled functions see their compilation.
"""

from __future__ import annotations

from typing import Any

import pytest
from wat_helpers import engine, wat_to_compiled

import wasmrt
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.compile import cache
from wasmrt.errors import OutOfMemory
from wasmrt.trap import Trap, TrapCode
from wasmrt.vm import StoreCore, instantiate

CHAIN = """
(module
  (memory (export "mem") 1)
  (func $a (export "a") (param i32) (result i32)
    (i32.store (i32.const 0) (local.get 0))
    (call $b (i32.add (local.get 0) (i32.const 1))))
  (func $b (export "b") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))
  (func $odd (export "odd") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
      (else (call $even (i32.sub (local.get 0) (i32.const 1))))))
  (func $even (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 1))
      (else (call $odd (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "never") (result f64) (f64.const nan:0x123))
)
"""


def _codes(inst: Any) -> list[Any]:
    return inst.compiled.variant(inst.store.consume_fuel, inst.store.epoch_interruption).codes


def test_instantiation_compiles_nothing_and_a_call_compiles_what_it_runs() -> None:
    store = StoreCore()
    inst = instantiate(store, wat_to_compiled(CHAIN), [])
    assert _codes(inst) == [None] * 5
    assert store.call(inst.exports["a"], [4]) == 15
    assert [c is not None for c in _codes(inst)] == [True, True, False, False, False]
    assert store.call(inst.exports["odd"], [7]) == 1  # mutual recursion, compiled on the way
    assert _codes(inst)[4] is None


def test_oom_while_compiling_a_first_call_leaves_everything_usable() -> None:
    store = StoreCore()
    inst = instantiate(store, wat_to_compiled(CHAIN), [])
    assert store.call(inst.exports["b"], [1]) == 3

    def refuse_code(size: int, kind: AllocKind, absorbing: bool) -> None:
        if kind is AllocKind.CODE:
            raise OutOfMemory(size)

    with install_hook(refuse_code):
        with pytest.raises(OutOfMemory):
            store.call(inst.exports["a"], [4])
        assert store.call(inst.exports["b"], [2]) == 6  # compiled before: still runs
    assert _codes(inst)[0] is None
    # $a got nowhere: memory is untouched, and a later call compiles and runs it.
    assert inst.mems[0].data[0] == 0
    assert store.call(inst.exports["a"], [4]) == 15
    assert inst.mems[0].data[0] == 4


def test_oom_while_compiling_a_callee_surfaces_from_the_outer_call() -> None:
    store = StoreCore()
    inst = instantiate(store, wat_to_compiled(CHAIN), [])
    calls = []

    def refuse_second(size: int, kind: AllocKind, absorbing: bool) -> None:
        if kind is AllocKind.CODE:
            calls.append(size)
            if len(calls) == 2:  # $a compiles, then $b is refused
                raise OutOfMemory(size)

    with install_hook(refuse_second), pytest.raises(OutOfMemory):
        store.call(inst.exports["a"], [4])
    assert inst.mems[0].data[0] == 4  # like a trap: what ran before stays done
    assert store.call(inst.exports["a"], [5]) == 18


def test_every_compiled_function_asks_for_its_code_even_when_the_process_has_it() -> None:
    first = wat_to_compiled(CHAIN)
    second = wat_to_compiled(CHAIN)
    sizes: list[tuple[int, AllocKind]] = []
    for cm in (first, second):
        store = StoreCore()
        inst = instantiate(store, cm, [])
        with install_hook(lambda size, kind, absorbing: sizes.append((size, kind))):
            assert store.call(inst.exports["b"], [5]) == 15
    code = [s for s in sizes if s[1] is AllocKind.CODE]
    assert len(code) == 2 and code[0] == code[1]
    # Same body, same types, same variant: one code object for both modules.
    assert first.variant().codes[1] is second.variant().codes[1]


def test_stubs_leave_the_call_path_after_the_first_call() -> None:
    store = StoreCore()
    inst = instantiate(store, wat_to_compiled(CHAIN), [])
    a = inst.exports["a"]
    stub = a.call
    assert store.call(a, [1]) == 6
    real = a.call
    assert real is not stub and real.__name__ == "f0"
    # $a reaches $b through a closure cell that now holds $b's compiled function.
    cells = dict(zip(real.__code__.co_freevars, real.__closure__, strict=True))
    assert cells["f1"].cell_contents is inst.funcs[1].call
    assert stub(2) == 9  # a stub kept elsewhere still works


def test_two_instances_share_code_but_not_bindings() -> None:
    cm = wat_to_compiled(CHAIN)
    store = StoreCore()
    one, two = instantiate(store, cm, []), instantiate(store, cm, [])
    store.call(one.exports["a"], [7])
    store.call(two.exports["a"], [9])
    assert one.mems[0].data[0] == 7 and two.mems[0].data[0] == 9
    assert one.exports["a"].call is not two.exports["a"].call
    assert one.exports["a"].call.__code__ is two.exports["a"].call.__code__


def test_import_of_a_lazily_compiled_function_calls_the_compiled_code() -> None:
    store = StoreCore()
    lib = instantiate(store, wat_to_compiled(CHAIN), [])
    user = instantiate(
        store,
        wat_to_compiled(
            '(module (import "lib" "b" (func $b (param i32) (result i32)))'
            ' (func (export "f") (param i32) (result i32) (call $b (local.get 0))))'
        ),
        [lib.exports["b"]],
    )
    assert store.call(user.exports["f"], [2]) == 6
    f = user.exports["f"].call
    cells = dict(zip(f.__code__.co_freevars, f.__closure__, strict=True))
    assert cells["_c0"].cell_contents is lib.exports["b"].call  # no stub between them


def test_fuel_and_epoch_variants_compile_lazily_too() -> None:
    store = StoreCore(engine(fuel=True, epoch=True))
    store.set_epoch_deadline(1)
    store.fuel_counter = -1000
    inst = instantiate(store, wat_to_compiled(CHAIN), [])
    assert store.call(inst.exports["odd"], [3]) == 1
    assert inst.compiled.variant(True, True).codes[2] is not None
    assert inst.compiled.variant().codes[2] is None
    store.fuel_counter = 0
    with pytest.raises(Trap) as ei:
        store.call(inst.exports["odd"], [3])
    assert ei.value.trap_code is TrapCode.OUT_OF_FUEL


def test_deep_first_call_compiles_on_a_fresh_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cache._compile
    seen: list[bool] = []

    def deep_once(source: str) -> Any:
        if not seen:
            seen.append(True)
            raise RecursionError("maximum recursion depth exceeded during compilation")
        return real(source)

    monkeypatch.setattr(cache, "_compile", deep_once)
    store = StoreCore()
    inst = instantiate(
        store, wat_to_compiled('(module (func (export "f") (result i32) (i32.const 0x5eed)))'), []
    )
    assert store.call(inst.exports["f"], []) == 0x5EED
    assert seen == [True]


def test_a_module_with_many_functions_instantiates_without_compiling_them() -> None:
    n = 3000
    funcs = " ".join(f'(func (export "f{i}") (result i32) (i32.const {i}))' for i in range(n))
    eng = wasmrt.Engine()
    module = wasmrt.Module(eng, f"(module {funcs})")
    store = wasmrt.Store(eng)
    exports = wasmrt.Instance(store, module, []).exports(store)
    assert exports["f2999"](store) == 2999
    codes = module._core.compiled.variant().codes
    assert sum(c is not None for c in codes) == 1


def test_generated_code_is_reported_by_function() -> None:
    cm = wat_to_compiled(CHAIN)
    src = cm.source
    for k in range(5):
        assert f"def f{k}(" in src
    assert cm.variant().codes == [None] * 5  # reading the source compiles nothing
    assert "_kf64_" in cm.function_source(4)  # a NaN constant, named by its bits


def test_first_call_at_the_guaranteed_depth_still_compiles() -> None:
    # ``max_wasm_stack`` guarantees ``store.max_depth`` wasm frames; a function first
    # called at that depth is generated and compiled there (on a fresh stack if the
    # compiler runs out of frames) instead of overflowing.
    nest = "(local.get 0)"
    for i in range(30):
        nest = f"(i32.add {nest} (i32.const {i}))"
    wat = f"""(module
      (func $leaf (param i32) (result i32) {nest})
      (func $rec (export "rec") (param i32) (result i32)
        (if (result i32) (i32.eqz (local.get 0)) (then (call $leaf (i32.const 1)))
          (else (call $rec (i32.sub (local.get 0) (i32.const 1)))))))"""
    for stack in (64 * 1024, 512 * 1024):
        store = StoreCore(engine(max_wasm_stack=stack))
        inst = instantiate(store, wat_to_compiled(wat), [])
        # rec(n) runs n + 1 frames of $rec, then $leaf: max_depth frames in all.
        assert store.call(inst.exports["rec"], [store.max_depth - 2]) == 1 + sum(range(30))
        assert _codes(inst)[0] is not None


def test_process_cache_keeps_to_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "_codes", {})
    monkeypatch.setattr(cache, "_chars", [0])
    monkeypatch.setattr(cache, "MAX_CACHED_CHARS", 200)
    sources = [f"def f{k}(l0):\n    return ((l0 + {k}) & 4294967295)" for k in range(20)]
    codes = [cache.function_code(s) for s in sources]
    assert cache._chars[0] <= 200 and len(cache._codes) < 20
    assert cache.function_code(sources[-1]) is codes[-1]  # the newest entries stay
    assert cache._chars[0] == sum(len(s) for s in cache._codes)


def test_the_same_function_is_generated_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmrt.compile import codegen

    generated: list[int] = []
    real = codegen.FunctionCompiler.compile

    def counting(self: codegen.FunctionCompiler) -> list[str]:
        generated.append(self.fidx)
        return real(self)

    monkeypatch.setattr(codegen.FunctionCompiler, "compile", counting)
    cache.clear()
    first, again = wat_to_compiled(CHAIN), wat_to_compiled(CHAIN)
    first.compile_all()
    assert sorted(generated) == [0, 1, 2, 3, 4]
    again.compile_all()  # same bodies, same module facts, same variant: nothing generated
    assert len(generated) == 5
    assert again.variant().sources == first.variant().sources
    again.compile_all(fuel=True)  # another variant is other code
    assert len(generated) == 10
    # A module with other types (here one more) is other code, even for equal bodies.
    other = wat_to_compiled(
        CHAIN.replace(
            '(func (export "never") (result f64)', '(func (export "never") (result f32)'
        ).replace("f64.const", "f32.const")
    )
    other.compile_all()
    assert len(generated) == 15


def test_a_host_memory_error_while_compiling_is_an_out_of_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = cache._compile
    failed: list[str] = []

    def fail_once(source: str) -> Any:
        if not failed:
            failed.append(source)
            raise MemoryError
        return real(source)

    monkeypatch.setattr(cache, "_compile", fail_once)
    cache.clear()
    store = StoreCore()
    inst = instantiate(store, wat_to_compiled(CHAIN), [])
    with pytest.raises(OutOfMemory) as ei:
        store.call(inst.exports["b"], [2])
    # The request covers the source and its line map entry (a slot per line).
    size, lines = ei.value.requested_allocation_size, failed[0].count("\n") + 1
    assert len(failed[0]) < size <= len(failed[0]) + 8 * lines
    assert store.call(inst.exports["b"], [2]) == 6
