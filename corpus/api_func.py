"""Functions under injection (Wasmtime's func.rs: func_new, func_new_with_type,
func_call, func_ty; func_typed and typed_func_call_async have no wasmrt counterpart):
host functions of several signatures (none, multi-value, i64/f32/f64, funcref and
externref arguments), called from Python and from wasm, Val arguments, a host function
that raises, and wasm functions passed back to the host."""

from wasmrt.errors import OutOfMemory

WAT = """
(module
  (import "host" "pair" (func $pair (param i32) (result i32 i64)))
  (import "host" "fail" (func $fail))
  (func (export "sum") (param i32) (result i64) (local $wide i64)
    (call $pair (local.get 0))
    (local.set $wide)
    (i64.extend_i32_s)
    (i64.add (local.get $wide)))
  (func (export "mixed") (param i64 f32 f64) (result f64)
    (f64.add (f64.convert_i64_s (local.get 0))
      (f64.add (f64.promote_f32 (local.get 1)) (local.get 2))))
  (func (export "fail") (call $fail))
  (func (export "id") (param externref) (result externref) (local.get 0))
  (func (export "ref") (param funcref) (result i32) (ref.is_null (local.get 0))))
"""


class Boom(Exception):
    pass


def fail():
    raise Boom("host failure")


def scenario(ctx):
    api = ctx.api
    VT = api("ValType")
    FuncType = api("FuncType")
    Func = api("Func")
    engine = ctx.engine()
    store = ctx.store(engine)
    pair = Func(store, FuncType([VT.i32()], [VT.i32(), VT.i64()]), lambda x: (x, x * 10))
    boom = Func(store, FuncType([], []), fail)
    nothing = Func(store, FuncType([], []), lambda: None)
    ctx.record(nothing(store))
    ctx.record(pair(store, 4))
    inst = api("Instance")(store, api("Module")(engine, WAT), [pair, boom])
    ctx.track(inst, "Instance")
    ex = inst.exports(store)
    ctx.record(ex["sum"](store, 3))
    ctx.record(ex["mixed"](store, 1, 1.5, 2.25))
    ctx.record(ex["mixed"](store, api("Val").i64(2), api("Val").f32(0.5), 0.25))
    try:
        ex["fail"](store)
    except OutOfMemory:
        raise
    except Boom as e:  # a host exception reaches the embedder unchanged
        ctx.record(f"host raised: {e}")
    token = object()
    ctx.record(ex["id"](store, token) is token)
    ctx.record(ex["ref"](store, nothing))
    ctx.record(ex["ref"](store, None))
    ctx.record(len(ex["sum"].type(store).params))
