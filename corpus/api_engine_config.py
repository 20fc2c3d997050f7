"""Engine and Config under injection (Wasmtime's config.rs config_new, engine.rs
engine_new): a Config with many knobs set, an Engine built from it, epochs, and a
module compiled and run on it."""


def scenario(ctx):
    api = ctx.api
    cfg = ctx.config()  # the allocator the unit sweeps (on-demand or pooling)
    cfg.wasm_bulk_memory = True
    cfg.wasm_reference_types = True
    cfg.wasm_multi_value = True
    cfg.wasm_simd = True
    cfg.max_wasm_stack = 512 * 1024
    cfg.memory_reservation = 1 << 23
    cfg.memory_guard_size = 1 << 16
    cfg.memory_reservation_for_growth = 1 << 16
    cfg.cranelift_opt_level = "speed"
    cfg.cranelift_flag_enable("enable_verifier")
    cfg.cranelift_flag_set("opt_level", "speed")
    cfg.epoch_interruption = True
    engine = ctx.instrument(api("Engine")(cfg))
    engine.increment_epoch()
    ctx.record(engine.is_pulley())
    store = ctx.store(engine)
    store.set_epoch_deadline(5)
    module = api("Module")(engine, '(module (func (export "one") (result i32) (i32.const 1)))')
    inst = api("Instance")(store, module, [])
    ctx.track(inst, "Instance")
    ctx.record(inst.exports(store)["one"](store))
    metrics = engine.pooling_allocator_metrics()
    ctx.record(None if metrics is None else metrics.core_instances)
    other = api("Engine")()  # a default engine next to it
    ctx.engines.append(other)
    ctx.record(other.is_pulley())
