"""Generated code, produced once per process: function -> source -> Python code object.

Invariants:
- A function's source (``def f<k>(...)`` from ``codegen``) is compiled as a
  unit that wraps it in ``def _mk(<free names>):``, so every name the
  function binds per instance (``FREE_NAME``: memories, tables, globals,
  functions, types, the store...) is a free variable of the resulting code
  object and the binder (``wasmrt.compile.binding``) supplies the cells.
  Everything else it reads is a global of its variant's namespace.
- Two content-addressed caches: ``cached_source``/``remember_source`` map a
  function's content key (``ModuleCodegen.function_key``: its body, locals
  and type, plus a digest of the module facts and option variant code
  generation reads) to its generated source, so an identical function in
  any module (e.g. the same module decoded again) is not generated again;
  ``function_code`` maps source text, which determines the code object
  completely, to the code object, so the same source is compiled once.
  Each drops its oldest entries once its weight (characters of source, plus
  ``IR_WEIGHT`` per instruction a source-cache key holds on to) exceeds
  ``MAX_CACHED_CHARS``.
- ``CodeStore`` is the seam for a persistent cache below the process caches
  (``wasmrt.runtime.diskcache`` implements it for ``Config.cache``): the
  variant asks it when the source cache misses, and a hit seeds both
  process caches (``remember_source``, ``remember_code``), so it replaces
  code generation and ``compile()`` and nothing else; a function the process
  caches already hold is offered to it if it ``wants`` it.
- Nothing here asks ``try_alloc``: the owner of the compiled code (a
  ``CompiledVariant``) asks once per function it gets code for, hit or miss,
  so the allocation sequence a module makes does not depend on what the
  process compiled before.
- ``compile()`` errors other than ``RecursionError`` propagate unchanged; a
  ``RecursionError`` (the compiler's nesting checks count the caller's
  Python frames, so a function first called deep in wasm recursion can hit
  it) is retried once on a fresh thread's stack; if no thread can be
  started, the ``RecursionError`` stands (the store reports stack overflow).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import CodeType
from typing import Any, Protocol, TypeVar

from wasmrt.compile.codegen import ContentKey, FunctionSource

__all__ = [
    "FREE_NAME",
    "CodeStore",
    "MAX_CACHED_CHARS",
    "cached_source",
    "clear",
    "free_names",
    "function_code",
    "on_fresh_stack",
    "remember_code",
    "remember_source",
]

#: Names generated code binds per instance (see ``wasmrt.compile.binding``).
FREE_NAME = re.compile(r"\b(?:M0|_E|_S|_I|(?:T|_t|_r|G|_gv|F|_c|_ty|f)\d+)\b")
#: Budget of each process-wide cache, in characters of cached source (a source
#: cache entry also counts ``IR_WEIGHT`` per instruction its key holds).
MAX_CACHED_CHARS = 32 * 1024 * 1024
IR_WEIGHT = 64
#: Filename of generated code in tracebacks.
FILENAME = "<wasm module>"

_A = TypeVar("_A")
_R = TypeVar("_R")
_codes: dict[str, CodeType] = {}
_chars = [0]
_sources: dict[ContentKey, FunctionSource] = {}
_source_chars = [0]
_lock = threading.Lock()


def _remember(table: dict[Any, Any], chars: list[int], key: object, value: Any, size: int) -> None:
    with _lock:
        if key in table:
            return
        table[key] = value
        chars[0] += size
        while chars[0] > MAX_CACHED_CHARS and len(table) > 1:
            oldest = next(iter(table))
            chars[0] -= _size(oldest, table[oldest])
            del table[oldest]


def _size(key: object, value: Any) -> int:
    if isinstance(key, ContentKey):
        return len(value.text) + IR_WEIGHT * key.weight
    return len(str(key))


def clear() -> None:
    """Forget every cached source and code object (benchmarks measure cold compiles)."""
    with _lock:
        _sources.clear()
        _codes.clear()
        _chars[0] = _source_chars[0] = 0


def cached_source(key: ContentKey) -> FunctionSource | None:
    """The source generated earlier for a function with content key ``key``, if kept."""
    return _sources.get(key)


def remember_source(key: ContentKey, source: FunctionSource) -> None:
    _remember(_sources, _source_chars, key, source, _size(key, source))


def remember_code(source: str, code: CodeType) -> None:
    """Keep ``code`` as the compiled form of ``source`` (a persistent cache's hit)."""
    _remember(_codes, _chars, source, code, len(source))


class CodeStore(Protocol):
    """A cache of generated code that outlives the process (best effort: it never fails
    its caller; a function it cannot keep or give back is simply generated again)."""

    def load(
        self, key: ContentKey, fuel: bool, epoch: bool
    ) -> tuple[FunctionSource, CodeType] | None:
        """The source and code kept for the function with content key ``key``, if any."""
        ...

    def wants(self, key: ContentKey, fuel: bool, epoch: bool) -> bool:
        """Whether it lacks (and could keep) an entry for ``key``."""
        ...

    def save(
        self, key: ContentKey, fuel: bool, epoch: bool, source: FunctionSource, code: CodeType
    ) -> None:
        """Keep ``source`` and its compiled ``code`` for ``key``."""
        ...


def free_names(source: str) -> list[str]:
    """The per-instance names ``source`` reads, sorted."""
    return sorted(set(FREE_NAME.findall(source)))


def _unit(source: str) -> str:
    params = ", ".join(free_names(source))
    body = "\n".join("    " + line if line else line for line in source.split("\n"))
    return f"def _mk({params}):\n{body}\n"


def _compile(source: str) -> CodeType:
    module = compile(_unit(source), FILENAME, "exec")
    mk = next(c for c in module.co_consts if isinstance(c, CodeType))
    return next(c for c in mk.co_consts if isinstance(c, CodeType))


def on_fresh_stack(fn: Callable[[_A], _R], arg: _A) -> _R:
    """``fn(arg)`` on a new thread's (empty) stack; its result, or its exception re-raised."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wasmrt-compile") as pool:
        try:
            future = pool.submit(fn, arg)
        except RuntimeError:  # no thread to be had: the caller's stack stays exhausted
            raise RecursionError("no fresh stack to compile on") from None
        return future.result()


def function_code(source: str) -> CodeType:
    """The code object of the function ``source`` defines (cached)."""
    code = _codes.get(source)
    if code is not None:
        return code
    try:
        code = _compile(source)
    except RecursionError:
        code = on_fresh_stack(_compile, source)
    _remember(_codes, _chars, source, code, len(source))
    return code
