"""Store APIs under injection (Wasmtime's store.rs: store_try_new, store_data,
store_data_mut's nearest form, store_engine, store_limiter, store_fuel,
store_epoch_deadline): a store with data, its engine, a StoreLimits built with
StoreLimitsBuilder, a custom ResourceLimiter that refuses one grow, fuel and an
epoch deadline that interrupts a loop, and store.gc."""

from wasmrt.runtime.limits import ResourceLimiter

WAT = """
(module
  (import "host" "tick" (func $tick))
  (memory (export "mem") 1)
  (table (export "tab") 1 funcref)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "spin") (call $tick) (loop $l (br $l))))
"""


class OnlyTwoPages(ResourceLimiter):
    def __init__(self):
        self.refused = 0

    def memory_growing(self, current, desired, maximum):
        if desired > 2 * 65536:
            self.refused += 1
            return False
        return True

    def table_growing(self, current, desired, maximum):
        return desired <= 4


def scenario(ctx):
    api = ctx.api
    cfg = api("Config")()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    engine = ctx.instrument(api("Engine")(cfg))
    data = {"answer": 42}
    store = api("Store")(engine, data=data)
    ctx.stores.append(store)  # closed with the run
    ctx.track(store, "Store(data)")
    ctx.record(store.data()["answer"])
    store.data()["answer"] = 99
    ctx.record(store.data()["answer"])
    ctx.record(store.engine is engine)
    store.set_fuel(10_000)
    store.set_epoch_deadline(1_000)
    ctx.record(store.get_fuel())
    builder = api("StoreLimitsBuilder")()
    builder.memory_size(4 * 65536)
    builder.instances(4)
    store.limiter(builder.build())
    ctx.record(type(store.get_limiter()).__name__)
    limiter = OnlyTwoPages()
    store.limiter(limiter)
    tick = api("Func")(store, api("FuncType")([], []), engine.increment_epoch)
    inst = api("Instance")(store, api("Module")(engine, WAT), [tick])
    ctx.track(inst, "Instance")
    ex = inst.exports(store)
    ctx.record(ex["grow"](store, 1))
    ctx.record(ex["grow"](store, 1))  # refused by the limiter: -1
    ctx.record(limiter.refused)
    ctx.record(ex["tab"].grow(store, 3, None))
    store.set_epoch_deadline(1)
    try:
        ex["spin"](store)
    except api("Trap") as trap:
        ctx.record(trap.trap_code)
    ctx.record(store.get_fuel() < 10_000)
    store.gc()
