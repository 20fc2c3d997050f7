"""The module IR: what the decoder produces, the encoder consumes and the
validator, compiler and runtime read.

Invariants:
- Value types are the strings in ``VALTYPES``; reference types are the
  strings in ``REFTYPES``.
- Every IR class compares by value, so ``decode(encode(m)) == m`` is a plain
  ``==`` check.
- A function body or constant expression is a flat ``list[Instr]`` exactly as
  in the binary: nested blocks are delimited by ``block``/``loop``/``if``,
  ``else`` and ``end`` instructions, and the list ends with the final ``end``.
- ``Instr.imm`` holds the immediate described in
  ``wasmrt.opcodes.IMMEDIATE_KINDS`` for the instruction's kind.
- Element segments are normalised: ``init`` is always a list of constant
  expressions (a function-index list ``[x, y]`` becomes
  ``[[ref.func x, end], [ref.func y, end]]``), so the seven binary encodings
  that mean the same thing decode to one IR.
- Index spaces count imports first, as in the spec: function index ``i`` is
  ``imports[i]`` while ``i`` is below the number of function imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

VALTYPES = ("i32", "i64", "f32", "f64", "v128", "funcref", "externref")
NUMTYPES = ("i32", "i64", "f32", "f64")
REFTYPES = ("funcref", "externref")

ExternKind = Literal["func", "table", "memory", "global"]
BlockType = None | str | int  # empty, single result valtype, or type index


@dataclass(frozen=True, slots=True)
class Instr:
    op: str
    imm: tuple = ()

    def __repr__(self) -> str:
        return f"Instr({self.op!r}{', ' + repr(self.imm) if self.imm else ''})"


Expr = list[Instr]


@dataclass(frozen=True, slots=True)
class FuncType:
    params: tuple[str, ...]
    results: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    min: int
    max: int | None = None


@dataclass(frozen=True, slots=True)
class TableType:
    elem: str  # a reftype
    limits: Limits


@dataclass(frozen=True, slots=True)
class MemoryType:
    limits: Limits  # in 64 KiB pages


@dataclass(frozen=True, slots=True)
class GlobalType:
    valtype: str
    mutable: bool


ImportDesc = int | TableType | MemoryType | GlobalType  # int = type index of a func


@dataclass(slots=True)
class Import:
    module: str
    name: str
    kind: ExternKind
    desc: ImportDesc


@dataclass(slots=True)
class Export:
    name: str
    kind: ExternKind
    index: int


@dataclass(slots=True)
class Function:
    type_idx: int
    locals: list[tuple[int, str]] = field(default_factory=list)  # (count, valtype) runs
    body: Expr = field(default_factory=list)


@dataclass(slots=True)
class Global:
    type: GlobalType
    init: Expr


@dataclass(slots=True)
class Elem:
    mode: Literal["active", "passive", "declarative"]
    reftype: str
    init: list[Expr]
    table: int = 0  # active only
    offset: Expr | None = None  # active only


@dataclass(slots=True)
class Data:
    mode: Literal["active", "passive"]
    init: bytes
    memory: int = 0  # active only
    offset: Expr | None = None  # active only


@dataclass(slots=True)
class CustomSection:
    name: str
    data: bytes
    #: id of the non-custom section it follows (0 = before all of them).
    after: int = 0


@dataclass(slots=True)
class NameMap:
    """Best-effort contents of the ``name`` custom section."""

    module: str | None = None
    functions: dict[int, str] = field(default_factory=dict)
    locals: dict[int, dict[int, str]] = field(default_factory=dict)


@dataclass(slots=True)
class Module:
    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    funcs: list[Function] = field(default_factory=list)
    tables: list[TableType] = field(default_factory=list)
    mems: list[MemoryType] = field(default_factory=list)
    globals: list[Global] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    elems: list[Elem] = field(default_factory=list)
    datas: list[Data] = field(default_factory=list)
    data_count: int | None = None
    customs: list[CustomSection] = field(default_factory=list)
    names: NameMap | None = None

    # Index-space helpers (imports first, then definitions).

    def imported(self, kind: ExternKind) -> list[Import]:
        return [i for i in self.imports if i.kind == kind]

    def func_type(self, funcidx: int) -> FuncType:
        """Type of function ``funcidx`` in the function index space."""
        imported = self.imported("func")
        if funcidx < len(imported):
            desc = imported[funcidx].desc
            assert isinstance(desc, int)
            return self.types[desc]
        return self.types[self.funcs[funcidx - len(imported)].type_idx]

    def all_func_type_idxs(self) -> list[int]:
        out = [i.desc for i in self.imports if i.kind == "func"]
        out += [f.type_idx for f in self.funcs]
        return out  # type: ignore[return-value]

    def all_tables(self) -> list[TableType]:
        out = [i.desc for i in self.imports if isinstance(i.desc, TableType)]
        return out + self.tables

    def all_mems(self) -> list[MemoryType]:
        out = [i.desc for i in self.imports if isinstance(i.desc, MemoryType)]
        return out + self.mems

    def all_globals(self) -> list[GlobalType]:
        out = [i.desc for i in self.imports if isinstance(i.desc, GlobalType)]
        return out + [g.type for g in self.globals]
