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
- One release path per instance, ``deallocate_module`` (Wasmtime's
  ``deallocate_module``): every memory goes back through the allocator and
  has its bytes dropped (``LinearMemory.release``), then every table, then
  the allocator's instance count; at most once per instance
  (``ModuleInstance.released``). The instantiation guard, ``release`` and
  ``StoreCore.close`` all use it.
- DeallocateOnDrop: if anything raises after the counts were bumped,
  ``deallocate_module`` releases what was acquired so far, the store's counts
  are restored, and the original exception is re-raised unchanged.
- ``elems[i]`` is a list of references (``()`` once dropped); ``datas[i]`` is
  ``bytes`` (``b""`` once dropped).
- Everything that depends only on the module is computed once per compiled
  module (``InstancePlan``, cached on it): interned types, constant global
  values and segment offsets, element segments that are plain ``ref.func``/
  ``ref.null`` lists, data bytes, the export table. Per instance only the
  instance's own objects are built.
- Active element segments whose items are all ``ref.func``/``ref.null`` and
  whose table the instance defines write the plan's shared ``LazyFuncRef``
  placeholders (one per function index per module) and set the table's
  ``lazy_owner``; the function objects are built when a reader resolves them
  (``wasmrt.vm.table``). Segments into imported tables write real objects, so
  a table only ever holds placeholders of the instance that defined it.
- The compiled code is bound lazily (``bind_code``): instantiation records
  the variant's factory at the spec's binding point and the closures are
  created on the first read of any function's ``call``. The factory only
  reads objects fixed by then (memories, tables, globals, functions, types),
  so binding later is unobservable; the FUNC allocation asked at
  instantiation covers the closures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, HostAlloc, try_alloc
from wasmrt.errors import LinkError, WasmtimeError
from wasmrt.observe import created
from wasmrt.trap import Trap, TrapCode
from wasmrt.vm.allocator.base import InstanceAllocator
from wasmrt.vm.func import FuncInstance, WasmFunction, intern_functype
from wasmrt.vm.global_ import GlobalInstance
from wasmrt.vm.memory import PAGE_SIZE, LinearMemory
from wasmrt.vm.table import LazyFuncRef, TableInstance
from wasmrt.vm.values import f32_from_bits, f64_from_bits

__all__ = ["InstancePlan", "ModuleInstance", "deallocate_module", "instantiate", "instance_plan"]

#: Bytes charged for an instance record.
INSTANCE_SIZE = 256
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


_new_wasm_function = WasmFunction.__new__


class FuncSpace(list):  # type: ignore[type-arg]
    """An instance's function index space: imports, then defined functions built lazily.

    A defined function's ``WasmFunction`` is created the first time its
    index is read (``funcs[k]``, ``funcs[a:b]``, iteration), so that
    instantiating a module with many functions builds only those that are
    exported, referenced by a segment/global/``ref.func``, or called. Until
    then the underlying list holds ``None`` at that index. Once built, an
    object is kept: every read returns the same object.
    """

    __slots__ = ("inst",)

    inst: ModuleInstance

    def __getitem__(self, k: Any) -> Any:
        f = list.__getitem__(self, k)
        if f is None:
            return self.inst.build_func(k if k >= 0 else k + len(self))
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        return f

    def __iter__(self) -> Any:
        for k in range(len(self)):
            yield self[k]

    def built(self, indices: Sequence[int]) -> list[Any]:
        """The whole index space as a plain list, every function of ``indices`` built."""
        get = list.__getitem__
        put = list.__setitem__
        inst = self.inst
        n_imp = inst.n_imported_funcs
        types = inst.func_types
        code = inst.code
        for k in indices:
            if get(self, k) is None:
                # ``ModuleInstance.build_func``, inlined for bulk use.
                f = _new_wasm_function(WasmFunction)
                f.instance = inst
                f.index = k
                f.type = types[k - n_imp]
                if code is not None:
                    f.call = code[k - n_imp]
                put(self, k, f)
        return get(self, slice(None))  # type: ignore[no-any-return]


