"""``Module``: a decoded, validated and compiled WebAssembly module.

Invariants:
- Building a module runs, in order: text → binary (``wat.py``), decode
  (``wasmrt.binary``), validate (``wasmrt.validate``), the engine's
  allocator ``validate_module`` (so a module that can never fit the pool
  fails here, not at instantiation), then compile (``wasmrt.compile``).
  Any failure raises before a ``Module`` exists; errors are
  ``WasmtimeError``s rendered the way Wasmtime renders them (outer message,
  ``Caused by:``), keeping their wasmrt subclass. ``OutOfMemory`` propagates
  unchanged, and so does a real allocation failure of the host: a
  ``MemoryError`` anywhere in decoding, validation, compilation, reading
  text, serialising or deserialising leaves as ``OutOfMemory`` (sized by the
  input; ``alloc.host_alloc_call``, one mapping for all of them).
- A module is immutable after construction and may be instantiated in any
  store of its engine any number of times; ``ModuleCore`` is what the vm
  and the allocator see (``module_key`` is its identity for slot affinity).
- ``Module.deserialize``/``deserialize_file`` check the blob's wasmrt
  version and engine settings (``wasmrt.serialize``), then reuse its
  compiled code (no code generation); validation and the allocator's
  ``validate_module`` still run.
- With ``Config.cache`` set, compiled functions are looked up in and added
  to the engine's on-disk code cache (``wasmrt.runtime.diskcache``). Like Wasmtime's, deserialisation trusts
  its input: the stored code is executed, so only load blobs you produced.
- ``close()`` purges the module's per-module allocator state.
- ``imports``/``exports`` are fresh lists in module order on every access.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from wasmrt import ir
from wasmrt import serialize as serialization
from wasmrt.alloc import SLOT_SIZE, AllocKind, host_alloc_call, try_alloc
from wasmrt.binary import decode_module
from wasmrt.compile import compile_module
from wasmrt.errors import InvalidModuleError, MalformedError, WasmtimeError
from wasmrt.runtime._managed import Managed
from wasmrt.runtime.diskcache import code_store
from wasmrt.runtime.engine import Engine, EngineCore
from wasmrt.runtime.types import ExportType, ImportType
from wasmrt.runtime.wat import _to_wasm
from wasmrt.validate import validate_module

__all__ = ["Module", "ModuleCore", "renewed"]


class ModuleCore:
    """The engine-bound compiled module the vm instantiates."""

    __slots__ = ("__weakref__", "compiled", "engine", "info", "ir")

    def __init__(self, engine: EngineCore, module: ir.Module, info: Any, compiled: Any) -> None:
        self.engine = engine
        self.ir = module
        self.info = info
        self.compiled = compiled

    @property
    def module_key(self) -> ModuleCore:
        return self


def _with_context(outer: str, err: WasmtimeError) -> WasmtimeError:
    """A copy of ``err`` (same class) whose message has Wasmtime's ``outer`` context."""
    out = copy.copy(err)
    msg = f"{outer}\n\nCaused by:\n    {err.message}\n"
    out.message = msg
    out.args = (msg,)
    return out


def _import_desc(m: ir.Module, imp: ir.Import) -> Any:
    if imp.kind == "func":
        assert isinstance(imp.desc, int)
        return m.types[imp.desc]
    return imp.desc


def _export_desc(m: ir.Module, exp: ir.Export) -> Any:
    if exp.kind == "func":
        return m.func_type(exp.index)
    if exp.kind == "table":
        return m.all_tables()[exp.index]
    if exp.kind == "memory":
        return m.all_mems()[exp.index]
    return m.all_globals()[exp.index]


def _compile_module(module: ir.Module, engine: EngineCore) -> Any:
    return compile_module(module, engine.config, code_store(engine.config))


def build_module_core(engine: EngineCore, binary: bytes | bytearray) -> ModuleCore:
    """Decode, validate, check against the allocator and compile ``binary``.

    The host running out of memory on the way is ``OutOfMemory(len(binary))``.
    """
    return host_alloc_call(len(binary), _build_module_core, engine, binary)


def _build_module_core(engine: EngineCore, binary: bytes | bytearray) -> ModuleCore:
    try:
        module = decode_module(binary)
    except MalformedError as e:
        raise _with_context("failed to parse WebAssembly module", e) from e
    return build_from_ir(engine, module)


def build_from_ir(engine: EngineCore, module: ir.Module, compiled: Any = None) -> ModuleCore:
    """Validate, check against the allocator and compile an already decoded module.

    ``compiled`` (from deserialisation) is used as is instead of compiling.
    """
    try:
        info = validate_module(module)
    except InvalidModuleError as e:
        raise _with_context("WebAssembly translation error", e) from e
    engine.allocator.validate_module(module)
    if compiled is None:
        compiled = _compile_module(module, engine)
    try_alloc(128, AllocKind.MODULE)
    core = ModuleCore(engine, module, info, compiled)
    if hasattr(compiled, "module_key"):
        # The vm keys pool slot affinity on ``compiled.module_key``; make it the
        # same identity ``close()`` purges.
        compiled.module_key = core
    return core


