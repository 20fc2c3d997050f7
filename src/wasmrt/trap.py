"""Wasm traps: ``TrapCode`` (wasmtime-py's enum, numbered as the C API) and ``Trap``.

Invariants:
- ``Trap`` is not a ``WasmtimeError`` subclass (wasmtime-py compatibility).
- A trap raised by wasm code carries ``trap_code``; a trap created by the host
  (``Trap("msg")``) has ``trap_code is None``.
- ``frames`` lists the innermost frame first; ``StoreCore.call`` fills it in
  (``wasmrt.vm.backtrace.attach_frames``) when a wasm trap (one with a
  ``trap_code``) leaves wasm for the embedder, and ``message`` is re-rendered
  from it on demand in wasmtime-py's layout (``"error while executing at wasm
  backtrace:\n    0:   0x1234 - mod!func\n...\nCaused by:\n    wasm trap:
  <reason>\n"``). A host trap keeps no frames and its message is its text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TrapCode(enum.Enum):
    STACK_OVERFLOW = 0
    MEMORY_OUT_OF_BOUNDS = 1
    HEAP_MISALIGNED = 2
    TABLE_OUT_OF_BOUNDS = 3
    INDIRECT_CALL_TO_NULL = 4
    BAD_SIGNATURE = 5
    INTEGER_OVERFLOW = 6
    INTEGER_DIVISION_BY_ZERO = 7
    BAD_CONVERSION_TO_INTEGER = 8
    UNREACHABLE = 9
    INTERRUPT = 10
    OUT_OF_FUEL = 11
    ATOMIC_WAIT_NON_SHARED_MEMORY = 12
    NULL_REFERENCE = 13
    ARRAY_OUT_OF_BOUNDS = 14
    ALLOCATION_TOO_LARGE = 15
    CAST_FAILURE = 16
    CANNOT_ENTER_COMPONENT = 17
    NO_ASYNC_RESULT = 18
    UNHANDLED_TAG = 19
    CONTINUATION_ALREADY_CONSUMED = 20
    DISABLED_OPCODE = 21
    ASYNC_DEADLOCK = 22
    CANNOT_LEAVE_COMPONENT = 23
    CANNOT_BLOCK_SYNC_TASK = 24
    INVALID_CHAR = 25
    DEBUG_ASSERT_STRING_ENCODING_FINISHED = 26
    DEBUG_ASSERT_EQUAL_CODE_UNITS = 27
    DEBUG_ASSERT_POINTER_ALIGNED = 28
    DEBUG_ASSERT_UPPER_BITS_UNSET = 29
    STRING_OUT_OF_BOUNDS = 30
    LIST_OUT_OF_BOUNDS = 31
    INVALID_DISCRIMINANT = 32
    UNALIGNED_POINTER = 33
    TASK_CANCEL_NOT_CANCELLED = 34
    TASK_CANCEL_OR_RETURN_TWICE = 35
    SUBTASK_CANCEL_AFTER_TERMINAL = 36
    TASK_RETURN_INVALID = 37
    WAITABLE_SET_DROP_HAS_WAITERS = 38
    SUBTASK_DROP_NOT_RESOLVED = 39
    THREAD_NEW_INDIRECT_INVALID_TYPE = 40
    THREAD_NEW_INDIRECT_UNINITIALIZED = 41
    BACKPRESSURE_OVERFLOW = 42
    UNSUPPORTED_CALLBACK_CODE = 43
    CANNOT_RESUME_THREAD = 44
    CONCURRENT_FUTURE_STREAM_OP = 45
    REFERENCE_COUNT_OVERFLOW = 46
    STREAM_OP_TOO_BIG = 47
    WAITABLE_SYNC_AND_ASYNC = 48
    UNCAUGHT_EXCEPTION = 49


#: The wasm-trap message for each code Wasmtime can raise from core wasm.
TRAP_MESSAGES: dict[TrapCode, str] = {
    TrapCode.STACK_OVERFLOW: "call stack exhausted",
    TrapCode.MEMORY_OUT_OF_BOUNDS: "out of bounds memory access",
    TrapCode.HEAP_MISALIGNED: "unaligned atomic",
    TrapCode.TABLE_OUT_OF_BOUNDS: "undefined element: out of bounds table access",
    TrapCode.INDIRECT_CALL_TO_NULL: "uninitialized element",
    TrapCode.BAD_SIGNATURE: "indirect call type mismatch",
    TrapCode.INTEGER_OVERFLOW: "integer overflow",
    TrapCode.INTEGER_DIVISION_BY_ZERO: "integer divide by zero",
    TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    TrapCode.UNREACHABLE: "wasm `unreachable` instruction executed",
    TrapCode.INTERRUPT: "interrupt",
    TrapCode.OUT_OF_FUEL: "all fuel consumed by WebAssembly",
    TrapCode.ATOMIC_WAIT_NON_SHARED_MEMORY: "atomic wait on non-shared memory",
    TrapCode.NULL_REFERENCE: "null reference",
    TrapCode.ARRAY_OUT_OF_BOUNDS: "out of bounds array access",
    TrapCode.ALLOCATION_TOO_LARGE: "allocation size too large",
    TrapCode.CAST_FAILURE: "cast failure",
}

#: The spec testsuite's wording for each trap code (an ``assert_trap`` message starts
#: with one of them and may add a detail: "uninitialized element 2").
SPEC_TRAP_WORDING: dict[TrapCode, tuple[str, ...]] = {
    TrapCode.MEMORY_OUT_OF_BOUNDS: ("out of bounds memory access",),
    TrapCode.TABLE_OUT_OF_BOUNDS: ("undefined element", "out of bounds table access"),
    TrapCode.INDIRECT_CALL_TO_NULL: ("uninitialized element",),
    TrapCode.BAD_SIGNATURE: ("indirect call type mismatch",),
    TrapCode.INTEGER_OVERFLOW: ("integer overflow",),
    TrapCode.INTEGER_DIVISION_BY_ZERO: ("integer divide by zero",),
    TrapCode.BAD_CONVERSION_TO_INTEGER: ("invalid conversion to integer",),
    TrapCode.UNREACHABLE: ("unreachable",),
    TrapCode.STACK_OVERFLOW: ("call stack exhausted",),
}


@dataclass(frozen=True, slots=True)
class Frame:
    """One wasm frame of a trap's backtrace (innermost first in ``Trap.frames``)."""

    func_index: int
    func_name: str | None
    module_name: str | None
    module_offset: int
    func_offset: int


