"""``ExitTrap``: wasmtime-py's WASI ``proc_exit`` error.

Invariants:
- A ``WasmtimeError`` subclass carrying ``code: int``, raised by
  ``wasmrt.wasi``'s ``proc_exit`` (code in ``[0, 126)``); it is the guest's
  outcome, not a runtime failure.
"""

from __future__ import annotations

from wasmrt.errors import WasmtimeError

__all__ = ["ExitTrap"]


class ExitTrap(WasmtimeError):
    """The process exited through WASI's ``proc_exit`` with ``code``."""

    def __init__(self, message: str = "", code: int = 0) -> None:
        super().__init__(message or f"Exited with i32 exit status {code}")
        self.code = code
