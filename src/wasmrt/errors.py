"""The exception classes every wasmrt layer raises.

Invariants:
- ``WasmtimeError`` is the base of every non-trap failure, so code written for
  wasmtime-py (``except WasmtimeError``) keeps working.
- ``Trap`` is *not* a ``WasmtimeError`` subclass, exactly as in wasmtime-py.
- ``GrowRefused`` marks the vm's own grow refusals (not a limiter's error),
  so the API tells them apart by class.
- ``OutOfMemory`` is built without calling the allocation hook: its
  constructor only stores an int and a preformatted message, so raising it
  from inside a refused allocation cannot recurse.
- ``format_context``/``context_error`` render an error with its causes as
  Wasmtime prints an ``anyhow`` chain; every layer formats chains with them.
"""

from __future__ import annotations

#: Sizes above this are reported capped (a corrupt length must not print as 10**30 bytes).
MAX_REPORTED_SIZE = 1 << 48


class WasmtimeError(Exception):
    """A failure that is not a wasm trap (bad module, link error, limit, OOM...)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MalformedError(WasmtimeError):
    """The binary (or text) does not follow the Wasm grammar.

    ``offset`` is the byte offset in the binary (or -1), ``section`` the
    section name when known.
    """

    def __init__(self, message: str, offset: int = -1, section: str | None = None) -> None:
        where = []
        if section:
            where.append(f"in {section} section")
        if offset >= 0:
            where.append(f"at offset 0x{offset:x}")
        full = f"{message} ({', '.join(where)})" if where else message
        super().__init__(full)
        self.reason = message
        self.offset = offset
        self.section = section


class WatParseError(WasmtimeError):
    """Text-format error; ``line``/``column`` are 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0, column: int = 0, source: str = "") -> None:
        loc = f"{source or '<input>'}:{line}:{column}: " if line else ""
        super().__init__(f"{loc}{message}")
        self.reason = message
        self.line = line
        self.column = column


class InvalidModuleError(WasmtimeError):
    """The module decodes but fails validation.

    ``func`` is the function index (in the function index space) and
    ``instr`` the instruction position in its body, when the error is in code.
    """

    def __init__(
        self, message: str, func: int | None = None, instr: int | None = None, offset: int = -1
    ) -> None:
        where = []
        if func is not None:
            where.append(f"func {func}")
        if instr is not None:
            where.append(f"instr {instr}")
        if offset >= 0:
            where.append(f"offset 0x{offset:x}")
        full = f"{message} ({', '.join(where)})" if where else message
        super().__init__(full)
        self.reason = message
        self.func = func
        self.instr = instr
        self.offset = offset


class LinkError(WasmtimeError):
    """An import is missing or has the wrong type (``assert_unlinkable``)."""


class OutOfMemory(WasmtimeError):
    """An allocation was refused by the ``try_alloc`` hook (Wasmtime's ``OutOfMemory``)."""

    def __init__(self, requested_allocation_size: int = 0) -> None:
        size = min(max(int(requested_allocation_size), 0), MAX_REPORTED_SIZE)
        # Preformatted here so that str()/repr() later allocate nothing of ours.
        super().__init__(f"out of memory (failed to allocate {size} bytes)")
        self.requested_allocation_size = size


class PoolConcurrencyLimitError(WasmtimeError):
    """A pooling allocator ran out of slots of one kind."""

    def __init__(self, limit: int, kind: str) -> None:
        super().__init__(f"maximum concurrent limit of {limit} for {kind} reached")
        self.limit = limit
        self.kind = kind


class ResourceLimitExceeded(WasmtimeError):
    """A store's instance/memory/table count limit or the limiter refused."""


class GrowRefused(WasmtimeError):
    """A memory or table grow the embedder asked for was refused or failed.

    Raised by ``LinearMemory.grow`` / ``TableInstance.grow`` with
    ``from_wasm=False`` where the wasm instruction would return -1: the
    limiter returned False, the type's maximum (or the pool's clamp) was
    exceeded, or the size overflowed. It is not raised for a refused
    ``try_alloc`` (``OutOfMemory``) nor for an error a limiter raised
    itself; those reach the embedder unchanged. The public API turns it into
    wasmtime-py's "failed to grow ..." error.
    """


def format_context(outer: str, *causes: object) -> str:
    """Render ``outer`` with its causes the way Rust's ``{:?}`` of an anyhow error does.

    One cause: ``outer\\n\\nCaused by:\\n    cause``; several are numbered
    ``    0: ...``, ``    1: ...`` from the outermost inwards.
    """
    if not causes:
        return outer
    lines = [outer, "", "Caused by:"]
    if len(causes) == 1:
        lines.append(f"    {causes[0]}")
    else:
        lines.extend(f"    {i}: {cause}" for i, cause in enumerate(causes))
    return "\n".join(lines)


def context_error(outer: str, error: BaseException) -> WasmtimeError:
    """A ``WasmtimeError`` that adds ``outer`` as context to ``error`` (``__cause__`` is set)."""
    causes: list[str] = []
    chain = getattr(error, "_context_chain", None)
    if isinstance(chain, tuple):
        causes.extend(chain)
    else:
        causes.append(str(error))
    wrapped = WasmtimeError(format_context(outer, *causes))
    wrapped._context_chain = (outer, *causes)  # type: ignore[attr-defined]
    wrapped.__cause__ = error
    return wrapped
