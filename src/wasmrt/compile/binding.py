"""Per-instance binding of compiled functions, each on its first use.

Invariants:
- A ``CodeTable`` is what a variant's factory returns for one instance: the
  instance's defined functions' callables, by defined index (``table[i]``).
  Creating it costs O(1) plus one slot per function; nothing is generated,
  compiled or bound for a function before it is read.
- ``table[i]`` is the bound function when the variant already has code for
  ``i``; otherwise a stub (``functools.partial`` of ``_first_call``) that on
  its first call gets the code from the variant (generating and compiling
  it, asking ``try_alloc`` for it), binds it and installs it everywhere this
  table can reach: its own slot, the ``f<k>`` cell every bound function of
  the table (and of importing instances) calls through, and the instance's
  ``WasmFunction`` object. Later calls are plain calls of the bound
  function, through the same closure cells as before: the lazy step costs
  the hot path nothing. A stub kept elsewhere keeps working (it forwards).
- If getting the code fails (``OutOfMemory``, a trap...), the exception
  leaves the call that needed it; nothing was installed, so the function is
  compiled by a later call and the store stays usable.
- Each name a function's code reads per instance (``cache.FREE_NAME``) is
  one cell per table, created on the first function that needs it, holding
  what generated code reads: ``M0`` the memory, ``T<t>`` /
  ``_t<t>`` a table and its element list, ``_r<t>`` the element list after
  ``TableInstance.materialize`` (code that reads elements as values),
  ``G<g>`` / ``_gv<g>`` a mutable global / an immutable global's value,
  ``F<k>`` a function object, ``_c<k>`` the callable for a direct call of
  import ``k`` (an imported wasm function of another ``CodeTable`` shares
  that table's ``f<k>`` cell, so it sees that function's compilation too),
  ``_ty<t>`` an interned type, ``f<k>`` a defined function, ``_E``/``_S``/
  ``_I`` the engine, store and instance. Binding later than instantiation is
  unobservable: all of these are fixed once instantiation reached its
  binding point (``wasmrt.vm.instance``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from types import CellType, CodeType, FunctionType
from typing import TYPE_CHECKING, Any

from wasmrt.vm.func import WasmFunction

if TYPE_CHECKING:
    from wasmrt.compile import CompiledVariant

__all__ = ["CodeTable"]

_INDEXED = re.compile(r"(M|T|_t|_r|G|_gv|F|_c|_ty|f)(\d+)$")
_get_slot = list.__getitem__
_parsed: dict[str, tuple[str, int]] = {}


def _parse(name: str) -> tuple[str, int]:
    """``"_t3"`` -> ``("_t", 3)``, ``"_S"`` -> ``("_S", -1)`` (memoised: the same few
    names recur in every instance)."""
    got = _parsed.get(name)
    if got is None:
        m = _INDEXED.match(name)
        got = (m.group(1), int(m.group(2))) if m is not None else (name, -1)
        assert got[0] in _VALUES, name
        _parsed[name] = got
    return got


class CodeTable:
    """The defined functions of one instance, bound on first use (see the module docstring)."""

    __slots__ = ("cells", "inst", "items", "n_imported", "store", "variant")

    def __init__(self, variant: CompiledVariant, inst: Any, store: Any) -> None:
        self.variant = variant
        self.inst = inst
        self.store = store
        self.n_imported: int = inst.n_imported_funcs
        self.items: list[FunctionType | None] = [None] * variant.n_funcs
        self.cells: dict[str, CellType] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        f = self.items[i]
        if f is not None:
            return f
        code = self.variant.codes[i]
        if code is not None:
            return self._install(i, code)
        return partial(self._first_call, i)

    def _first_call(self, i: int, *args: Any) -> Any:
        return self.resolve(i)(*args)

    def resolve(self, i: int) -> FunctionType:
        """The bound function of defined index ``i``, compiling and installing it if needed."""
        f = self.items[i]
        if f is None:
            f = self._install(i, self.variant.code(i))
        return f

    def _install(self, i: int, code: CodeType) -> FunctionType:
        cells = self.cells
        closure = [cells.get(name) or self.cell(name) for name in code.co_freevars]
        f = FunctionType(code, self.variant.namespace, None, None, tuple(closure) or None)
        self.items[i] = f
        k = self.n_imported + i
        if cells:
            own = cells.get(_FUNC_NAMES[k] if k < len(_FUNC_NAMES) else f"f{k}")
            if own is not None:
                own.cell_contents = f
        wf = _get_slot(self.inst.funcs, k)
        if wf is not None:
            wf.call = f
        return f

    def cell(self, name: str) -> CellType:
        """The cell holding this instance's binding of ``name`` (created on first use)."""
        c = self.cells.get(name)
        if c is None:
            kind, k = _parse(name)
            if kind == "_c":
                c = self._shared_import_cell(k)
            if c is None:
                c = CellType(_VALUES[kind](self, k))
            self.cells[name] = c
        return c

    def _shared_import_cell(self, k: int) -> CellType | None:
        f = self.inst.funcs[k]
        if type(f) is not WasmFunction or f.instance.store is not self.store:
            return None
        f.instance.bind_code()
        other = f.instance.code
        if not isinstance(other, CodeTable):
            return None
        return other.cell(f"f{f.index}")

    def _func_value(self, k: int) -> Any:
        i = k - self.n_imported
        return self.items[i] or partial(self._first_call, i)


def _read_table(t: CodeTable, k: int) -> Any:
    table = t.inst.tables[k]
    table.materialize()
    return table.elements


#: How each kind of name (``_parse``) is bound for an instance: ``(table, index) -> value``.
_VALUES: dict[str, Callable[[CodeTable, int], Any]] = {
    "_S": lambda t, k: t.store,
    "_I": lambda t, k: t.inst,
    "_E": lambda t, k: t.store.engine,
    "f": CodeTable._func_value,
    "M": lambda t, k: t.inst.mems[k],
    "T": lambda t, k: t.inst.tables[k],
    "_t": lambda t, k: t.inst.tables[k].elements,
    "_r": _read_table,
    "G": lambda t, k: t.inst.globals[k],
    "_gv": lambda t, k: t.inst.globals[k].value,
    "F": lambda t, k: t.inst.funcs[k],
    "_c": lambda t, k: t.inst.funcs[k].bind_caller(t.inst),
    "_ty": lambda t, k: t.inst.types[k],
}
#: ``f<k>`` names of the first functions, built once.
_FUNC_NAMES = tuple(f"f{k}" for k in range(4096))
