"""The execution tier: validated ``ir.Module`` -> Python source -> code shared by all instances.

Invariants:
- ``compile_module`` generates and ``compile()``s the module once per option
  variant (fuel on/off x epoch on/off); variants are cached on the
  ``CompiledModule`` and shared by every instance and store.
- Each variant's code defines ``_make(_I, _S)``: given a ``ModuleInstance``
  and its ``StoreCore`` it binds memories/tables/globals/functions into
  closure variables and returns the defined functions' closures, in order.
  Those closures follow the core calling convention of docs/internals.md.
- Generating a variant asks ``try_alloc(len(source), AllocKind.CODE)`` before
  the code object is built.
- ``load_variant`` rebuilds a variant from its generated source and constants
  without the code generator (deserialisation); ``_build_variant`` is
  generate + ``load_variant``, so both paths build identical namespaces.
- SIMD instructions compile to calls of ``wasmrt.compile.simd`` functions,
  which ``RUNTIME_NAMESPACE`` binds as ``_V_<name>`` globals (so a variant
  loaded from source needs nothing extra).
- Every variant a ``CompiledModule`` holds is registered as its own
  (``backtrace.register_variant``), so ``backtrace.frames_from_traceback``
  maps a trap's Python traceback back to wasm functions; a generated
  variant also carries its ``linemap.LineMap`` (charged with its source), so
  frames are precise to the instruction. A variant loaded from source has
  none and reports function-level offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmrt import ir
from wasmrt.alloc import AllocKind, try_alloc
from wasmrt.compile.codegen import ModuleCodegen
from wasmrt.compile.numeric import RUNTIME_NAMESPACE
from wasmrt.vm.backtrace import register_variant
from wasmrt.vm.values import f32_from_bits, f64_from_bits

__all__ = ["CompiledModule", "CompiledVariant", "compile_module", "load_variant"]


class CompiledVariant:
    """One option variant: its source text, the constants its namespace needs, and its factory."""

    __slots__ = (
        "const_dicts",
        "consts",
        "epoch",
        "factory",
        "fuel",
        "function_sources",
        "line_map",
        "source",
    )

    def __init__(
        self,
        source: str,
        function_sources: list[str],
        factory: Callable[[Any, Any], tuple[Callable[..., Any], ...]],
        fuel: bool,
        epoch: bool,
        consts: dict[str, str] | None = None,
        const_dicts: dict[str, dict[int, int]] | None = None,
    ) -> None:
        self.source = source
        self.function_sources = function_sources
        self.factory = factory
        self.fuel = fuel
        self.epoch = epoch
        self.consts = consts if consts is not None else {}
        self.const_dicts = const_dicts if const_dicts is not None else {}
        #: ``linemap.LineMap`` of a variant generated here (None when loaded from source).
        self.line_map: Any = None


def load_variant(
    source: str,
    function_sources: list[str],
    consts: dict[str, str],
    const_dicts: dict[str, dict[int, int]],
    fuel: bool,
    epoch: bool,
    extra_bytes: int = 0,
) -> CompiledVariant:
    """Build a variant from generated ``source`` and its constants, without the code generator.

    ``consts`` maps names to ``"f32:<bits>"``/``"f64:<bits>"``; ``const_dicts``
    maps names to the int tables the code indexes. ``_build_variant`` and
    deserialisation both come through here.
    """
    try_alloc(len(source) + extra_bytes, AllocKind.CODE)
    ns: dict[str, Any] = dict(RUNTIME_NAMESPACE)
    for name, key in consts.items():
        kind, bits = key.split(":")
        ns[name] = f32_from_bits(int(bits)) if kind == "f32" else f64_from_bits(int(bits))
    ns.update(const_dicts)
    code = compile(source, "<wasm module>", "exec")
    exec(code, ns)
    return CompiledVariant(
        source, function_sources, ns["_make"], fuel, epoch, dict(consts), dict(const_dicts)
    )


def _build_variant(module: ir.Module, fuel: bool, epoch: bool) -> CompiledVariant:
    gen = ModuleCodegen(module, fuel=fuel, epoch=epoch)
    source, per_func = gen.generate()
    # The line map is charged with the source it describes.
    map_bytes = gen.line_map.size_bytes()
    variant = load_variant(source, per_func, gen.consts, gen.const_dicts, fuel, epoch, map_bytes)
    variant.line_map = gen.line_map
    return variant


class CompiledModule:
    """A module compiled to Python; ``source`` is the default (no fuel, no epoch) variant."""

    def __init__(self, module: ir.Module) -> None:
        self.module = module
        self.module_key: Any = self
        self._variants: dict[tuple[bool, bool], CompiledVariant] = {}

    def variant(self, fuel: bool = False, epoch: bool = False) -> CompiledVariant:
        key = (bool(fuel), bool(epoch))
        v = self._variants.get(key)
        if v is None:
            v = _build_variant(self.module, key[0], key[1])
            register_variant(self, v)
            self._variants[key] = v
        return v

    @property
    def source(self) -> str:
        return self.variant().source

    def built_variants(self) -> list[CompiledVariant]:
        """The variants compiled so far (what serialisation ships)."""
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

    def function_source(self, funcidx: int, fuel: bool = False, epoch: bool = False) -> str:
        """Source of one defined function (``funcidx`` in the function index space)."""
        n = len(self.module.imported("func"))
        return self.variant(fuel, epoch).function_sources[funcidx - n]


def compile_module(m: ir.Module, options: object = None) -> CompiledModule:
    """Compile ``m`` (already validated). ``options`` may carry ``consume_fuel`` /
    ``epoch_interruption`` (e.g. an engine config) to pick the eagerly built
    variant; anything else (e.g. a validator ``ModuleInfo``) builds the default."""
    cm = CompiledModule(m)
    cm.variant(
        bool(getattr(options, "consume_fuel", False)),
        bool(getattr(options, "epoch_interruption", False)),
    )
    return cm