class ModuleInstance:
    __slots__ = (
        "__weakref__",
        "code",
        "compiled",
        "datas",
        "_exports",
        "elems",
        "factory",
        "func_types",
        "funcs",
        "globals",
        "mem_slots",
        "mems",
        "module",
        "n_imported_funcs",
        "plan",
        "released",
        "store",
        "table_slots",
        "tables",
        "types",
    )

    def __init__(self, store: Any, compiled: Any, plan: InstancePlan | None = None) -> None:
        if plan is None:
            plan = instance_plan(compiled)
        self.store = store
        self.compiled = compiled
        self.module: ir.Module = compiled.module
        self.types: Sequence[ir.FuncType] = plan.types
        self.func_types: tuple[ir.FuncType, ...] = plan.func_types
        self.funcs: FuncSpace = FuncSpace()
        self.funcs.inst = self
        #: The defined functions' code once bound (``bind_code``), else None.
        self.code: Sequence[Callable[..., Any]] | None = None
        self.tables: list[TableInstance] = []
        self.mems: list[LinearMemory] = []
        self.globals: list[GlobalInstance] = []
        self.elems: list[Any] = []
        self.datas: list[bytes] = []
        #: Built on first read (``exports``) from the plan's export table.
        self._exports: dict[str, Any] | None = None
        self.plan = plan
        self.mem_slots: list[tuple[int, LinearMemory]] = []
        self.table_slots: list[tuple[int, TableInstance]] = []
        self.released = False
        self.n_imported_funcs = 0
        #: The variant factory still to run (``bind_code``), or None.
        self.factory: Callable[[Any, Any], Sequence[Callable[..., Any]]] | None = None
        created(self)

    def __repr__(self) -> str:
        return f"ModuleInstance(funcs={len(self.funcs)}, exports={list(self.exports)})"

    @property
    def exports(self) -> dict[str, Any]:
        """``name -> extern`` in export order; built on first read.

        Reading it later than instantiation is unobservable: the index spaces
        it reads are fixed once instantiation has created them.
        """
        exports = self._exports
        if exports is None:
            spaces: dict[str, Sequence[Any]] = {
                "func": self.funcs,
                "table": self.tables,
                "memory": self.mems,
                "global": self.globals,
            }
            exports = {name: spaces[kind][index] for name, kind, index in self.plan.exports}
            self._exports = exports
        return exports

    def bind_code(self) -> None:
        """Create this instance's closures; install them on the function objects built so far.

        A no-op once bound, and before instantiation reached its binding point
        (the caller then finds ``call`` still unset). Functions built later get
        their ``call`` from ``code`` when they are built.
        """
        factory = self.factory
        if factory is None:
            return
        closures = factory(self, self.store)
        self.code = closures
        self.factory = None
        funcs = self.funcs
        get = list.__getitem__
        n_imp = self.n_imported_funcs
        for k in range(n_imp, len(funcs)):
            f = get(funcs, k)
            if f is not None:
                f.call = closures[k - n_imp]

    def build_func(self, k: int) -> WasmFunction:
        """The object of defined function ``k`` (function index space), built on first use."""
        f = _new_wasm_function(WasmFunction)
        f.instance = self
        f.index = k
        f.type = self.func_types[k - self.n_imported_funcs]
        code = self.code
        if code is not None:
            f.call = code[k - self.n_imported_funcs]
        list.__setitem__(self.funcs, k, f)
        return f

    def release(self, allocator: InstanceAllocator) -> None:
        """Give everything this instance holds back to ``allocator`` (``deallocate_module``)."""
        deallocate_module(allocator, self)


def deallocate_module(allocator: InstanceAllocator, inst: ModuleInstance | None) -> None:
    """Release an instance's memories, tables and instance count, exactly once.

    ``inst`` is ``None`` when instantiation failed after counting the instance
    but before its record existed: only the count goes back then.
    """
    if inst is not None:
        if inst.released:
            return
        inst.released = True
        mems, inst.mem_slots = inst.mem_slots, []
        tabs, inst.table_slots = inst.table_slots, []
        for slot, mem in reversed(mems):
            allocator.deallocate_memory(slot, mem)
            mem.release()
        for slot, tab in reversed(tabs):
            allocator.deallocate_table(slot, tab)
    allocator.decrement_core_instance_count()


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


_DYNAMIC: Any = object()  # a constant expression that needs the instance (global.get, ref.func)


def _static_value(expr: ir.Expr | None) -> Any:
    """The value of a context-free constant expression, else ``_DYNAMIC``."""
    if expr is None:
        return _DYNAMIC
    for ins in expr:
        if ins.op in ("global.get", "ref.func"):
            return _DYNAMIC
    try:
        return eval_const(expr, None)  # type: ignore[arg-type]
    except WasmtimeError:
        return _DYNAMIC  # reported where the spec reports it: at instantiation


