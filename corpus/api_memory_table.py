"""Memory and Table APIs called directly from Python (memory.rs, table.rs):
new, grow, size, data_len, read, write, type; set, get, grow, size."""


def scenario(ctx):
    api = ctx.api
    store = ctx.store()
    Limits = api("Limits")
    mem = api("Memory")(store, api("MemoryType")(Limits(1, 4)))
    ctx.record(mem.grow(store, 1))
    ctx.record(mem.size(store))
    ctx.record(mem.data_len(store))
    ctx.record(mem.write(store, b"\x01\x02\x03", 10))
    ctx.record(bytes(mem.read(store, 10, 13)))
    ctx.record(mem.type(store).limits.max)
    ty = api("TableType")(api("ValType").funcref(), Limits(2, 10))
    tab = api("Table")(store, ty, None)
    ctx.record(tab.grow(store, 3, None))
    fty = api("FuncType")([], [api("ValType").i32()])
    f = api("Func")(store, fty, lambda: 7)
    tab.set(store, 4, f)
    ctx.record(tab.get(store, 4)(store))
    ctx.record(tab.size(store))