class Trap(Exception):  # noqa: N818 - the wasmtime-py name
    """A wasm trap, or a trap created by the host with ``Trap(message)``."""

    def __init__(self, message: str | TrapCode) -> None:
        if isinstance(message, TrapCode):
            self.trap_code: TrapCode | None = message
            self._reason = TRAP_MESSAGES.get(message, message.name.lower())
        else:
            self.trap_code = None
            self._reason = str(message)
        self.frames: list[Frame] = []
        super().__init__(self._reason)

    @property
    def reason(self) -> str:
        """The bare trap message, without backtrace (``"integer divide by zero"``)."""
        return self._reason

    @property
    def message(self) -> str:
        """wasmtime-py's text: the bare message for a host trap, else the
        backtrace (innermost frame first) and ``wasm trap: <reason>``."""
        if self.trap_code is None:
            return self._reason
        if not self.frames:
            return f"wasm trap: {self._reason}"
        lines = ["error while executing at wasm backtrace:"]
        for i, f in enumerate(self.frames):
            name = f.func_name or f"<wasm function {f.func_index}>"
            module = f.module_name or "<unknown>"
            lines.append(f"  {i:>3}: {f.module_offset:#8x} - {module}!{name}")
        lines.append("")
        lines.append("Caused by:")
        lines.append(f"    wasm trap: {self._reason}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.message
