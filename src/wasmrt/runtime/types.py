"""The public type objects: ValType, FuncType, GlobalType, Limits, TableType,
MemoryType, TagType, ImportType and ExportType (wasmtime-py's ``_types``).

Invariants:
- Each type object wraps an immutable ``wasmrt.ir`` value (``ValType`` wraps
  the valtype string); the vm never sees the public objects, only
  ``_ir_*`` conversions of them.
- Constructors validate exactly as wasmtime-py: wrong argument classes raise
  ``TypeError`` with its messages, impossible types raise ``WasmtimeError``
  with Wasmtime's messages, and nothing is stored before validation passed.
- Accessors return fresh objects (``FuncType.params`` is a new list each
  time), so callers cannot mutate a type through its accessors.
- Creating a function, global, table, memory or tag type asks ``try_alloc``
  first (Wasmtime's ``FuncType::try_new``); an ``OutOfMemory`` leaves nothing
  half-built.
- ``Limits`` are stored as Wasmtime's C API does: as u32 with ``None`` for
  "no maximum", so ``Limits(1, 0xffffffff)`` reads back as ``Limits(1, None)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wasmrt import ir
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.errors import WasmtimeError
from wasmrt.runtime._managed import Managed

__all__ = [
    "AsExternType",
    "ExportType",
    "FuncType",
    "GlobalType",
    "ImportType",
    "Limits",
    "MemoryType",
    "TableType",
    "TagType",
    "ValType",
]

#: Bytes charged for one type object (its header) plus one slot per value type.
_TYPE_HEADER = 48
_SLOT = 8

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1

_DISPLAY = {"externref": "anyref"}  # wasmtime-py's legacy rendering


class ValType(Managed[str]):
    """A value type; build one with ``ValType.i32()`` and friends."""

    def __init__(self) -> None:
        raise WasmtimeError("cannot construct directly")

    @classmethod
    def _from_kind(cls, kind: str) -> ValType:
        ty: ValType = cls.__new__(cls)
        ty._set_ptr(kind)
        return ty

    @classmethod
    def i32(cls) -> ValType:
        return cls._from_kind("i32")

    @classmethod
    def i64(cls) -> ValType:
        return cls._from_kind("i64")

    @classmethod
    def f32(cls) -> ValType:
        return cls._from_kind("f32")

    @classmethod
    def f64(cls) -> ValType:
        return cls._from_kind("f64")

    @classmethod
    def v128(cls) -> ValType:
        """The 128-bit vector type (wasmrt addition: wasmtime-py has no v128 type)."""
        return cls._from_kind("v128")

    @classmethod
    def externref(cls) -> ValType:
        return cls._from_kind("externref")

    @classmethod
    def funcref(cls) -> ValType:
        return cls._from_kind("funcref")

    @property
    def _kind(self) -> str:
        return self.ptr()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValType):
            return False
        return self.ptr() == other.ptr()

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        kind = self.ptr()
        return _DISPLAY.get(kind, kind)

    def __repr__(self) -> str:
        return str(self)


def _valtype_kind(ty: object, message: str) -> str:
    if not isinstance(ty, ValType):
        raise TypeError(message)
    return ty.ptr()


class FuncType(Managed[ir.FuncType]):
    """A function signature: ``FuncType(params, results)``."""

    def __init__(self, params: list[ValType], results: list[ValType]) -> None:
        p = tuple(_valtype_kind(t, "expected ValType") for t in params)
        r = tuple(_valtype_kind(t, "expected ValType") for t in results)
        try_alloc(_TYPE_HEADER + _SLOT * (len(p) + len(r)), AllocKind.OTHER)
        self._set_ptr(ir.FuncType(p, r))

    @classmethod
    def _from_ir(cls, ty: ir.FuncType) -> FuncType:
        out: FuncType = cls.__new__(cls)
        out._set_ptr(ty)
        return out

    @classmethod
    def _new_of(cls, ty: ir.FuncType) -> FuncType:
        """``FuncType(params, results)`` for the (already checked) kinds of ``ty``: the
        same allocation, without re-checking each ``ValType`` (``define_wasi`` makes
        46 per call)."""
        try_alloc(_TYPE_HEADER + _SLOT * (len(ty.params) + len(ty.results)), AllocKind.OTHER)
        out: FuncType = cls.__new__(cls)
        out._set_ptr(ty)
        return out

    @property
    def params(self) -> list[ValType]:
        return [ValType._from_kind(k) for k in self.ptr().params]

    @property
    def results(self) -> list[ValType]:
        return [ValType._from_kind(k) for k in self.ptr().results]

    def __repr__(self) -> str:
        ty = self.ptr()
        return f"FuncType({list(ty.params)!r} -> {list(ty.results)!r})"


class GlobalType(Managed[ir.GlobalType]):
    """The type of a global: ``GlobalType(valtype, mutable)``."""

    def __init__(self, valtype: ValType, mutable: bool) -> None:
        kind = _valtype_kind(valtype, "expected valtype")
        try_alloc(_TYPE_HEADER, AllocKind.OTHER)
        self._set_ptr(ir.GlobalType(kind, bool(mutable)))

    @classmethod
    def _from_ir(cls, ty: ir.GlobalType) -> GlobalType:
        out: GlobalType = cls.__new__(cls)
        out._set_ptr(ty)
        return out

    @property
    def content(self) -> ValType:
        return ValType._from_kind(self.ptr().valtype)

    @property
    def mutable(self) -> bool:
        return self.ptr().mutable


class Limits:
    """Size limits of a table (elements) or memory (pages); ``max=None`` is unbounded."""

    def __init__(self, min: int, max: int | None) -> None:  # noqa: A002 - wasmtime-py names
        self.min = min
        self.max = max

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Limits):
            return False
        return self.min == other.min and self.max == other.max

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Limits({self.min!r}, {self.max!r})"


def _u32_limits(limits: Limits) -> ir.Limits:
    """Store limits as Wasmtime's C API does: u32, with all-ones meaning "no max"."""
    lo = int(limits.min) & _U32
    hi = _U32 if limits.max is None else int(limits.max) & _U32
    return ir.Limits(lo, None if hi == _U32 else hi)


