"""``ModuleInstance`` and ``instantiate``: the spec's instantiation algorithm.

Invariants:
- ``instantiate`` follows the spec's order: match imports (``LinkError``),
  bump the store's counts (``ResourceLimitExceeded``) and the allocator's
  instance count, allocate defined memories then tables through
  ``store.allocator``, create globals, functions, element and data segment
  copies, bind the compiled code, run active element segments (then active
  data segments) in order, then the start function.
- Every allocation on the way asks ``try_alloc`` first (INSTANCE, FUNC,
  GLOBAL, SEGMENT; MEMORY/TABLE inside the vm constructors).
- DeallocateOnDrop: if anything raises after the counts were bumped, every
  memory/table acquired so far goes back through the allocator, the
  allocator's instance count and the store's counts are restored, and the
  original exception is re-raised unchanged.
- ``elems[i]`` is a list of references (``()`` once dropped); ``datas[i]`` is
  ``bytes`` (``b""`` once dropped).
"""

from __future__ import annotations

from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import LinkError, WasmtimeError
from wasmrt.trap import Trap, TrapCode
from wasmrt.vm.func import FuncInstance, WasmFunction, intern_functype
from wasmrt.vm.global_ import GlobalInstance
from wasmrt.vm.memory import PAGE_SIZE, LinearMemory
from wasmrt.vm.table import TableInstance
from wasmrt.vm.values import f32_from_bits, f64_from_bits

__all__ = ["ModuleInstance", "instantiate"]

#: Bytes charged for an instance record.
INSTANCE_SIZE = 256
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


class ModuleInstance:
    __slots__ = (
        "__weakref__",
        "compiled",
        "datas",
        "elems",
        "exports",
        "funcs",
        "globals",
        "mem_slots",
        "mems",
        "module",
        "released",
        "store",
        "table_slots",
        "tables",
        "types",
    )

    def __init__(self, store: Any, compiled: Any) -> None:
        self.store = store
        self.compiled = compiled
        self.module: ir.Module = compiled.module
        self.types = [intern_functype(t) for t in self.module.types]
        self.funcs: list[FuncInstance] = []
        self.tables: list[TableInstance] = []
        self.mems: list[LinearMemory] = []
        self.globals: list[GlobalInstance] = []
        self.elems: list[Any] = []
        self.datas: list[bytes] = []
        self.exports: dict[str, Any] = {}
        self.mem_slots: list[tuple[int, LinearMemory]] = []
        self.table_slots: list[tuple[int, TableInstance]] = []
        self.released = False

    def __repr__(self) -> str:
        return f"ModuleInstance(funcs={len(self.funcs)}, exports={list(self.exports)})"

    def release(self, allocator: Any) -> None:
        """Give memories and tables back to the allocator (once)."""
        if self.released:
            return
        self.released = True
        mems, self.mem_slots = self.mem_slots, []
        tabs, self.table_slots = self.table_slots, []
        for slot, mem in reversed(mems):
            allocator.deallocate_memory(slot, mem)
        for slot, tab in reversed(tabs):
            allocator.deallocate_table(slot, tab)


def _describe(ext: Any) -> str:
    if isinstance(ext, FuncInstance):
        return f"func {ext.type}"
    if isinstance(ext, TableInstance):
        return f"table {ext.ty}"
    if isinstance(ext, LinearMemory):
        return f"memory {ext.ty}"
    if isinstance(ext, GlobalInstance):
        return f"global {ext.ty}"
    return repr(ext)


def _limits_match(cur: int, cur_max: int | None, want: ir.Limits) -> bool:
    if cur < want.min:
        return False
    if want.max is not None:
        return cur_max is not None and cur_max <= want.max
    return True


def check_import(m: ir.Module, imp: ir.Import, ext: Any) -> None:
    """Raise ``LinkError`` unless ``ext`` matches the import's type."""
    ok = False
    if imp.kind == "func":
        assert isinstance(imp.desc, int)
        ok = isinstance(ext, FuncInstance) and ext.type == m.types[imp.desc]
    elif imp.kind == "table":
        d = imp.desc
        assert isinstance(d, ir.TableType)
        ok = (
            isinstance(ext, TableInstance)
            and ext.ty.elem == d.elem
            and _limits_match(len(ext.elements), ext.ty.limits.max, d.limits)
        )
    elif imp.kind == "memory":
        d = imp.desc
        assert isinstance(d, ir.MemoryType)
        ok = isinstance(ext, LinearMemory) and _limits_match(ext.pages, ext.ty.limits.max, d.limits)
    elif imp.kind == "global":
        ok = isinstance(ext, GlobalInstance) and ext.ty == imp.desc
    if not ok:
        raise LinkError(
            f"incompatible import type for `{imp.module}::{imp.name}`: "
            f"expected {imp.kind} {imp.desc}, found {_describe(ext)}"
        )


