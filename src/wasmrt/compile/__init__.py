"""The execution tier: validated ``ir.Module`` -> Python code, one function at a time, on demand.

Invariants:
- A ``CompiledModule`` holds one ``CompiledVariant`` per option variant
  asked for (fuel on/off x epoch on/off), shared by every instance and
  store. Creating either generates and compiles nothing: compile time is
  O(module) bookkeeping, and each defined function is generated
  (``codegen.ModuleCodegen.function_source``) and compiled
  (``cache.function_code``), both content-addressed per process, the first time
  any instance calls it (``binding.CodeTable``) or ``compile_all`` /
  serialisation asks. Each function costs time linear in its own body.
- ``variant.code(i)`` asks ``try_alloc(len(source), AllocKind.CODE)`` once
  per variant and function, before it keeps the code, whether or not the
  process cache already had it. If generating, the allocation or compiling
  fails, no code is kept (at most the generated text): the next call tries
  again.
- A host ``MemoryError`` while compiling surfaces as ``OutOfMemory`` (the
  outcome of a refusal at that site).
- Each variant has one namespace that every function of the variant uses
  as globals: the ``RUNTIME_NAMESPACE`` helpers its compiled functions name
  (added as each function's code is taken, so setting up a variant copies
  nothing) and the float constants they read, named by their bits; its ``factory(inst, store)`` returns the
  instance's ``CodeTable``, the sequence of defined functions' callables
  the vm installs (``wasmrt.vm.instance.bind_code``). Those callables follow
  the core calling convention of docs/internals.md.
- With a ``cache.CodeStore`` (``Config.cache``), a function whose source
  the process cache does not hold is first looked up there; a hit gives its
  source, constants, line map entry and code object, so neither the code
  generator nor ``compile()`` runs for it. A function generated here, or
  found in the process caches but not in the store, is offered to the store
  once its code is compiled. Either way the function asks ``try_alloc``
  exactly as without a store (same sizes, same order).
- ``load_variant`` rebuilds a variant from stored function sources and
  constants without the code generator (deserialisation); ``ModuleCodegen``
  is only constructed when a function without a source is needed.
- SIMD instructions compile to calls of ``wasmrt.compile.simd`` functions,
  which ``RUNTIME_NAMESPACE`` binds as ``_V_<name>`` globals.
- Every variant a ``CompiledModule`` holds is registered as its own
  (``backtrace.register_variant``), so ``backtrace.frames_from_traceback``
  maps a trap's Python traceback back to wasm functions (code objects are
  named ``f<funcidx>``; the frames' globals are the variant's namespace).
  Each variant owns a ``linemap.LineMap`` filled as its functions are
  generated (charged with their code), so frames are precise to the
  instruction; a function loaded from stored source has no entry and reports
  function-level offsets.
"""

from __future__ import annotations

from types import CodeType
from typing import Any

from wasmrt import ir
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.compile.binding import CodeTable
from wasmrt.compile.cache import (
    CodeStore,
    cached_source,
    function_code,
    on_fresh_stack,
    remember_code,
    remember_source,
)
from wasmrt.compile.codegen import ContentKey, FunctionSource, ModuleCodegen
from wasmrt.compile.linemap import LineMap
from wasmrt.compile.numeric import RUNTIME_NAMESPACE
from wasmrt.errors import OutOfMemory, WasmtimeError
from wasmrt.observe import created
from wasmrt.vm.backtrace import register_variant
from wasmrt.vm.values import f32_from_bits, f64_from_bits

__all__ = ["CodeTable", "CompiledModule", "CompiledVariant", "compile_module", "load_variant"]


def _const_value(key: str) -> float:
    kind, bits = key.split(":")
    return f32_from_bits(int(bits)) if kind == "f32" else f64_from_bits(int(bits))


def _link(namespace: dict[str, Any], code: CodeType) -> None:
    """Add the runtime helpers ``code`` (and any code nested in it) names to ``namespace``."""
    for name in code.co_names:
        if name not in namespace:
            helper = RUNTIME_NAMESPACE.get(name)
            if helper is not None:
                namespace[name] = helper
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _link(namespace, const)


class _Factory:
    """``factory(inst, store) -> CodeTable``; ``__globals__`` is the variant's namespace
    (where ``backtrace.register_variant`` records the owner)."""

    __slots__ = ("__globals__", "variant")

    def __init__(self, variant: CompiledVariant, namespace: dict[str, Any]) -> None:
        self.variant = variant
        self.__globals__ = namespace

    def __call__(self, inst: Any, store: Any) -> CodeTable:
        return CodeTable(self.variant, inst, store)