class TableType(Managed[ir.TableType]):
    """The type of a table: ``TableType(element_valtype, limits)``."""

    def __init__(self, valtype: ValType, limits: Limits) -> None:
        if not isinstance(limits, Limits):
            raise TypeError("expected Limits")
        kind = _valtype_kind(valtype, "expected valtype")
        if kind not in ir.REFTYPES:
            raise WasmtimeError("failed to allocate TableType")
        try_alloc(_TYPE_HEADER, AllocKind.OTHER)
        self._set_ptr(ir.TableType(kind, _u32_limits(limits)))

    @classmethod
    def _from_ir(cls, ty: ir.TableType) -> TableType:
        out: TableType = cls.__new__(cls)
        out._set_ptr(ty)
        return out

    @property
    def element(self) -> ValType:
        return ValType._from_kind(self.ptr().elem)

    @property
    def limits(self) -> Limits:
        lim = self.ptr().limits
        return Limits(lim.min, lim.max)


@dataclass(frozen=True, slots=True)
class MemoryTypeInfo:
    """What a ``MemoryType`` wraps: the IR type plus the post-2.0 attributes."""

    ir: ir.MemoryType
    is_64: bool = False
    shared: bool = False
    page_size_log2: int = 16

    @property
    def page_size(self) -> int:
        return 1 << self.page_size_log2


def _check_memory_type(min_: int, max_: int | None, is_64: bool, shared: bool, log2: int) -> None:
    """Wasmtime's ``MemoryTypeBuilder`` validation, in its order and words."""
    if max_ is not None and max_ < min_:
        raise WasmtimeError("maximum page size cannot be smaller than the minimum page size")
    if log2 not in (0, 16):
        raise WasmtimeError(
            f"page size must be 2**16 or 2**0, but was given 2**{log2}; note that future "
            "Wasm extensions might allow any power of two page size, but only 2**16 and "
            "2**0 are currently valid"
        )
    if shared and max_ is None:
        raise WasmtimeError("shared memories must have a maximum size")
    absolute_max = 1 << (64 if is_64 else 32)
    min_bytes = min_ << log2
    if min_bytes > _U64:
        raise WasmtimeError(
            "memory's minimum byte size must fit in a u64\n\nCaused by:\n"
            "    size overflow calculating memory size\n"
        )
    if min_bytes > absolute_max:
        raise WasmtimeError("minimum size is too large for this memory type's index type")
    if max_ is not None:
        max_bytes = max_ << log2
        if max_bytes > _U64:
            raise WasmtimeError(
                "memory's maximum byte size must fit in a u64\n\nCaused by:\n"
                "    size overflow calculating memory size\n"
            )
        if max_bytes > absolute_max:
            raise WasmtimeError("maximum size is too large for this memory type's index type")