def eval_const(expr: ir.Expr, inst: ModuleInstance) -> Any:
    """Evaluate a constant expression (2.0 plus extended-const arithmetic)."""
    stack: list[Any] = []
    for ins in expr:
        op = ins.op
        if op == "end":
            break
        if op == "i32.const":
            stack.append(ins.imm[0] & M32)
        elif op == "i64.const":
            stack.append(ins.imm[0] & M64)
        elif op == "f32.const":
            stack.append(f32_from_bits(ins.imm[0]))
        elif op == "f64.const":
            stack.append(f64_from_bits(ins.imm[0]))
        elif op == "v128.const":
            stack.append(int.from_bytes(ins.imm[0], "little"))
        elif op == "ref.null":
            stack.append(None)
        elif op == "ref.func":
            stack.append(inst.funcs[ins.imm[0]])
        elif op == "global.get":
            stack.append(inst.globals[ins.imm[0]].value)
        elif op in ("i32.add", "i32.sub", "i32.mul", "i64.add", "i64.sub", "i64.mul"):
            b = stack.pop()
            a = stack.pop()
            mask = M32 if op[1] == "3" else M64
            r = a + b if op.endswith("add") else a - b if op.endswith("sub") else a * b
            stack.append(r & mask)
        else:
            raise WasmtimeError(f"unsupported constant expression instruction {op}")
    return stack[-1] if stack else None


def instantiate(store: Any, compiled: Any, imports: list[Any] | tuple[Any, ...]) -> ModuleInstance:
    m: ir.Module = compiled.module
    if len(imports) != len(m.imports):
        raise LinkError(f"expected {len(m.imports)} imports, found {len(imports)}")
    for imp, ext in zip(m.imports, imports, strict=True):
        check_import(m, imp, ext)
    variant = compiled.variant(store.consume_fuel, store.epoch_interruption)
    allocator = store.allocator
    module_key = getattr(compiled, "module_key", compiled)

    store.bump_counts(len(m.mems), len(m.tables))
    try:
        allocator.increment_core_instance_count()
    except BaseException:
        store.unbump_counts(len(m.mems), len(m.tables))
        raise
    inst: ModuleInstance | None = None
    try:
        try_alloc(INSTANCE_SIZE, AllocKind.INSTANCE)
        inst = ModuleInstance(store, compiled)
        # Imports.
        for imp, ext in zip(m.imports, imports, strict=True):
            if imp.kind == "func":
                inst.funcs.append(ext)
            elif imp.kind == "table":
                inst.tables.append(ext)
            elif imp.kind == "memory":
                inst.mems.append(ext)
            else:
                inst.globals.append(ext)
        # Defined memories, then tables, through the allocator.
        for i, mt in enumerate(m.mems):
            slot, mem = allocator.allocate_memory(store, mt, module_key, i)
            inst.mem_slots.append((slot, mem))
            inst.mems.append(mem)
        for i, tt in enumerate(m.tables):
            slot, tab = allocator.allocate_table(store, tt, module_key, i)
            inst.table_slots.append((slot, tab))
            inst.tables.append(tab)
        # Functions (objects first: ref.func in globals and segments needs them).
        n_imp = len(inst.funcs)
        if m.funcs:
            try_alloc(len(m.funcs) * SLOT_SIZE * 4, AllocKind.FUNC)
        for i, f in enumerate(m.funcs):
            inst.funcs.append(WasmFunction(inst, n_imp + i, m.types[f.type_idx]))
        # Globals.
        for g in m.globals:
            try_alloc(SLOT_SIZE * 2, AllocKind.GLOBAL)
            inst.globals.append(GlobalInstance(g.type, eval_const(g.init, inst)))
        # Segment copies.
        for e in m.elems:
            try_alloc(len(e.init) * SLOT_SIZE, AllocKind.SEGMENT)
            inst.elems.append([eval_const(x, inst) for x in e.init])
        for d in m.datas:
            try_alloc(len(d.init), AllocKind.SEGMENT)
            inst.datas.append(bytes(d.init))
        # Exports.
        for ex in m.exports:
            space: dict[str, list[Any]] = {
                "func": inst.funcs,
                "table": inst.tables,
                "memory": inst.mems,
                "global": inst.globals,
            }
            inst.exports[ex.name] = space[ex.kind][ex.index]
        # Bind the compiled code.
        closures = variant.factory(inst, store)
        for i, fn in enumerate(closures):
            inst.funcs[n_imp + i].call = fn
        # Active element segments, then data segments.
        for i, e in enumerate(m.elems):
            if e.mode == "active":
                assert e.offset is not None
                off = eval_const(e.offset, inst)
                tab = inst.tables[e.table].elements
                items = inst.elems[i]
                if off + len(items) > len(tab):
                    raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
                tab[off : off + len(items)] = items
                inst.elems[i] = ()
            elif e.mode == "declarative":
                inst.elems[i] = ()
        for i, d in enumerate(m.datas):
            if d.mode == "active":
                assert d.offset is not None
                off = eval_const(d.offset, inst)
                mem = inst.mems[d.memory]
                data = inst.datas[i]
                if off + len(data) > mem.size:
                    raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
                mem.data[off : off + len(data)] = data
                inst.datas[i] = b""
        if m.start is not None:
            store.call(inst.funcs[m.start], [])
    except BaseException:
        # DeallocateOnDrop: release what was acquired, restore counts, re-raise unchanged.
        if inst is not None:
            for slot, mem in reversed(inst.mem_slots):
                allocator.deallocate_memory(slot, mem)
            for slot, tab in reversed(inst.table_slots):
                allocator.deallocate_table(slot, tab)
            inst.mem_slots = []
            inst.table_slots = []
            inst.released = True
        allocator.decrement_core_instance_count()
        store.unbump_counts(len(m.mems), len(m.tables))
        raise
    store.instances.append(inst)
    return inst


__all__ += ["PAGE_SIZE", "check_import", "eval_const"]
