"""``Linker``: named definitions used to resolve a module's imports.

Invariants:
- Definitions live in a ``TryDict`` (``AllocKind.LINKER``) keyed by
  ``(module, name)``; each new definition asks ``try_alloc`` first, so an
  ``OutOfMemory`` leaves the linker exactly as it was.
- A definition is either *store-bound* (an extern of one store, from
  ``define``/``define_instance``/``define_module``) or *store-independent*
  (a host function from ``define_func`` or an unknown-import stub), which is
  materialised as a fresh host function in whichever store instantiates.
- While ``allow_shadowing`` is False (the default) a second definition of
  the same name raises "import of `m::n` defined twice"; when True the last
  definition wins.
- ``instantiate`` first resolves every import by name ("unknown import:
  `m::n` has not been defined"), then checks types and instantiates exactly
  like ``Instance(...)``; ``instantiate_async`` does the same for a store
  with an async limiter (the sync one raises ``WasmtimeError`` there).
- ``define_unknown_imports_as_default_values`` stubs every kind of import:
  functions (store-independent) return zeros/nulls; tables, memories and
  globals are created in the given store with their imported type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmrt import ir
from wasmrt.alloc import AllocKind, TryDict, try_alloc
from wasmrt.errors import LinkError, WasmtimeError
from wasmrt.runtime import _core
from wasmrt.runtime.engine import Engine
from wasmrt.runtime.func import Func, host_callable
from wasmrt.runtime.instance import (
    CROSS_ENGINE_INSTANTIATION,
    CROSS_ENGINE_USAGE,
    AsExtern,
    Instance,
    core_extern_of,
    instantiate_core,
    wrap_extern,
)
from wasmrt.runtime.instance_pre import InstancePre
from wasmrt.runtime.limits import require_sync, run_async
from wasmrt.runtime.module import Module, ModuleCore
from wasmrt.runtime.types import FuncType, MemoryTypeInfo
from wasmrt.runtime.wasi_hook import provider as wasi_provider

__all__ = ["Linker"]

_DEF_COST = 96
_WRONG_STORE = "object used with the wrong store"
_ZERO = {"i32": 0, "i64": 0, "f32": 0.0, "f64": 0.0, "v128": 0, "funcref": None, "externref": None}


class _Def:
    """One linker definition: a store-bound extern or a store-independent host function."""

    __slots__ = ("access_caller", "callable", "extern", "functype", "store")

    def __init__(
        self,
        *,
        store: Any = None,
        extern: Any = None,
        functype: ir.FuncType | None = None,
        callable: Callable[..., Any] | None = None,  # noqa: A002
        access_caller: bool = False,
    ) -> None:
        self.store = store
        self.extern = extern
        self.functype = functype
        self.callable = callable
        self.access_caller = access_caller

    def materialize(self, store_core: Any) -> Any:
        """The vm extern this definition provides in ``store_core``."""
        if self.functype is None:
            if self.store is not store_core:
                raise WasmtimeError(_WRONG_STORE)
            return self.extern
        assert self.callable is not None
        try_alloc(_DEF_COST, AllocKind.FUNC)
        fn = host_callable(store_core, self.functype, self.callable, self.access_caller)
        return _core.new_host_function(store_core, self.functype, fn)


def _check_str(value: Any) -> str:
    if not isinstance(value, str):
        raise AttributeError(f"'{type(value).__name__}' object has no attribute 'encode'")
    return value


def _import_key_error(module: str, name: str) -> LinkError:
    return LinkError(f"unknown import: `{module}::{name}` has not been defined")


class Linker:
    """Resolve imports by name: ``Linker(engine)``."""

    engine: Engine

    def __init__(self, engine: Engine) -> None:
        engine.ptr()
        try_alloc(_DEF_COST, AllocKind.LINKER)
        self._defs: TryDict[tuple[str, str], _Def] = TryDict(kind=AllocKind.LINKER)
        self._shadowing = False
        self.engine = engine

    def _context_of(self, store: Any) -> Any:
        """``store``'s core, which must belong to this linker's engine (as in Wasmtime)."""
        core = store._context()
        if core.engine is not self.engine.ptr():
            raise WasmtimeError(CROSS_ENGINE_USAGE)
        return core

    def _set_allow_shadowing(self, allow: bool) -> None:
        """Allow later definitions to replace earlier ones (write-only)."""
        self._shadowing = bool(allow)

    allow_shadowing = property(fset=_set_allow_shadowing)

    def _insert(self, module: str, name: str, definition: _Def) -> None:
        key = (module, name)
        if key in self._defs and not self._shadowing:
            raise LinkError(f"import of `{module}::{name}` defined twice")
        try_alloc(_DEF_COST, AllocKind.LINKER)
        self._defs[key] = definition

    # Definitions -------------------------------------------------------------

    def define(self, store: Any, module: str, name: str, item: AsExtern) -> None:
        owner, ext = core_extern_of(item)
        _check_str(module)
        _check_str(name)
        core = self._context_of(store)
        if owner is not core:
            raise WasmtimeError(_WRONG_STORE)
        self._insert(module, name, _Def(store=core, extern=ext))

    def define_func(
        self,
        module: str,
        name: str,
        ty: FuncType,
        func: Callable[..., Any],
        access_caller: bool = False,
    ) -> None:
        _check_str(module)
        _check_str(name)
        if not isinstance(ty, FuncType):
            raise TypeError("expected a FuncType")
        fty = ty.ptr()
        self._insert(
            module, name, _Def(functype=fty, callable=func, access_caller=bool(access_caller))
        )

    def define_wasi(self) -> None:
        """Define every ``wasi_snapshot_preview1`` function (all or none).

        They are store-independent: each call uses the WASI context of the
        calling store (``Store.set_wasi``).
        """
        wasi_provider().define(self)

    def define_funcs(
        self, module: str, funcs: list[tuple[str, FuncType, Callable[..., Any]]]
    ) -> None:
        """wasmrt addition: ``define_func(..., access_caller=True)`` for many, all or none."""
        _check_str(module)
        defs = []
        for name, ty, fn in funcs:
            _check_str(name)
            if not isinstance(ty, FuncType):
                raise TypeError("expected a FuncType")
            defs.append((name, _Def(functype=ty.ptr(), callable=fn, access_caller=True)))
        self._define_all(module, defs)

    def define_instance(self, store: Any, name: str, instance: Instance) -> None:
        if not isinstance(instance, Instance):
            raise TypeError("expected an `Instance`")
        _check_str(name)
        core = self._context_of(store)
        if instance._store is not core:
            raise WasmtimeError(_WRONG_STORE)
        items = list(_core.instance_exports(instance._instance).items())
        self._define_all(name, [(n, _Def(store=core, extern=e)) for n, e in items])

    def _define_all(self, module: str, defs: list[tuple[str, _Def]]) -> None:
        """Add several definitions, all or none (shadowing checked up front)."""
        if not self._shadowing:
            for n, _ in defs:
                if (module, n) in self._defs:
                    raise LinkError(f"import of `{module}::{n}` defined twice")
        self._defs.reserve(len(self._defs) + len(defs))
        try_alloc(_DEF_COST * len(defs), AllocKind.LINKER)
        for n, d in defs:
            self._defs[(module, n)] = d

    def define_module(self, store: Any, name: str, module: Module) -> None:
        """Define ``module`` under ``name`` following the WASI command/reactor rules.

        A *command* (it exports ``_start``) gets each exported function defined
        as a function that instantiates a fresh instance per call; a *reactor*
        is instantiated once now (calling ``_initialize`` if exported) and its
        exports are defined like ``define_instance``.
        """
        if not isinstance(module, Module):
            raise TypeError("expected a `Module`")
        _check_str(name)
        core = self._context_of(store)
        mcore = module.ptr()
        exports = mcore.ir.exports
        if any(e.name == "_start" and e.kind == "func" for e in exports):
            defs = []
            for e in exports:
                if e.kind != "func":
                    continue
                fty = mcore.ir.func_type(e.index)
                fn = host_callable(core, fty, self._command_export(core, mcore, e.name), False)
                defs.append(
                    (e.name, _Def(store=core, extern=_core.new_host_function(core, fty, fn)))
                )
            self._define_all(name, defs)
            return
        instance = self._instantiate_core(core, mcore)
        items = list(_core.instance_exports(instance).items())
        init = dict(items).get("_initialize")
        if init is not None and _core.extern_kind(init) == "func":
            _core.call(core, init, [])
        self._define_all(name, [(n, _Def(store=core, extern=e)) for n, e in items])

    def _command_export(
        self, store_core: Any, mcore: ModuleCore, export: str
    ) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            instance = self._instantiate_core(store_core, mcore)
            func = _core.instance_exports(instance)[export]
            out = Func._from_core(store_core, func)(_BorrowedStore(store_core), *args)
            return tuple(out) if isinstance(out, list) else out

        return run

    def define_unknown_imports_as_traps(self, module: Module) -> None:
        """Define every still-undefined function import as a function that fails when called."""
        if not isinstance(module, Module):
            raise TypeError("expected a `Module`")
        m = module.ptr().ir
        for imp in m.imports:
            if imp.kind != "func" or (imp.module, imp.name) in self._defs:
                continue
            assert isinstance(imp.desc, int)
            message = f"unknown import: `{imp.module}::{imp.name}` has not been defined"

            def trap(*_args: Any, _message: str = message) -> Any:
                raise WasmtimeError(_message)

            self._insert(imp.module, imp.name, _Def(functype=m.types[imp.desc], callable=trap))

    def define_unknown_imports_as_default_values(self, store: Any, module: Module) -> None:
        """Define every still-undefined import of ``module`` with a default value in ``store``.

        As Wasmtime does: a function returning zeros/nulls, a table of the
        imported type filled with null, a memory of the imported type, a
        global holding its type's zero (or null). All stubs are built before
        any is defined, so a failure (limiter, ``OutOfMemory``) defines none.
        """
        if not isinstance(module, Module):
            raise TypeError("expected a `Module`")
        core = self._context_of(store)
        m = module.ptr().ir
        stubs: list[tuple[str, str, _Def]] = []
        seen: set[tuple[str, str]] = set()
        for imp in m.imports:
            key = (imp.module, imp.name)
            if key in self._defs or key in seen:
                continue
            seen.add(key)
            stubs.append((imp.module, imp.name, self._default_stub(core, m, imp)))
        try_alloc(_DEF_COST * len(stubs), AllocKind.LINKER)
        self._defs.reserve(len(self._defs) + len(stubs))
        for mod, name, d in stubs:
            self._defs[(mod, name)] = d

    @staticmethod
    def _default_stub(core: Any, m: ir.Module, imp: ir.Import) -> _Def:
        desc = imp.desc
        if imp.kind == "func":
            assert isinstance(desc, int)
            fty = m.types[desc]
            results = tuple(_ZERO[k] for k in fty.results)

            def default(*_args: Any, _results: tuple[Any, ...] = results) -> Any:
                if not _results:
                    return None
                return _results[0] if len(_results) == 1 else list(_results)

            return _Def(functype=fty, callable=default)
        if imp.kind == "table":
            assert isinstance(desc, ir.TableType)
            return _Def(store=core, extern=_core.new_table(core, desc, None))
        if imp.kind == "memory":
            assert isinstance(desc, ir.MemoryType)
            return _Def(store=core, extern=_core.new_memory(core, MemoryTypeInfo(desc)))
        if imp.kind == "global":
            assert isinstance(desc, ir.GlobalType)
            try_alloc(_DEF_COST, AllocKind.GLOBAL)
            return _Def(store=core, extern=_core.new_global(core, desc, _ZERO[desc.valtype]))
        raise WasmtimeError(f"cannot define a default value for a `{imp.kind}` import")

    # Lookup and instantiation ------------------------------------------------

    def _resolve(self, m: ir.Module) -> list[_Def]:
        defs = []
        for imp in m.imports:
            d = self._defs.get((imp.module, imp.name))
            if d is None:
                raise _import_key_error(imp.module, imp.name)
            defs.append(d)
        return defs

    def _instantiate_core(self, store_core: Any, mcore: ModuleCore) -> Any:
        defs = self._resolve(mcore.ir)
        return instantiate_defs(store_core, mcore, defs)

    def instantiate(self, store: Any, module: Module) -> Instance:
        core = self._context_of(store)
        mcore = module.ptr()
        require_sync(core, "Linker.instantiate")
        return Instance._from_core(core, self._instantiate_core(core, mcore))

    async def instantiate_async(self, store: Any, module: Module) -> Instance:
        """``instantiate`` for a store with a ``ResourceLimiterAsync`` (see ``Func.call_async``)."""
        core = self._context_of(store)
        mcore = module.ptr()
        instance = await run_async(core, lambda: self._instantiate_core(core, mcore), worker=True)
        return Instance._from_core(core, instance)

    def instantiate_pre(self, module: Module) -> InstancePre:
        if not isinstance(module, Module):
            raise TypeError("expected a `Module`")
        mcore = module.ptr()
        if mcore.engine is not self.engine.ptr():
            raise WasmtimeError(CROSS_ENGINE_INSTANTIATION)
        defs = self._resolve(mcore.ir)
        return InstancePre._new(module, defs, instantiate_defs)

    def get(self, store: Any, module: str, name: str) -> AsExtern:
        _check_str(module)
        _check_str(name)
        core = self._context_of(store)
        d = self._defs.get((module, name))
        if d is None:
            raise WasmtimeError("item not defined in linker")
        return wrap_extern(core, d.materialize(core))

    def get_default(self, store: Any, name: str) -> Func:
        """The module's default export (``""`` then ``"_start"``), or a no-op function."""
        _check_str(name)
        core = self._context_of(store)
        for field in ("", "_start"):
            d = self._defs.get((name, field))
            if d is not None:
                ext = d.materialize(core)
                if _core.extern_kind(ext) == "func":
                    return Func._from_core(core, ext)
        noop = ir.FuncType((), ())
        fn = host_callable(core, noop, lambda: None, False)
        return Func._from_core(core, _core.new_host_function(core, noop, fn))


class _BorrowedStore:
    """A store stand-in for calls the linker makes on a store core it holds."""

    __slots__ = ("_core",)

    def __init__(self, core: Any) -> None:
        self._core = core

    def _context(self) -> Any:
        return self._core


def instantiate_defs(store_core: Any, mcore: ModuleCore, defs: list[_Def]) -> Any:
    """Materialise resolved definitions in ``store_core`` and instantiate ``mcore``."""
    imports = [d.materialize(store_core) for d in defs]
    return instantiate_core(store_core, mcore, imports)
