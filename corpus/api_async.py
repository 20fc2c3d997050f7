"""Every *_async variant under injection, on a store without an async limiter (Wasmtime's
instance.rs instance_new_async, linker.rs linker_instantiate_async, instance_pre.rs
instance_pre_instantiate_async, func.rs func_call_async, memory.rs memory_new_async /
memory_grow_async, table.rs table_new_async / table_grow_async, fuzz.rs
test_fuzz_async): each awaited in one event loop per run."""

import asyncio

WAT = """
(module
  (import "host" "f" (func $f (param i32) (result i32)))
  (memory (export "mem") 1 8)
  (table (export "tab") 1 8 funcref)
  (func (export "run") (param i32) (result i32)
    (i32.add (call $f (local.get 0)) (memory.grow (i32.const 1)))))
"""


def scenario(ctx):
    asyncio.run(_scenario(ctx))


async def _scenario(ctx):
    api = ctx.api
    engine = ctx.engine()
    store = ctx.store(engine)
    module = api("Module")(engine, WAT)
    i32 = api("ValType").i32()
    host = api("Func")(store, api("FuncType")([i32], [i32]), lambda x: x + 100)
    inst = await api("Instance").new_async(store, module, [host])
    ctx.track(inst, "Instance(new_async)")
    run = inst.exports(store)["run"]
    ctx.record(await run.call_async(store, 1))
    linker = api("Linker")(engine)
    linker.define(store, "host", "f", host)
    inst2 = await linker.instantiate_async(store, module)
    ctx.track(inst2, "Instance(linker async)")
    ctx.record(await inst2.exports(store)["run"].call_async(store, 2))
    pre = linker.instantiate_pre(module)
    inst3 = await pre.instantiate_async(store)
    ctx.track(inst3, "Instance(pre async)")
    mem = inst3.exports(store)["mem"]
    ctx.record(await mem.grow_async(store, 2))
    tab = inst3.exports(store)["tab"]
    ctx.record(await tab.grow_async(store, 3, None))
    Limits = api("Limits")
    mem2 = await api("Memory").new_async(store, api("MemoryType")(Limits(1, 4)))
    ctx.record(await mem2.grow_async(store, 1))
    tty = api("TableType")(api("ValType").funcref(), Limits(1, 4))
    tab2 = await api("Table").new_async(store, tty, host)
    ctx.record(await tab2.grow_async(store, 2, host))
    ctx.record((mem2.size(store), tab2.size(store)))
