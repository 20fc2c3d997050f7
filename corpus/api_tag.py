"""Tags under injection (Wasmtime's tag.rs: tag_new, tag_ty, tag_eq): a TagType built
from a FuncType (which it consumes), two Tags of one type, the type read back and
identity compared."""


def scenario(ctx):
    api = ctx.api
    store = ctx.store()
    i32 = api("ValType").i32()
    tag_ty = api("TagType")(api("FuncType")([i32, api("ValType").i64()], []))
    tag1 = api("Tag")(store, tag_ty)
    tag2 = api("Tag")(store, tag_ty)
    ctx.track(tag1, "Tag")
    ty = tag1.type(store)
    ctx.record([str(p) for p in ty.functype.params])
    ctx.record(tag1.eq(store, tag1))
    ctx.record(tag1.eq(store, tag2))
