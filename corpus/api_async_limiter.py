# oomfuzz: fork=false
"""The *_async variants on a store whose limiter is a ResourceLimiterAsync that really
suspends (each decision awaits a future the event loop resolves later): instantiate,
call (wasm memory.grow/table.grow decided while the call runs on a worker thread),
grow, new, and InstancePre.instantiate_async. `fork=false`: calls run on a worker
thread, which a forked child would not have."""

import asyncio

from wasmrt.runtime.limits import ResourceLimiterAsync

PAGE = 65536

WAT = """
(module
  (memory (export "mem") 1 10)
  (table (export "tab") 1 10 funcref)
  (func (export "grow_mem") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "grow_tab") (param i32) (result i32)
    (table.grow (ref.null func) (local.get 0))))
"""


class Suspending(ResourceLimiterAsync):
    """Memories up to 4 pages and tables up to 6 elements, decided after a suspension."""

    async def _later(self, answer):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.call_soon(fut.set_result, answer)
        return await fut

    async def memory_growing(self, current, desired, maximum):
        return await self._later(desired <= 4 * PAGE)

    async def table_growing(self, current, desired, maximum):
        return await self._later(desired <= 6)


def scenario(ctx):
    asyncio.run(_scenario(ctx))


async def _scenario(ctx):
    api = ctx.api
    engine = ctx.engine()
    store = ctx.store(engine)
    store.limiter_async(Suspending())
    module = api("Module")(engine, WAT)
    inst = await api("Instance").new_async(store, module, [])
    ctx.track(inst, "Instance(new_async)")
    ex = inst.exports(store)
    ctx.record(await ex["grow_mem"].call_async(store, 2))
    ctx.record(await ex["grow_mem"].call_async(store, 5))  # refused: -1
    ctx.record(await ex["grow_tab"].call_async(store, 3))
    ctx.record(await ex["mem"].grow_async(store, 1))
    linker = api("Linker")(engine)
    inst2 = await linker.instantiate_async(store, module)
    ctx.track(inst2, "Instance(linker async)")
    inst3 = await linker.instantiate_pre(module).instantiate_async(store)
    ctx.track(inst3, "Instance(pre async)")
    ctx.record(await inst3.exports(store)["tab"].grow_async(store, 2, None))
    Limits = api("Limits")
    mem = await api("Memory").new_async(store, api("MemoryType")(Limits(2, None)))
    ctx.record(mem.size(store))
    tty = api("TableType")(api("ValType").funcref(), Limits(3, None))
    tab = await api("Table").new_async(store, tty, None)
    ctx.record(tab.size(store))
