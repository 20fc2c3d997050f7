"""Linker APIs under injection (linker.rs): define_func, define, get, get_default,
instantiate_pre, define_unknown_imports_as_traps, instantiate."""

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
    api = ctx.api
    engine = ctx.engine()
    store = ctx.store(engine)
    linker = api("Linker")(engine)
    i32 = api("ValType").i32()
    ty = api("FuncType")([i32, i32], [i32])
    linker.define_func("host", "add", ty, lambda a, b: a + b)
    g = api("Global")(store, api("GlobalType")(i32, False), 40)
    linker.define(store, "host", "g", g)
    module = api("Module")(engine, WAT)
    linker.define_unknown_imports_as_traps(module)
    ctx.record(linker.get(store, "host", "g").value(store))
    pre = linker.instantiate_pre(module)
    inst = pre.instantiate(store)
    ctx.track(inst, "Instance(pre)")
    ctx.record(inst.exports(store)[""](store))
    inst2 = linker.instantiate(store, module)
    ctx.track(inst2, "Instance(linker)")
    linker.define_instance(store, "second", inst2)
    ctx.record(linker.get_default(store, "second")(store))
    try:
        inst2.exports(store)["trap"](store)
    except OutOfMemory:
        raise  # never mistake the injected OOM for the expected error
    except WasmtimeError as e:
        ctx.record(f"stub failed: {e}")
    else:
        raise AssertionError("an unknown import defined as a trap returned normally")