def _static_refs(init: list[ir.Expr]) -> list[int | None] | None:
    """Function indices (``None`` for null) of ``ref.func``/``ref.null`` items, else ``None``."""
    out: list[int | None] = []
    for expr in init:
        body = [ins for ins in expr if ins.op != "end"]
        if len(body) != 1:
            return None
        op = body[0].op
        if op == "ref.func":
            out.append(body[0].imm[0])
        elif op == "ref.null":
            out.append(None)
        else:
            return None
    return out


class _ElemPlan:
    __slots__ = (
        "count",
        "func_indices",
        "getter",
        "init",
        "lazy_items",
        "mode",
        "offset",
        "offset_expr",
        "refs",
        "table",
    )

    def __init__(self, e: ir.Elem) -> None:
        self.mode = e.mode
        self.table = e.table
        self.init = e.init
        self.count = len(e.init)
        self.offset_expr = e.offset
        self.offset = _static_value(e.offset) if e.mode == "active" else _DYNAMIC
        self.refs = _static_refs(e.init)
        refs = self.refs
        self.getter: Callable[[Sequence[Any]], Any] | None = None
        #: Placeholders an active segment writes into a defined table (``InstancePlan``).
        self.lazy_items: tuple[LazyFuncRef | None, ...] | None = None
        #: The distinct function indices the getter reads (built first: ``FuncSpace.built``).
        self.func_indices: tuple[int, ...] = ()
        if refs is not None and len(refs) >= 2 and None not in refs:
            self.getter = itemgetter(*refs)
            self.func_indices = tuple(sorted({k for k in refs if k is not None}))


class _DataPlan:
    __slots__ = ("bytes", "memory", "mode", "offset", "offset_expr")

    def __init__(self, d: ir.Data) -> None:
        self.mode = d.mode
        self.memory = d.memory
        self.bytes = bytes(d.init)
        self.offset_expr = d.offset
        self.offset = _static_value(d.offset) if d.mode == "active" else _DYNAMIC


class InstancePlan:
    """What instantiating a module needs that depends only on the module (built once)."""

    __slots__ = (
        "datas",
        "elems",
        "exports",
        "func_types",
        "globals",
        "import_kinds",
        "types",
        "unbuilt",
    )

    def __init__(self, m: ir.Module) -> None:
        self.types = tuple(intern_functype(t) for t in m.types)
        self.func_types = tuple(self.types[f.type_idx] for f in m.funcs)
        #: What ``FuncSpace`` holds for the defined functions before they are built.
        self.unbuilt = (None,) * len(m.funcs)
        self.import_kinds = tuple(imp.kind for imp in m.imports)
        self.globals = tuple((g.type, _static_value(g.init), g.init) for g in m.globals)
        self.elems = tuple(_ElemPlan(e) for e in m.elems)
        lazy: dict[int, LazyFuncRef] = {}
        for ep in self.elems:
            if ep.mode == "active" and ep.refs is not None:
                items: list[LazyFuncRef | None] = []
                for k in ep.refs:
                    if k is None:
                        items.append(None)
                    else:
                        ref = lazy.get(k)
                        if ref is None:
                            ref = lazy[k] = LazyFuncRef(k)
                        items.append(ref)
                ep.lazy_items = tuple(items)
        self.datas = tuple(_DataPlan(d) for d in m.datas)
        self.exports = tuple((ex.name, ex.kind, ex.index) for ex in m.exports)


def instance_plan(compiled: Any) -> InstancePlan:
    """The ``InstancePlan`` of ``compiled`` (cached on it when it accepts attributes)."""
    plan: InstancePlan | None = getattr(compiled, "_vm_instance_plan", None)
    if plan is None:
        plan = InstancePlan(compiled.module)
        try:
            compiled._vm_instance_plan = plan
        except AttributeError:
            pass
    return plan


