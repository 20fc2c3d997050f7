"""``Instance`` and ``InstanceExports``: an instantiated module and its exports.

Invariants:
- ``Instance(store, module, imports)`` takes imports positionally in
  ``module.imports`` order. Before the vm runs anything it checks, in
  wasmtime-py's order: every import is an extern (``TypeError``), the store
  and module are usable, the count matches ("expected N imports, found M"),
  every extern belongs to this store and has a matching type
  ("incompatible import type for `m::n`" with Wasmtime's cause text). All
  link failures are ``LinkError`` (a ``WasmtimeError``).
- Instantiation itself is the vm's ``instantiate``: resource counts, the
  allocator, segment initialisation and the start function. A trap there is
  a ``Trap``; everything else a ``WasmtimeError`` (or the original host
  exception / ``OutOfMemory``); on failure the vm has released everything.
- ``exports(store)`` is built once and cached: a ``Mapping`` in export
  order, with ``by_index`` a tuple. Int keys are accepted as a superset of
  wasmtime-py (its ``KeyError`` for ints is not relied upon).
- With an async limiter, ``Instance(...)`` raises ``WasmtimeError`` outside
  an ``*_async`` operation; ``Instance.new_async`` is the way in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from wasmrt import ir
from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import LinkError, WasmtimeError
from wasmrt.runtime import _core
from wasmrt.runtime.caller import set_extern_wrapper
from wasmrt.runtime.func import Func
from wasmrt.runtime.global_ import Global
from wasmrt.runtime.limits import require_sync, run_async
from wasmrt.runtime.memory import Memory
from wasmrt.runtime.module import Module, ModuleCore
from wasmrt.runtime.table import Table
from wasmrt.runtime.tag import Tag

__all__ = [
    "Instance",
    "InstanceExports",
    "check_import",
    "core_extern_of",
    "instantiate_core",
    "wrap_extern",
    "CROSS_ENGINE_INSTANTIATION",
    "CROSS_ENGINE_USAGE",
]

_NOT_EXTERN = "expected a Func, Global, Memory, SharedMemory, Tag, or Table"
_WRONG_STORE = "object used with the wrong store"

AsExtern = Func | Table | Memory | Global | Tag


#: wasmtime-py's errors for a module, store or linker of another ``Engine``.
CROSS_ENGINE_INSTANTIATION = "cross-`Engine` instantiation is not currently supported"
CROSS_ENGINE_USAGE = "cross-`Engine` usage is not supported"


def core_extern_of(item: Any) -> tuple[Any, Any]:
    """``(store_core, vm extern)`` of a public extern; ``TypeError`` for anything else."""
    if isinstance(item, Func):
        return item._store, item._func
    if isinstance(item, Memory):
        return item._store, item._memory
    if isinstance(item, Table):
        return item._store, item._table
    if isinstance(item, Global):
        return item._store, item._global
    if isinstance(item, Tag):
        return item._tag.store, item._tag
    raise TypeError(_NOT_EXTERN)


def wrap_extern(store_core: Any, item: Any) -> AsExtern:
    """The public handle for a vm extern of ``store_core``."""
    kind = _core.extern_kind(item)
    if kind == "func":
        return Func._from_core(store_core, item)
    if kind == "memory":
        return Memory._from_core(store_core, item)
    if kind == "table":
        return Table._from_core(store_core, item)
    if kind == "global":
        return Global._from_core(store_core, item)
    raise WasmtimeError("unknown extern")


set_extern_wrapper(wrap_extern)


# Import type matching (Wasmtime's wording) -----------------------------------


def _render_functype(ty: ir.FuncType) -> str:
    out = "(func"
    if ty.params:
        out += " (param " + " ".join(ty.params) + ")"
    if ty.results:
        out += " (result " + " ".join(ty.results) + ")"
    return out + ")"


def _render_limits(lo: int, hi: int | None) -> str:
    return f"(min: {lo}, max: {'none' if hi is None else hi})"


def _limits_ok(actual_min: int, actual_max: int | None, want: ir.Limits) -> bool:
    if actual_min < want.min:
        return False
    if want.max is None:
        return True
    return actual_max is not None and actual_max <= want.max


def _mismatch(imp: ir.Import, expected: Any, item: Any) -> str | None:
    """Wasmtime's reason why ``item`` cannot satisfy ``imp``, or ``None`` if it can."""
    actual = "tag" if isinstance(item, Tag) else _core.extern_kind(item)
    if actual != imp.kind:
        return f"expected {imp.kind}, but found {actual}"
    if imp.kind == "func":
        have = _core.func_type(item)
        if have != expected:
            return (
                f"types incompatible: expected type `{_render_functype(expected)}`, "
                f"found type `{_render_functype(have)}`"
            )
        return None
    if imp.kind == "global":
        gty = _core.global_type(item)
        if gty.valtype != expected.valtype:
            return (
                f"global types incompatible: expected global of type `{expected.valtype}`, "
                f"found global of type `{gty.valtype}`"
            )
        if gty.mutable != expected.mutable:
            want = "mutable" if expected.mutable else "immutable"
            found = "mutable" if gty.mutable else "immutable"
            return f"global types incompatible: expected {want} global, found {found} global"
        return None
    if imp.kind == "memory":
        mty = _core.memory_type(item).ir
        cur = _core.memory_pages(item)
        if not _limits_ok(cur, mty.limits.max, expected.limits):
            return (
                "memory types incompatible: expected memory limits "
                f"{_render_limits(expected.limits.min, expected.limits.max)} doesn't match "
                f"provided memory limits {_render_limits(cur, mty.limits.max)}"
            )
        return None
    tty = _core.table_type(item)
    if tty.elem != expected.elem:
        return (
            f"table types incompatible: expected table of type `{expected.elem}`, "
            f"found table of type `{tty.elem}`"
        )
    cur = len(_core.table_elements(item))
    if not _limits_ok(cur, tty.limits.max, expected.limits):
        return (
            "table types incompatible: expected table limits "
            f"{_render_limits(expected.limits.min, expected.limits.max)} doesn't match "
            f"provided table limits {_render_limits(cur, tty.limits.max)}"
        )
    return None