def renew_core(engine: EngineCore, core: ModuleCore) -> ModuleCore:
    """``core``'s module as a new build for ``engine`` would leave it, without decoding or
    validating again: the same (immutable) IR and validation facts, the engine's
    allocator check, and compiled-code state of its own (no function compiled yet,
    so each asks for its ``CODE`` allocation on its first call, as after a real build).

    It asks ``try_alloc`` for nothing: a harness replaying a recorded build's
    allocations (``oomfuzz.reuse``) accounts for them.
    """
    engine.allocator.validate_module(core.ir)
    renew = getattr(core.compiled, "renewed", None)
    compiled = (
        renew(engine.config, code_store(engine.config))
        if renew is not None
        else _compile_module(core.ir, engine)
    )
    out = ModuleCore(engine, core.ir, core.info, compiled)
    if hasattr(compiled, "module_key"):
        compiled.module_key = out
    return out


class Module(Managed[ModuleCore]):
    """A compiled WebAssembly module: ``Module(engine, wasm_or_wat)``."""

    @classmethod
    def from_file(cls, engine: Engine, path: str | bytes | os.PathLike[Any]) -> Module:
        return cls(engine, _read_file(path))

    def __init__(self, engine: Engine, wasm: str | bytes | bytearray) -> None:
        if not isinstance(engine, Engine):
            raise TypeError("expected an Engine")
        binary = _to_wasm(wasm)
        self._set_ptr(build_module_core(engine.ptr(), binary))

    @classmethod
    def _from_core(cls, core: ModuleCore) -> Module:
        out: Module = cls.__new__(cls)
        out._set_ptr(core)
        return out

    def _delete(self, ptr: ModuleCore) -> None:
        purge = getattr(ptr.engine.allocator, "purge_module", None)
        if purge is not None:
            purge(ptr.module_key)

    @classmethod
    def validate(cls, engine: Engine, wasm: bytes | bytearray) -> None:
        """Raise ``WasmtimeError`` unless ``wasm`` is a valid binary (text is not accepted)."""
        engine.ptr()
        if not isinstance(wasm, (bytes, bytearray)):
            raise TypeError("expected wasm bytes")
        # Unlike ``Module(...)``, Wasmtime reports validate's errors without context.
        host_alloc_call(len(wasm), _decode_and_validate, wasm)

    @property
    def imports(self) -> list[ImportType]:
        m = self.ptr().ir
        return [ImportType._new(i.module, i.name, _import_desc(m, i)) for i in m.imports]

    @property
    def exports(self) -> list[ExportType]:
        m = self.ptr().ir
        return [ExportType._new(e.name, _export_desc(m, e)) for e in m.exports]

    @property
    def _core(self) -> ModuleCore:
        return self.ptr()

    # Serialization is provided by ``wasmrt.serialize`` (see docs/internals.md).

    def serialize(self) -> bytearray:
        core = self.ptr()
        return host_alloc_call(_serialized_estimate(core.ir), _serialize_core, core)

    @classmethod
    def deserialize(cls, engine: Engine, encoded: bytes | bytearray) -> Module:
        if not isinstance(encoded, (bytes, bytearray)):
            raise TypeError("expected bytes")
        core = engine.ptr()
        return cls._from_core(_deserialize_core(core, bytes(encoded)))

    @classmethod
    def deserialize_file(cls, engine: Engine, path: str) -> Module:
        core = engine.ptr()
        try:
            data = _read_file(path)
        except OSError as e:
            raise WasmtimeError(f"failed to read file {path}: {e.strerror or e}") from None
        return cls._from_core(_deserialize_core(core, data))


def _read_file(path: str | bytes | os.PathLike[Any]) -> bytes:
    """The file's bytes; the host refusing the buffer is ``OutOfMemory`` of the file's size
    (``OSError`` propagates: wasmtime-py's ``from_file`` lets ``open``'s errors out)."""
    with open(path, "rb") as f:
        return host_alloc_call(os.fstat(f.fileno()).st_size, f.read)


def _decode_and_validate(wasm: bytes | bytearray) -> None:
    validate_module(decode_module(wasm))


def _serialized_estimate(m: ir.Module) -> int:
    """About what serialising ``m`` holds at once: a slot per instruction, the data bytes."""
    return SLOT_SIZE * sum(len(f.body) for f in m.funcs) + sum(len(d.init) for d in m.datas)


def _serialize_core(core: ModuleCore) -> bytearray:
    return bytearray(serialization.serialize(core.ir, core.engine.config, core.compiled))


def renewed(module: Module, engine: Engine) -> Module:
    """A new ``Module`` equal to ``Module(engine, <module's bytes>)``, built from
    ``module``'s decoded and validated IR (:func:`renew_core`); ``engine`` may differ
    from ``module``'s engine."""
    if not isinstance(engine, Engine):
        raise TypeError("expected an Engine")
    return Module._from_core(renew_core(engine.ptr(), module.ptr()))


def _deserialize_core(engine: EngineCore, data: bytes) -> ModuleCore:
    """Check ``data`` against this wasmrt and engine, then rebuild it without recompiling."""
    return host_alloc_call(len(data), _rebuild_core, engine, data)


def _rebuild_core(engine: EngineCore, data: bytes) -> ModuleCore:
    module, compiled = serialization.deserialize_compiled(data, engine.config)
    return build_from_ir(engine, module, compiled)
