# oomfuzz: fuel=1000
"""Store APIs under injection (Wasmtime's store.rs): data, fuel, epoch deadline, limits.

Every API call is a step (``ctx.step``): in the retry-and-continue run the call that
hit the OutOfMemory is retried on the same store and engine."""


def scenario(ctx):
    step = ctx.step
    engine = step(ctx.engine)
    store = step(ctx.store, engine)
    step(store.set_fuel, 500)
    ctx.record(step(store.get_fuel))
    step(store.set_epoch_deadline, 3)
    step(lambda: store.set_limits(memory_size=1 << 20, instances=4), label="set_limits")
    other = step(lambda: ctx.api("Store")(engine, data={"k": 1}), label="Store(data)")
    ctx.stores.append(other)  # closed with the run
    ctx.track(other, "Store(data)")
    ctx.record(step(other.data))
