"""Module reflection under injection (Wasmtime's module_read.rs: module_imports,
module_exports; module_name, module_get_export and module_engine have no wasmrt
counterpart): every import and export with its module, name and type, read both from
a module built from text and from Module.validate'd bytes."""

WAT = """
(module
  (import "env" "f" (func (param i32) (result i64)))
  (import "env" "m" (memory 1 2))
  (import "env" "t" (table 1 funcref))
  (import "env" "g" (global (mut f32)))
  (func (export "f") (param i32) (result i64) (call 0 (local.get 0)))
  (export "m2" (memory 0))
  (table (export "t2") 2 externref)
  (global (export "g2") i32 (i32.const 3)))
"""


def describe(ty):
    name = type(ty).__name__
    if name == "FuncType":
        return f"func {[str(p) for p in ty.params]} -> {[str(r) for r in ty.results]}"
    if name == "MemoryType":
        return f"memory {ty.limits.min}..{ty.limits.max}"
    if name == "TableType":
        return f"table {ty.element} {ty.limits.min}"
    return f"global {ty.content} mutable={ty.mutable}"


def scenario(ctx):
    api = ctx.api
    engine = ctx.engine()
    Module = api("Module")
    module = Module(engine, WAT)
    for imp in module.imports:
        ctx.record(f"import {imp.module}.{imp.name}: {describe(imp.type)}")
    for exp in module.exports:
        ctx.record(f"export {exp.name}: {describe(exp.type)}")
    binary = api("wat2wasm")(WAT)
    Module.validate(engine, binary)
    again = Module(engine, binary)
    ctx.record(len(again.imports) + len(again.exports))
