"""Memory views and sizes under injection (Wasmtime's memory.rs memory_data,
memory_data_mut, memory_size, memory_data_size, memory_ty, wasm_memory_grow_relocate):
data_ptr and get_buffer_ptr views before and after wasm grows the memory (a view
taken after the grow sees the new bytes), page sizes, and reads with open bounds."""

WAT = """
(module
  (memory (export "memory") 1 4)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store8 (local.get 0) (local.get 1))))
"""


def scenario(ctx):
    api = ctx.api
    engine = ctx.engine()
    store = ctx.store(engine)
    inst = api("Instance")(store, api("Module")(engine, WAT), [])
    ctx.track(inst, "Instance")
    ex = inst.exports(store)
    mem = ex["memory"]
    ptr = mem.data_ptr(store)
    ptr[0] = 42
    ctx.record(ptr[0])
    view = mem.get_buffer_ptr(store, 4, 0)
    ctx.record(bytes(view))
    ctx.record((mem.size(store), mem.data_len(store), mem.page_size(store)))
    ctx.record(mem.page_size_log2(store))
    ctx.record(ex["grow"](store, 1))
    ex["store"](store, 65536 + 7, 9)
    ctx.record(mem.get_buffer_ptr(store, 1, 65536 + 7)[0])
    ctx.record((mem.size(store), mem.data_len(store)))
    ctx.record(len(mem.read(store, 65530, None)))
    ctx.record(len(mem.read(store, None, 3)))
    ctx.record(mem.write(store, b"abc", -3))
    ctx.record(bytes(mem.read(store, -3)))