class MemoryType(Managed[MemoryTypeInfo]):
    """The type of a linear memory; limits are in pages."""

    def __init__(
        self,
        limits: Limits,
        is_64: bool = False,
        shared: bool = False,
        page_size_log2: int = 16,
    ) -> None:
        if not isinstance(limits, Limits):
            raise TypeError("expected Limits")
        maximum = 1 << (64 if is_64 else 32)
        if limits.min >= maximum:
            raise WasmtimeError("minimum size too large")
        if limits.max and limits.max >= maximum:
            raise WasmtimeError("maximum size too large")
        # The C API takes u64s: negative values wrap, as they do in wasmtime-py.
        min_ = int(limits.min) & _U64
        max_ = None if limits.max is None else int(limits.max) & _U64
        _check_memory_type(min_, max_, bool(is_64), bool(shared), int(page_size_log2))
        try_alloc(_TYPE_HEADER, AllocKind.OTHER)
        info = MemoryTypeInfo(
            ir.MemoryType(ir.Limits(min_, max_)), bool(is_64), bool(shared), int(page_size_log2)
        )
        self._set_ptr(info)

    @classmethod
    def _from_ir(cls, ty: ir.MemoryType | MemoryTypeInfo) -> MemoryType:
        out: MemoryType = cls.__new__(cls)
        out._set_ptr(ty if isinstance(ty, MemoryTypeInfo) else MemoryTypeInfo(ty))
        return out

    @property
    def limits(self) -> Limits:
        lim = self.ptr().ir.limits
        return Limits(lim.min, lim.max)

    @property
    def is_64(self) -> bool:
        return self.ptr().is_64

    @property
    def is_shared(self) -> bool:
        return self.ptr().shared

    @property
    def page_size(self) -> int:
        return self.ptr().page_size

    @property
    def page_size_log2(self) -> int:
        return self.ptr().page_size_log2


class TagType(Managed[ir.FuncType]):
    """The type of an exception tag; consumes the ``FuncType`` it is given."""

    def __init__(self, functype: FuncType) -> None:
        if not isinstance(functype, FuncType):
            raise TypeError("expected a FuncType")
        functype.ptr()
        try_alloc(_TYPE_HEADER, AllocKind.OTHER)
        self._set_ptr(functype._consume())

    @classmethod
    def _from_ir(cls, ty: ir.FuncType) -> TagType:
        out: TagType = cls.__new__(cls)
        out._set_ptr(ty)
        return out

    @property
    def functype(self) -> FuncType:
        return FuncType._from_ir(self.ptr())


AsExternType = FuncType | TableType | MemoryType | GlobalType | TagType


def extern_type_from_ir(desc: Any) -> AsExternType:
    """The public type for an IR extern description (func types as ``ir.FuncType``)."""
    if isinstance(desc, ir.FuncType):
        return FuncType._from_ir(desc)
    if isinstance(desc, ir.TableType):
        return TableType._from_ir(desc)
    if isinstance(desc, (ir.MemoryType, MemoryTypeInfo)):
        return MemoryType._from_ir(desc)
    if isinstance(desc, ir.GlobalType):
        return GlobalType._from_ir(desc)
    raise WasmtimeError("unknown extern type")


@dataclass(frozen=True, slots=True)
class _ImportInfo:
    module: str
    name: str | None
    desc: Any


@dataclass(frozen=True, slots=True)
class _ExportInfo:
    name: str
    desc: Any


class ImportType(Managed[_ImportInfo]):
    """One import of a module (``Module.imports``); not constructible by users."""

    @classmethod
    def _new(cls, module: str, name: str | None, desc: Any) -> ImportType:
        out: ImportType = cls.__new__(cls)
        out._set_ptr(_ImportInfo(module, name, desc))
        return out

    @property
    def module(self) -> str:
        return self.ptr().module

    @property
    def name(self) -> str | None:
        return self.ptr().name

    @property
    def type(self) -> AsExternType:
        return extern_type_from_ir(self.ptr().desc)

    def __repr__(self) -> str:
        info = self.ptr()
        return f"ImportType({info.module!r}, {info.name!r})"


class ExportType(Managed[_ExportInfo]):
    """One export of a module (``Module.exports``); not constructible by users."""

    @classmethod
    def _new(cls, name: str, desc: Any) -> ExportType:
        out: ExportType = cls.__new__(cls)
        out._set_ptr(_ExportInfo(name, desc))
        return out

    @property
    def name(self) -> str:
        return self.ptr().name

    @property
    def type(self) -> AsExternType:
        return extern_type_from_ir(self.ptr().desc)

    def __repr__(self) -> str:
        return f"ExportType({self.ptr().name!r})"
