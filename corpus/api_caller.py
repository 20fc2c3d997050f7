"""Host functions that take a Caller, under injection (Wasmtime's caller.rs:
caller_get_export; caller_data and caller_engine have no wasmrt counterpart, the
caller is used as the store instead): the caller looks up the calling instance's
exports, reads and writes its memory, sets its global, grows its table and calls
back into wasm, all with the caller standing in for the store."""

WAT = """
(module
  (import "host" "poke" (func $poke (param i32) (result i32)))
  (memory (export "memory") 1)
  (global (export "counter") (mut i32) (i32.const 0))
  (table (export "table") 1 funcref)
  (func $cb (export "callback") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func (export "run") (param i32) (result i32) (call $poke (local.get 0))))
"""


def poke(caller, x):
    mem = caller["memory"]
    mem.write(caller, bytes([x, x + 1]), 8)
    total = sum(mem.read(caller, 8, 10))
    caller["counter"].set_value(caller, total)
    table = caller.get("table")
    table.grow(caller, 1, caller["callback"])
    doubled = table.get(caller, 1)(caller, x)
    missing = caller.get("nope")
    return total + doubled + (0 if missing is None else 1000)


def scenario(ctx):
    api = ctx.api
    engine = ctx.engine()
    store = ctx.store(engine)
    i32 = api("ValType").i32()
    host = api("Func")(store, api("FuncType")([i32], [i32]), poke, access_caller=True)
    inst = api("Instance")(store, api("Module")(engine, WAT), [host])
    ctx.track(inst, "Instance")
    ex = inst.exports(store)
    ctx.record(ex["run"](store, 5))
    ctx.record(ex["counter"].value(store))
    ctx.record(ex["table"].size(store))
    probe = api("Func")(store, api("FuncType")([], [i32]), _probe, access_caller=True)
    ctx.record(probe(store))  # called from the embedder: the caller finds no exports


def _probe(caller):
    return int(caller.get("memory") is None)