class CompiledVariant:
    """One option variant of a module's code: per-function sources and code, built on demand."""

    __slots__ = (
        "_codegen",
        "_consts",
        "_keys",
        "_unsaved",
        "code_store",
        "codes",
        "epoch",
        "factory",
        "fuel",
        "line_map",
        "n_imported",
        "module",
        "n_funcs",
        "namespace",
        "sources",
    )

    def __init__(
        self,
        module: ir.Module,
        fuel: bool,
        epoch: bool,
        sources: list[str] | None = None,
        consts: dict[str, str] | None = None,
        code_store: CodeStore | None = None,
    ) -> None:
        self.module = module
        self.fuel = fuel
        self.epoch = epoch
        self.n_funcs = len(module.funcs)
        #: Generated source of each defined function, or None until generated.
        self.sources: list[str | None] = (
            list(sources) if sources is not None else [None] * self.n_funcs
        )
        #: Compiled code of each defined function, or None until its first use.
        self.codes: list[CodeType | None] = [None] * self.n_funcs
        self.namespace: dict[str, Any] = {}
        self._consts: dict[str, str] = {}
        self._add_consts(consts or {})
        self._codegen: ModuleCodegen | None = None
        #: Content keys computed so far, by defined index (shared by renewed copies).
        self._keys: dict[int, ContentKey | None] = {}
        #: Instruction of each generated line, per function generated here (not loaded).
        self.line_map = LineMap(module)
        self.n_imported = len(module.imported("func"))
        self.factory = _Factory(self, self.namespace)
        #: Persistent cache of generated code (``Config.cache``), or None.
        self.code_store = code_store
        #: Functions generated here, by defined index, not yet offered to ``code_store``.
        self._unsaved: dict[int, tuple[ContentKey, FunctionSource]] = {}

    def _add_consts(self, consts: dict[str, str]) -> None:
        for name, key in consts.items():
            if name not in self._consts:
                self.namespace[name] = _const_value(key)
                self._consts[name] = key

    def _generate(self, i: int) -> str:
        gen = self._codegen
        if gen is None:
            gen = self._codegen = ModuleCodegen(self.module, fuel=self.fuel, epoch=self.epoch)
        if i in self._keys:
            key = self._keys[i]
        else:
            key = self._keys[i] = gen.function_key(i)
        fs = cached_source(key) if key is not None else None
        store = self.code_store
        if key is not None and store is not None:
            if fs is None:
                fs = self._stored_source(key)
            elif store.wants(key, self.fuel, self.epoch):
                self._unsaved[i] = (key, fs)
        if fs is None:
            fs = gen.function_source(i)
            if key is not None:
                remember_source(key, fs)
                if store is not None:
                    self._unsaved[i] = (key, fs)
        self._add_consts(fs.consts)
        self.line_map.add(self.n_imported + i, fs.lines_before_body, fs.line_instrs)
        self.sources[i] = fs.text
        return fs.text

    def _stored_source(self, key: ContentKey) -> FunctionSource | None:
        """The source ``code_store`` keeps for ``key`` (its code seeds the code cache)."""
        assert self.code_store is not None
        got = self.code_store.load(key, self.fuel, self.epoch)
        if got is None:
            return None
        fs, code = got
        remember_source(key, fs)
        remember_code(fs.text, code)
        return fs

    def renewed(self, code_store: CodeStore | None = None) -> CompiledVariant:
        """A variant of the same module and options with nothing generated or compiled,
        sharing this one's code generator and content keys (read-only once computed)."""
        out = CompiledVariant(self.module, self.fuel, self.epoch, code_store=code_store)
        out._codegen = self._codegen
        out._keys = self._keys
        return out

    def function_source(self, i: int) -> str:
        """Source of defined function ``i`` (generated now if needed; not compiled)."""
        src = self.sources[i]
        return src if src is not None else self._generate(i)

    def code(self, i: int) -> CodeType:
        """Compiled code of defined function ``i``, generated and compiled on first use."""
        code = self.codes[i]
        if code is not None:
            return code
        size = len(self.sources[i] or "")
        try:
            try:
                src = self.function_source(i)
            except RecursionError:  # first called deep in wasm recursion: use a fresh stack
                src = on_fresh_stack(self.function_source, i)
            # The line map entry is charged with the code it describes.
            size = len(src) + self.line_map.entry_bytes(self.n_imported + i)
            try_alloc(size, AllocKind.CODE)
            code = function_code(src)
        except MemoryError:
            raise OutOfMemory(size) from None
        except SyntaxError as e:  # only a corrupted stored source gets here
            raise WasmtimeError(f"compiled code of function {i} is malformed: {e}") from None
        _link(self.namespace, code)
        self.codes[i] = code
        unsaved = self._unsaved.pop(i, None) if self._unsaved else None
        if unsaved is not None and self.code_store is not None:
            self.code_store.save(unsaved[0], self.fuel, self.epoch, unsaved[1], code)
        return code

    def compile_all(self) -> None:
        for i in range(self.n_funcs):
            self.code(i)

    @property
    def function_sources(self) -> list[str]:
        """Every defined function's source (generating the missing ones)."""
        return [self.function_source(i) for i in range(self.n_funcs)]

    @property
    def source(self) -> str:
        """The whole variant's source, for reading: every function's ``def``."""
        return "".join(s + "\n\n" for s in self.function_sources)

    @property
    def consts(self) -> dict[str, str]:
        """Constants of the functions generated so far (name -> ``"f32:<bits>"``/``"f64:..."``),
        sorted by name."""
        return dict(sorted(self._consts.items()))


