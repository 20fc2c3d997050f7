"""A refused ``memory.grow``/``table.grow``: -1 for wasm, ``GrowRefused`` for the host API.

Invariants:
- The limiter's ``*_grow_failed`` hook (``notify``) hears of the refusal before
  anything is returned or raised, with the error the host would get.
- The raised error is referenced from no frame of its own traceback (``del``
  before it leaves), so no exception-frame cycle keeps the memory or table,
  and its store, alive until the next garbage collection.
"""

from __future__ import annotations

from collections.abc import Callable

from wasmrt.errors import GrowRefused

__all__ = ["refuse_growth"]


def refuse_growth(
    message: str, from_wasm: bool, notify: Callable[[GrowRefused], object] | None = None
) -> int:
    """-1 when wasm asked (``from_wasm``), else raise ``GrowRefused(message)``."""
    err = GrowRefused(message)
    if notify is not None:
        notify(err)
    if from_wasm:
        return -1
    try:
        raise err
    finally:
        del err
