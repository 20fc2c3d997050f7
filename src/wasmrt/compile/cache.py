"""Generated function source -> Python code object, compiled once per process.

Invariants:
- A function's source (``def f<k>(...)`` from ``codegen``) is compiled as a
  unit that wraps it in ``def _mk(<free names>):``, so every name the
  function binds per instance (``FREE_NAME``: memories, tables, globals,
  functions, types, the store...) is a free variable of the resulting code
  object and the binder (``wasmrt.compile.binding``) supplies the cells.
  Everything else it reads is a global of its variant's namespace.
- The cache is content-addressed: the key is the function's source text,
  which determines the code object completely (the same body, types and
  option variant generate the same text), so identical functions in any
  module of the process share one code object. Entries are kept until
  their sources exceed ``MAX_CACHED_CHARS`` in total, then the oldest go.
- Nothing here asks ``try_alloc``: the owner of the compiled code (a
  ``CompiledVariant``) asks once per function it gets code for, hit or miss,
  so the allocation sequence a module makes does not depend on what the
  process compiled before.
- ``compile()`` errors other than ``RecursionError`` propagate unchanged; a
  ``RecursionError`` (the compiler's nesting checks count the caller's
  Python frames, so a function first called deep in wasm recursion can hit
  it) is retried once on a fresh thread's stack.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import CodeType
from typing import TypeVar

__all__ = ["FREE_NAME", "MAX_CACHED_CHARS", "free_names", "function_code", "on_fresh_stack"]

#: Names generated code binds per instance (see ``wasmrt.compile.binding``).
FREE_NAME = re.compile(r"\b(?:M0|_E|_S|_I|(?:T|_t|_r|G|_gv|F|_c|_ty|f)\d+)\b")
#: Budget of the process-wide cache, in characters of cached source.
MAX_CACHED_CHARS = 64 * 1024 * 1024
#: Filename of generated code in tracebacks.
FILENAME = "<wasm module>"

_A = TypeVar("_A")
_R = TypeVar("_R")
_codes: dict[str, CodeType] = {}
_chars = [0]
_lock = threading.Lock()


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
        return pool.submit(fn, arg).result()


def function_code(source: str) -> CodeType:
    """The code object of the function ``source`` defines (cached)."""
    code = _codes.get(source)
    if code is not None:
        return code
    try:
        code = _compile(source)
    except RecursionError:
        code = on_fresh_stack(_compile, source)
    with _lock:
        if source not in _codes:
            _codes[source] = code
            _chars[0] += len(source)
            while _chars[0] > MAX_CACHED_CHARS and len(_codes) > 1:
                oldest = next(iter(_codes))
                _chars[0] -= len(oldest)
                del _codes[oldest]
    return code
