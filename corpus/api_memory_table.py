"""Memory and Table APIs called directly from Python (memory.rs, table.rs):
new, grow, size, data_len, read, write, type; set, get, grow, size.

Every API call is a step (``ctx.step``): in the retry-and-continue run the call that
hit the OutOfMemory is retried on the same store, so a grow or set that a failed
call half did shows in the sizes and values read after it."""


def scenario(ctx):
    api, step = ctx.api, ctx.step

    def record(fn, *args, label=""):
        ctx.record(step(fn, *args, label=label))

    store = step(ctx.store)
    Limits = api("Limits")
    mty = step(lambda: api("MemoryType")(Limits(1, 4)), label="MemoryType")
    mem = step(api("Memory"), store, mty)
    record(mem.grow, store, 1)
    record(mem.size, store)
    record(mem.data_len, store)
    record(mem.write, store, b"\x01\x02\x03", 10)
    record(lambda: bytes(mem.read(store, 10, 13)), label="read")
    record(lambda: mem.type(store).limits.max, label="type")
    ty = step(lambda: api("TableType")(api("ValType").funcref(), Limits(2, 10)), label="TableType")
    tab = step(api("Table"), store, ty, None)
    record(tab.grow, store, 3, None)
    fty = step(lambda: api("FuncType")([], [api("ValType").i32()]), label="FuncType")
    f = step(api("Func"), store, fty, lambda: 7)
    step(tab.set, store, 4, f)
    record(lambda: tab.get(store, 4)(store), label="get+call")
    record(tab.size, store)