def instantiate(store: Any, compiled: Any, imports: list[Any] | tuple[Any, ...]) -> ModuleInstance:
    m: ir.Module = compiled.module
    if len(imports) != len(m.imports):
        raise LinkError(f"expected {len(m.imports)} imports, found {len(imports)}")
    for imp, ext in zip(m.imports, imports, strict=True):
        check_import(m, imp, ext)
    plan = instance_plan(compiled)
    variant = compiled.variant(store.consume_fuel, store.epoch_interruption)
    allocator = store.allocator
    module_key = getattr(compiled, "module_key", compiled)
    n_mems = len(m.mems)
    n_tables = len(m.tables)

    store.bump_counts(n_mems, n_tables)
    try:
        allocator.increment_core_instance_count()
    except BaseException:
        store.unbump_counts(n_mems, n_tables)
        raise
    inst: ModuleInstance | None = None
    try:
        try_alloc(INSTANCE_SIZE, AllocKind.INSTANCE)
        inst = ModuleInstance(store, compiled, plan)
        funcs = inst.funcs
        # Imports.
        for kind, ext in zip(plan.import_kinds, imports, strict=True):
            if kind == "func":
                funcs.append(ext)
            elif kind == "table":
                inst.tables.append(ext)
            elif kind == "memory":
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
        n_imp = len(funcs)
        inst.n_imported_funcs = n_imp
        if plan.func_types:
            # Covers the function objects (built on first use, ``FuncSpace``)
            # and the closures ``bind_code`` creates.
            try_alloc(len(plan.func_types) * SLOT_SIZE * 4, AllocKind.FUNC)
            funcs.extend(plan.unbuilt)
        # Globals.
        for gty, value, init in plan.globals:
            try_alloc(SLOT_SIZE * 2, AllocKind.GLOBAL)
            if value is _DYNAMIC:
                value = eval_const(init, inst)
            inst.globals.append(GlobalInstance(gty, value))
        # Segment copies (placeholders for active segments into defined tables).
        n_imp_tables = len(inst.tables) - n_tables
        for e in plan.elems:
            try_alloc(e.count * SLOT_SIZE, AllocKind.SEGMENT)
            with HostAlloc(e.count * SLOT_SIZE):
                if e.lazy_items is not None and e.table >= n_imp_tables:
                    inst.elems.append(e.lazy_items)
                elif e.getter is not None:
                    inst.elems.append(list(e.getter(funcs.built(e.func_indices))))
                elif e.refs is not None:
                    inst.elems.append([None if k is None else funcs[k] for k in e.refs])
                else:
                    inst.elems.append([eval_const(x, inst) for x in e.init])
        for d in plan.datas:
            try_alloc(len(d.bytes), AllocKind.SEGMENT)
            inst.datas.append(d.bytes)  # immutable: shared, never copied
        # Exports: built on first read (``ModuleInstance.exports``).
        # Bind the compiled code (lazily: see ``ModuleInstance.bind_code``).
        inst.factory = variant.factory
        if m.start is not None and m.start >= variant.n_imported:
            # Compiled before any segment is applied: failing to compile it must leave
            # imported tables and memories untouched, as Wasmtime's ahead-of-time
            # compile does (only the start function's own execution may leave effects).
            variant.code(m.start - variant.n_imported)
        # Active element segments, then data segments.
        for i, ep in enumerate(plan.elems):
            if ep.mode == "active":
                off = ep.offset
                if off is _DYNAMIC:
                    assert ep.offset_expr is not None
                    off = eval_const(ep.offset_expr, inst)
                table = inst.tables[ep.table]
                tab = table.elements
                items = inst.elems[i]
                if off + len(items) > len(tab):
                    raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
                tab[off : off + len(items)] = items
                if items is ep.lazy_items:
                    table.lazy_owner = inst
                inst.elems[i] = ()
            elif ep.mode == "declarative":
                inst.elems[i] = ()
        for i, dp in enumerate(plan.datas):
            if dp.mode == "active":
                off = dp.offset
                if off is _DYNAMIC:
                    assert dp.offset_expr is not None
                    off = eval_const(dp.offset_expr, inst)
                mem = inst.mems[dp.memory]
                data = dp.bytes
                if off + len(data) > mem.size:
                    raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
                if data:
                    mem.data[off : off + len(data)] = data
                inst.datas[i] = b""
        if m.start is not None:
            # Called as this instance's own code calls it, so a host start function's
            # Caller sees this instance's exports.
            store.call(_Bound(funcs[m.start].bind_caller(inst)), [])
    except BaseException:
        # DeallocateOnDrop: release what was acquired, restore counts, re-raise unchanged.
        deallocate_module(allocator, inst)
        store.unbump_counts(n_mems, n_tables)
        raise
    store.instances.append(inst)
    return inst


__all__ += ["PAGE_SIZE", "check_import", "eval_const"]


class _Bound:
    """A callable in ``store.call``'s shape (``.call``), e.g. a function bound to its caller."""

    __slots__ = ("call",)

    def __init__(self, call: Any) -> None:
        self.call = call