def load_variant(
    module: ir.Module,
    function_sources: list[str],
    consts: dict[str, str],
    fuel: bool,
    epoch: bool,
    extra_bytes: int = 0,
) -> CompiledVariant:
    """A variant of ``module`` from stored sources and constants, without the code generator.

    Each source is compiled on its function's first use, like generated ones.
    """
    if len(function_sources) != len(module.funcs):
        raise WasmtimeError(
            f"compiled code has {len(function_sources)} functions, the module {len(module.funcs)}"
        )
    return CompiledVariant(module, fuel, epoch, function_sources, consts)


class CompiledModule:
    """A module compiled to Python on demand; ``source`` is the default (no fuel, no epoch)
    variant's."""

    def __init__(self, module: ir.Module, code_store: CodeStore | None = None) -> None:
        self.module = module
        self.code_store = code_store
        self.module_key: Any = self
        self._variants: dict[tuple[bool, bool], CompiledVariant] = {}
        created(self)

    def variant(self, fuel: bool = False, epoch: bool = False) -> CompiledVariant:
        key = (bool(fuel), bool(epoch))
        v = self._variants.get(key)
        if v is None:
            v = CompiledVariant(self.module, key[0], key[1], code_store=self.code_store)
            register_variant(self, v)
            self._variants[key] = v
        return v

    @property
    def source(self) -> str:
        return self.variant().source

    def built_variants(self) -> list[CompiledVariant]:
        """The variants asked for so far (what serialisation ships)."""
        return list(self._variants.values())

    @classmethod
    def from_variants(cls, module: ir.Module, variants: list[CompiledVariant]) -> CompiledModule:
        """A compiled module whose variants were loaded elsewhere (``load_variant``).

        Missing variants are still generated on demand by ``variant()``.
        """
        cm = cls(module)
        for v in variants:
            register_variant(cm, v)
            cm._variants[(bool(v.fuel), bool(v.epoch))] = v
        return cm

    def renewed(
        self, options: object = None, code_store: CodeStore | None = None
    ) -> CompiledModule:
        """What ``compile_module(self.module, options, code_store)`` returns, reusing the
        work of this module's variants that does not depend on a module's own state
        (content keys, code generator): no function is generated, compiled or charged yet."""
        cm = CompiledModule(self.module, code_store)
        key = (
            bool(getattr(options, "consume_fuel", False)),
            bool(getattr(options, "epoch_interruption", False)),
        )
        mine = self._variants.get(key)
        if mine is None:
            cm.variant(*key)
        else:
            v = mine.renewed(code_store)
            register_variant(cm, v)
            cm._variants[key] = v
        return cm

    def function_source(self, funcidx: int, fuel: bool = False, epoch: bool = False) -> str:
        """Source of one defined function (``funcidx`` in the function index space)."""
        n = len(self.module.imported("func"))
        return self.variant(fuel, epoch).function_source(funcidx - n)

    def compile_all(self, fuel: bool = False, epoch: bool = False) -> None:
        """Generate and compile every function of a variant now (what an eager compiler does)."""
        self.variant(fuel, epoch).compile_all()


def compile_module(
    m: ir.Module, options: object = None, code_store: CodeStore | None = None
) -> CompiledModule:
    """Prepare ``m`` (already validated) for execution. ``options`` may carry
    ``consume_fuel`` / ``epoch_interruption`` (e.g. an engine config) to pick the
    variant set up now; anything else (e.g. a validator ``ModuleInfo``) sets up the
    default. Functions are generated and compiled on their first call, looked up
    first in ``code_store`` when one is given."""
    cm = CompiledModule(m, code_store)
    cm.variant(
        bool(getattr(options, "consume_fuel", False)),
        bool(getattr(options, "epoch_interruption", False)),
    )
    return cm
