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
    """``"_t3"`` -> ``("_t", 3)`` (memoised: the same few names recur in every instance)."""
    got = _parsed.get(name)
    if got is None:
        m = _INDEXED.match(name)
        assert m is not None, name
        got = _parsed[name] = (m.group(1), int(m.group(2)))
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
        closure = tuple([cells.get(name) or self.cell(name) for name in code.co_freevars])
        f = FunctionType(code, self.variant.namespace, None, None, closure or None)
        self.items[i] = f
        k = self.n_imported + i
        own = self.cells.get(f"f{k}")
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
            c = self._shared_import_cell(name)
            if c is None:
                c = CellType(self._value(name))
            self.cells[name] = c
        return c

    def _shared_import_cell(self, name: str) -> CellType | None:
        if not name.startswith("_c"):
            return None
        f = self.inst.funcs[_parse(name)[1]]
        if type(f) is not WasmFunction or f.instance.store is not self.store:
            return None
        f.instance.bind_code()
        other = f.instance.code
        if not isinstance(other, CodeTable):
            return None
        return other.cell(f"f{f.index}")

    def _value(self, name: str) -> Any:
        inst = self.inst
        if name == "_S":
            return self.store
        if name == "_I":
            return inst
        if name == "_E":
            return self.store.engine
        kind, k = _parse(name)
        if kind == "f":
            i = k - self.n_imported
            return self.items[i] or partial(self._first_call, i)
        if kind == "M":
            return inst.mems[k]
        if kind == "T":
            return inst.tables[k]
        if kind == "_t":
            return inst.tables[k].elements
        if kind == "_r":
            table = inst.tables[k]
            table.materialize()
            return table.elements
        if kind == "G":
            return inst.globals[k]
        if kind == "_gv":
            return inst.globals[k].value
        if kind == "F":
            return inst.funcs[k]
        if kind == "_c":
            return inst.funcs[k].bind_caller(inst)
        return inst.types[k]  # "_ty"
