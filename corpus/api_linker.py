"""Linker APIs under injection (linker.rs): define_func, define, get, get_default,
instantiate_pre, define_unknown_imports_as_traps, instantiate.

Every API call is a step (``ctx.step``): in the retry-and-continue run the call that
hit the OutOfMemory is retried on the same linker and store, so a definition half
made by a failed call (a name taken, a def lost) shows in the calls after it."""

from wasmrt.errors import OutOfMemory, WasmtimeError

WAT = """
(module
  (import "host" "add" (func $add (param i32 i32) (result i32)))
  (import "host" "g" (global i32))
  (import "env" "unknown" (func $u))
  (func (export "") (result i32) (call $add (global.get 0) (i32.const 2)))
  (func (export "trap") (call $u)))
"""


def scenario(ctx):
    api, step = ctx.api, ctx.step
    engine = step(ctx.engine)
    store = step(ctx.store, engine)
    linker = step(api("Linker"), engine)
    i32 = step(api("ValType").i32)
    ty = step(api("FuncType"), [i32, i32], [i32])
    step(linker.define_func, "host", "add", ty, lambda a, b: a + b)
    gty = step(api("GlobalType"), i32, False)
    g = step(api("Global"), store, gty, 40)
    step(linker.define, store, "host", "g", g)
    module = step(ctx.module, engine, WAT)
    step(linker.define_unknown_imports_as_traps, module)
    ctx.record(step(lambda: linker.get(store, "host", "g").value(store), label="get g"))
    pre = step(linker.instantiate_pre, module)
    inst = step(pre.instantiate, store)
    ctx.track(inst, "Instance(pre)")
    ctx.record(step(lambda: inst.exports(store)[""](store), label="call ''"))
    inst2 = step(linker.instantiate, store, module)
    ctx.track(inst2, "Instance(linker)")
    step(linker.define_instance, store, "second", inst2)
    ctx.record(step(lambda: linker.get_default(store, "second")(store), label="get_default"))
    try:
        step(lambda: inst2.exports(store)["trap"](store), label="call trap")
    except OutOfMemory:
        raise  # never mistake the injected OOM for the expected error
    except WasmtimeError as e:
        ctx.record(f"stub failed: {e}")
    else:
        raise AssertionError("an unknown import defined as a trap returned normally")
