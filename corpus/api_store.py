# oomfuzz: fuel=1000
"""Store APIs under injection (Wasmtime's store.rs): data, fuel, epoch deadline, limits."""


def scenario(ctx):
    engine = ctx.engine()
    store = ctx.store(engine)
    store.set_fuel(500)
    ctx.record(store.get_fuel())
    store.set_epoch_deadline(3)
    store.set_limits(memory_size=1 << 20, instances=4)
    other = ctx.api("Store")(engine, data={"k": 1})
    ctx.stores.append(other)  # closed with the run
    ctx.track(other, "Store(data)")
    ctx.record(other.data())
