"""Module serialization under injection (Wasmtime's module.rs: module_deserialize,
module_deserialize_multiple_rec_groups): serialize a module with imports, data and
element segments (active and passive), deserialize it on a fresh engine, then
instantiate and call the deserialized module."""

WAT = """
(module
  (type $a (func (param i32) (result i32)))
  (type $b (func (param i64) (result i64)))
  (import "module" "func" (func $imp (type $a)))
  (memory (export "memory") 1)
  (data (i32.const 0) "a")
  (data "a")
  (table (export "table") 2 funcref)
  (elem (i32.const 0) func $f)
  (elem func $f)
  (func $f (export "func") (type $a) (call $imp (local.get 0)))
  (func (export "wide") (type $b) (i64.add (local.get 0) (i64.const 1))))
"""


def scenario(ctx):
    api = ctx.api
    engine = ctx.engine()
    blob = api("Module")(engine, WAT).serialize()
    ctx.record(len(blob) > 0)
    fresh = ctx.engine()
    module = api("Module").deserialize(fresh, blob)
    ctx.record([e.name for e in module.exports])
    store = ctx.store(fresh)
    i32 = api("ValType").i32()
    host = api("Func")(store, api("FuncType")([i32], [i32]), lambda x: x * 3)
    inst = api("Instance")(store, module, [host])
    ctx.track(inst, "Instance(deserialized)")
    exports = inst.exports(store)
    ctx.record(exports["func"](store, 5))
    ctx.record(exports["wide"](store, 41))
    ctx.record(bytes(exports["memory"].read(store, 0, 1)))

