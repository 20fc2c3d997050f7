"""Type constructors and accessors under injection (Wasmtime's types.rs, func_type.rs,
val.rs, global.rs/table.rs/memory.rs `*_ty`): FuncType params/results, TableType
element/limits, MemoryType limits/is_64/is_shared/page size, GlobalType
content/mutable, ValType constructors, Val conversions and null references, and the
types read back from live externs."""


def scenario(ctx):
    api = ctx.api
    VT = api("ValType")
    Limits = api("Limits")
    Val = api("Val")
    fty = api("FuncType")([VT.i32(), VT.i64()], [VT.f32()])
    ctx.record((len(fty.params), len(fty.results), str(fty.results[0])))
    empty = api("FuncType")([], [])
    ctx.record((empty.params, empty.results))
    tty = api("TableType")(VT.funcref(), Limits(1, 10))
    ctx.record((str(tty.element), tty.limits.min, tty.limits.max))
    xty = api("TableType")(VT.externref(), Limits(0, None))
    ctx.record((str(xty.element), xty.limits.max))
    mty = api("MemoryType")(Limits(1, 10))
    ctx.record((mty.limits.min, mty.limits.max, mty.is_64, mty.is_shared, mty.page_size))
    ctx.record(mty.page_size_log2)
    gty = api("GlobalType")(VT.i32(), True)
    ctx.record((str(gty.content), gty.mutable))
    ctx.record([str(t) for t in (VT.f64(), VT.v128())])
    ctx.record((Val.i32(42).as_i32(), Val.i64(42).as_i64(), Val.f32(1.5).as_f32()))
    ctx.record((Val.f64(2.5).value, str(Val.i32(1).type)))
    null = Val.ref_null(VT.funcref())
    ctx.record((null.as_funcref(), Val.funcref(None).value, Val.externref(None).value))
    store = ctx.store()
    glob = api("Global")(store, gty, 7)
    ctx.record(str(glob.type(store).content))
    mem = api("Memory")(store, mty)
    ctx.record(mem.type(store).limits.max)
    tab = api("Table")(store, tty, None)
    ctx.record(str(tab.type(store).element))
    func = api("Func")(store, fty, lambda a, b: 1.0)
    ctx.record(len(func.type(store).params))