def check_import(m: ir.Module, imp: ir.Import, item: Any) -> None:
    """Raise ``LinkError`` unless the vm extern ``item`` satisfies ``imp``."""
    expected = m.types[imp.desc] if imp.kind == "func" else imp.desc  # type: ignore[index]
    reason = _mismatch(imp, expected, item)
    if reason is not None:
        raise LinkError(
            f"incompatible import type for `{imp.module}::{imp.name}`\n\nCaused by:\n    {reason}\n"
        )


def instantiate_core(store_core: Any, module: ModuleCore, imports: Sequence[Any]) -> Any:
    """Check ``imports`` (vm externs of ``store_core``) and instantiate ``module``."""
    if module.engine is not store_core.engine:
        raise WasmtimeError(CROSS_ENGINE_INSTANTIATION)
    m = module.ir
    if len(imports) != len(m.imports):
        raise LinkError(f"expected {len(m.imports)} imports, found {len(imports)}")
    for imp, item in zip(m.imports, imports, strict=True):
        check_import(m, imp, item)
    try_alloc(SLOT_SIZE * (len(imports) + 1), AllocKind.INSTANCE)
    return _core.instantiate(store_core, module, list(imports))


class Instance:
    """An instantiated module: ``Instance(store, module, imports)``."""

    __slots__ = ("_exports", "_instance", "_store")

    def __init__(self, store: Any, module: Module, imports: Sequence[AsExtern]) -> None:
        externs = [core_extern_of(item) for item in imports]
        core = store._context()
        mcore = module.ptr()
        for owner, _ in externs:
            if owner is not core:
                raise WasmtimeError(_WRONG_STORE)
        require_sync(core, "Instance.new")
        self._store = core
        self._exports: InstanceExports | None = None
        self._instance = instantiate_core(core, mcore, [ext for _, ext in externs])

    @classmethod
    async def new_async(cls, store: Any, module: Module, imports: Sequence[AsExtern]) -> Instance:
        """``Instance(store, module, imports)`` for a store with a ``ResourceLimiterAsync``."""
        core = store._context()
        return await run_async(core, lambda: cls(store, module, imports), worker=True)

    @classmethod
    def _from_core(cls, store_core: Any, instance: Any) -> Instance:
        out: Instance = cls.__new__(cls)
        out._store = store_core
        out._exports = None
        out._instance = instance
        return out

    def exports(self, store: Any) -> InstanceExports:
        """The instance's exports (built on the first call, then cached)."""
        if store._context() is not self._store:
            raise WasmtimeError(_WRONG_STORE)
        if self._exports is None:
            self._exports = InstanceExports(self._store, self._instance)
        return self._exports


class InstanceExports(Mapping[str, AsExtern]):
    """The exports of an instance, by name (in export order) and ``by_index``."""

    def __init__(self, store_core: Any, instance: Any) -> None:
        items = list(_core.instance_exports(instance).items())
        try_alloc(SLOT_SIZE * 4 * (len(items) + 1), AllocKind.INSTANCE)
        self._by_name: dict[str, AsExtern] = {}
        seq = []
        for name, item in items:
            ext = wrap_extern(store_core, item)
            self._by_name[name] = ext
            seq.append(ext)
        self._by_index: tuple[AsExtern, ...] = tuple(seq)

    @property
    def by_index(self) -> Sequence[AsExtern]:
        return self._by_index

    def __getitem__(self, key: str | int) -> AsExtern:
        if isinstance(key, int) and not isinstance(key, bool):
            if 0 <= key < len(self._by_index):
                return self._by_index[key]
            raise KeyError(key)
        return self._by_name[key]  # type: ignore[index]

    def __len__(self) -> int:
        return len(self._by_index)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)
