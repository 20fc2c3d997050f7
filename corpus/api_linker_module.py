"""Linker definitions by module and instance under injection (Wasmtime's linker.rs:
linker_instance, linker_get, linker_get_default, linker_module_async's sync form;
plus define_unknown_imports_as_default_values, which Wasmtime leaves untested).

A reactor (instantiated once, `_initialize` run) and a command (`_start`: a fresh
instance per call) are defined with `define_module`; an instance with
`define_instance`; every kind of still-undefined import (func, table, memory,
global) gets a default value; then the client is instantiated and its results read."""

REACTOR = """
(module
  (global $g (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $g (i32.const 40)))
  (func (export "get") (result i32) (global.get $g))
  (memory (export "m") 1))
"""

COMMAND = """
(module
  (global $calls (mut i32) (i32.const 0))
  (func (export "_start"))
  (func (export "count") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.get $calls)))
"""

PLAIN = '(module (func (export "") (result i32) (i32.const 7)) (table (export "t") 1 funcref))'

CLIENT = """
(module
  (import "reactor" "get" (func $get (result i32)))
  (import "command" "count" (func $count (result i32)))
  (import "plain" "" (func $plain (result i32)))
  (import "missing" "f" (func $f (param i32) (result i64)))
  (import "missing" "t" (table 2 funcref))
  (import "missing" "m" (memory 1))
  (import "missing" "g" (global i64))
  (func (export "run") (result i64)
    (i64.add
      (i64.add (i64.extend_i32_u (call $get)) (i64.extend_i32_u (call $count)))
      (i64.add (i64.extend_i32_u (call $plain))
        (i64.add (call $f (i32.const 3)) (global.get 0))))))
"""


def scenario(ctx):
    api = ctx.api
    engine = ctx.engine()
    store = ctx.store(engine)
    Module = api("Module")
    linker = api("Linker")(engine)
    linker.define_module(store, "reactor", Module(engine, REACTOR))
    linker.define_module(store, "command", Module(engine, COMMAND))
    plain = linker.instantiate(store, Module(engine, PLAIN))
    ctx.track(plain, "Instance(plain)")
    linker.define_instance(store, "plain", plain)
    ctx.record(linker.get_default(store, "plain")(store))
    ctx.record(linker.get_default(store, "nothing")(store))  # a no-op default
    ctx.record(linker.get(store, "reactor", "get")(store))
    ctx.record(linker.get(store, "plain", "t").size(store))
    client = Module(engine, CLIENT)
    linker.define_unknown_imports_as_default_values(store, client)
    ctx.record(linker.get(store, "missing", "g").value(store))
    ctx.record(linker.get(store, "missing", "t").size(store))
    inst = linker.instantiate(store, client)
    ctx.track(inst, "Instance(client)")
    run = inst.exports(store)["run"]
    ctx.record(run(store))
    ctx.record(run(store))  # the command's count restarts: a fresh instance per call
