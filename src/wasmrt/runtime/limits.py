"""Store resource limiting: ``ResourceLimiter``, ``ResourceLimiterAsync``, ``StoreLimits``.

This models Wasmtime's ``runtime/limits.rs`` (see WASMTIME-REFERENCE.md 2.1-2.2).

Invariants:
- A limiter answers ``*_growing(current, desired, maximum)`` in one of three
  ways: ``True`` allows (the runtime still enforces ``maximum`` afterwards),
  ``False`` refuses (wasm ``memory.grow``/``table.grow`` give -1, embedder
  APIs raise ``WasmtimeError``), raising aborts the operation and the raised
  exception propagates unchanged to whoever drives the vm.
- Memory sizes are bytes (multiples of the 64 KiB page); table sizes are
  elements. ``maximum is None`` means unbounded.
- ``*_grow_failed(error)`` is only called after an *allowed* grow failed (or
  before asking, when the type cannot represent the new size); never after a
  refusal. By default it does nothing and the failure stays a plain -1/error.
- ``instances()/tables()/memories()`` are read once, when the limiter is
  attached to a store, and default to 10_000 each.
- ``StoreLimits`` limits apply to *each* memory and *each* table separately,
  never to a store-wide total; every ``StoreLimits.from_set_limits`` call
  builds a fresh object, so unspecified (negative) values return to their
  defaults (wasmtime-py ``Store.set_limits`` semantics).
- Nothing here allocates through ``try_alloc``: a limiter is policy, not
  storage, and its answers are plain bools or exceptions.

How a store uses an async limiter (``ResourceLimiterAsync``): the store wraps
it in ``AsyncLimiterAdapter`` and installs the adapter as ``StoreCore.limiter``
(the vm only ever calls the synchronous protocol). Every ``*_async`` embedder
API runs inside ``adapter.async_scope(loop)``; outside such a scope the
adapter refuses to decide and raises ``WasmtimeError`` (Wasmtime rejects sync
APIs on a store with an async limiter), and the sync APIs check up front with
``require_sync``. Inside a scope a decision is found, in order:
1. a pre-awaited answer: ``Memory.grow_async`` first ``await``s
   ``adapter.predecide_memory(current, desired, maximum)`` (or
   ``predecide_table``) with the arguments the vm will pass, and the vm's
   call with the same arguments consumes it;
2. from a worker thread (``Func.call_async`` and ``instantiate_async`` run
   wasm there, Wasmtime's fiber): the coroutine is scheduled on the scope's
   event loop with ``run_coroutine_threadsafe`` and the worker blocks until
   it finishes, so the limiter may really suspend;
3. on the loop's own thread: the coroutine is driven synchronously if it
   never suspends, else ``WasmtimeError``.
Pending answers that were never consumed are dropped when the outermost scope
ends. The worker thread is the fiber Wasmtime allocates for an async call:
one started for the operation alone (a private single-thread executor), so
when the host cannot start it (no memory for its stack, a thread limit) the
operation never ran and the outcome is ``OutOfMemory`` of the thread's stack
size, as when Wasmtime cannot allocate a fiber stack; never a bare
``RuntimeError: can't start new thread``. A store is used by one task at a
time (as in Wasmtime, where an async call borrows the store mutably).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from wasmrt.errors import OutOfMemory, WasmtimeError, context_error, format_context

__all__ = [
    "DEFAULT_INSTANCE_LIMIT",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TABLE_LIMIT",
    "AsyncLimiterAdapter",
    "ResourceLimiter",
    "ResourceLimiterAsync",
    "StoreLimits",
    "StoreLimitsBuilder",
    "async_adapter_of",
    "context_error",
    "drive_sync",
    "format_context",
    "require_sync",
    "run_async",
]

_T = TypeVar("_T")

#: Wasmtime's ``DEFAULT_INSTANCE_LIMIT``.
DEFAULT_INSTANCE_LIMIT = 10_000
#: Wasmtime's ``DEFAULT_TABLE_LIMIT``.
DEFAULT_TABLE_LIMIT = 10_000
#: Wasmtime's ``DEFAULT_MEMORY_LIMIT``.
DEFAULT_MEMORY_LIMIT = 10_000

#: Stack size reported when a worker thread cannot be started and none was set
#: (``threading.stack_size()`` is 0): the host's default, 8 MiB on Linux.
DEFAULT_THREAD_STACK = 8 << 20

_log = logging.getLogger("wasmrt.limits")


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


class ResourceLimiter:
    """Base class for store resource limiters, with Wasmtime's defaults.

    Subclasses override what they need. The two ``*_growing`` methods are
    required in Rust; here the base allows every request, so a subclass that
    only cares about memory can leave ``table_growing`` alone.
    """

    def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        """May a linear memory grow from ``current`` to ``desired`` bytes?"""
        return True

    def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        """May a table grow from ``current`` to ``desired`` elements?"""
        return True

    def memory_grow_failed(self, error: BaseException) -> None:
        """An allowed memory grow failed; raise to turn the failure into an error/trap."""
        _log.debug("ignoring memory growth failure error: %s", error)

    def table_grow_failed(self, error: BaseException) -> None:
        """An allowed table grow failed; raise to turn the failure into an error/trap."""
        _log.debug("ignoring table growth failure error: %s", error)

    def instances(self) -> int:
        """Maximum number of instances in the store (read once, at attach time)."""
        return DEFAULT_INSTANCE_LIMIT

    def tables(self) -> int:
        """Maximum number of tables in the store (read once, at attach time)."""
        return DEFAULT_TABLE_LIMIT

    def memories(self) -> int:
        """Maximum number of linear memories in the store (read once, at attach time)."""
        return DEFAULT_MEMORY_LIMIT


class ResourceLimiterAsync:
    """Like ``ResourceLimiter``, but the two ``*_growing`` decisions are coroutines.

    Install it through the store's async API; the store wraps it in an
    ``AsyncLimiterAdapter`` (see the module docstring).
    """

    async def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return True

    async def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return True

    def memory_grow_failed(self, error: BaseException) -> None:
        _log.debug("ignoring memory growth failure error: %s", error)

    def table_grow_failed(self, error: BaseException) -> None:
        _log.debug("ignoring table growth failure error: %s", error)

    def instances(self) -> int:
        return DEFAULT_INSTANCE_LIMIT

    def tables(self) -> int:
        return DEFAULT_TABLE_LIMIT

    def memories(self) -> int:
        return DEFAULT_MEMORY_LIMIT


class _Suspended(Exception):
    """The coroutine wanted to suspend; internal to ``drive_sync``."""


def drive_sync(awaitable: Awaitable[Any], what: str) -> Any:
    """Run ``awaitable`` to completion synchronously, if it never suspends.

    Raises ``WasmtimeError`` (and closes the coroutine) when it tries to wait
    for something: that can only be handled by an ``*_async`` API.
    """
    coro: Coroutine[Any, Any, Any]
    if isinstance(awaitable, Coroutine):
        coro = awaitable
    else:

        async def _wrap() -> Any:
            return await awaitable

        coro = _wrap()
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise WasmtimeError(
        f"the async resource limiter suspended while deciding {what} during a synchronous "
        "operation; use the `_async` variant of this API"
    )


class AsyncLimiterAdapter(ResourceLimiter):
    """Presents a ``ResourceLimiterAsync`` through the synchronous limiter protocol.

    See the module docstring for where a decision comes from. ``predecide_*``
    awaits the limiter ahead of a synchronous operation; the matching
    synchronous call (same arguments) then consumes that answer.
    """

    def __init__(self, inner: ResourceLimiterAsync) -> None:
        self.inner = inner
        self._decided: dict[tuple[str, int, int, int | None], bool] = {}
        self._depth = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    @contextmanager
    def async_scope(self, loop: asyncio.AbstractEventLoop | None = None) -> Iterator[None]:
        """Mark an ``*_async`` operation as running (nested scopes share the outer loop)."""
        outer = self._depth == 0
        if outer:
            self._loop = loop
            self._loop_thread = threading.get_ident() if loop is not None else None
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._loop = None
                self._loop_thread = None
                self._decided.clear()

    @property
    def in_async_scope(self) -> bool:
        return self._depth > 0

    async def predecide_memory(self, current: int, desired: int, maximum: int | None) -> bool:
        """Await the limiter's memory decision now; returns it as well."""
        answer = bool(await self.inner.memory_growing(current, desired, maximum))
        self._decided[("memory", current, desired, maximum)] = answer
        return answer

    async def predecide_table(self, current: int, desired: int, maximum: int | None) -> bool:
        """Await the limiter's table decision now; returns it as well."""
        answer = bool(await self.inner.table_growing(current, desired, maximum))
        self._decided[("table", current, desired, maximum)] = answer
        return answer

    def clear(self) -> None:
        self._decided.clear()

    def _decide(self, key: tuple[str, int, int, int | None], what: str) -> bool:
        if key in self._decided:
            return self._decided.pop(key)
        if self._depth == 0:
            raise WasmtimeError(
                f"an async resource limiter cannot decide {what} for a synchronous operation; "
                "use the `_async` variant of this API"
            )
        kind, current, desired, maximum = key
        growing = self.inner.memory_growing if kind == "memory" else self.inner.table_growing
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            future = asyncio.run_coroutine_threadsafe(
                _as_coroutine(growing(current, desired, maximum)), loop
            )
            return bool(future.result())
        return bool(drive_sync(growing(current, desired, maximum), what))

    def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return self._decide(("memory", current, desired, maximum), "a memory grow")

    def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        return self._decide(("table", current, desired, maximum), "a table grow")

    def memory_grow_failed(self, error: BaseException) -> None:
        self.inner.memory_grow_failed(error)

    def table_grow_failed(self, error: BaseException) -> None:
        self.inner.table_grow_failed(error)

    def instances(self) -> int:
        return self.inner.instances()

    def tables(self) -> int:
        return self.inner.tables()

    def memories(self) -> int:
        return self.inner.memories()


async def _as_coroutine(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


def async_adapter_of(store_core: Any) -> AsyncLimiterAdapter | None:
    """The store's ``AsyncLimiterAdapter``, or ``None`` if its limiter is synchronous."""
    limiter = getattr(store_core, "limiter", None)
    return limiter if isinstance(limiter, AsyncLimiterAdapter) else None


def require_sync(store_core: Any, api: str) -> None:
    """Raise ``WasmtimeError`` if ``api`` (a sync API) is used on a store with an async limiter.

    Inside an ``*_async`` operation (e.g. a host function called by
    ``call_async``) sync APIs are allowed: limiter decisions are routed as
    the module docstring describes.
    """
    adapter = async_adapter_of(store_core)
    if adapter is not None and not adapter.in_async_scope:
        raise WasmtimeError(
            f"cannot use `{api}` on a store with an async resource limiter; "
            f"use `{api}_async` instead"
        )


async def run_async(store_core: Any, operation: Callable[[], _T], *, worker: bool) -> _T:
    """Run the synchronous ``operation`` as an ``*_async`` operation of ``store_core``.

    With a synchronous limiter (or none) it simply runs. With an async one it
    runs inside the adapter's scope: on a worker thread when ``worker`` (wasm
    may grow memories while it runs; the limiter's coroutines run on this
    event loop meanwhile), else right here (decisions were pre-awaited).
    The worker gets a copy of the current ``contextvars`` (``try_alloc``
    hooks included); exceptions propagate unchanged.
    """
    adapter = async_adapter_of(store_core)
    if adapter is None:
        return operation()
    loop = asyncio.get_running_loop()
    with adapter.async_scope(loop):
        if worker and adapter._loop is loop:
            return await _on_worker(operation)
        return operation()


async def _on_worker(operation: Callable[[], _T]) -> _T:
    """``operation()`` on a thread of its own, in a copy of the current context.

    The thread is started before the operation is handed over, so a thread
    the host refuses is ``OutOfMemory`` with nothing run (see module doc).
    No local here holds the future: its error's traceback includes this frame.
    Once the operation ended the worker is joined (it drops the operation, and
    so the store, before it exits: nothing of the store outlives the call); a
    cancelled await never blocks the loop on an operation still running.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wasmrt-async")
    cancelled = False
    try:
        return await asyncio.wrap_future(_start(pool, operation))
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        pool.shutdown(wait=not cancelled)


def _start(pool: ThreadPoolExecutor, operation: Callable[[], _T]) -> Future[_T]:
    try:
        return pool.submit(contextvars.copy_context().run, operation)
    except (RuntimeError, MemoryError):  # the worker's thread could not be started
        pool.shutdown(wait=False, cancel_futures=True)
        raise OutOfMemory(threading.stack_size() or DEFAULT_THREAD_STACK) from None


class StoreLimits(ResourceLimiter):
    """Wasmtime's ``StoreLimits``: per-memory bytes, per-table elements, store counts.

    Build it with ``StoreLimitsBuilder`` or ``StoreLimits.from_set_limits``.
    """

    __slots__ = (
        "_instances",
        "_memories",
        "_tables",
        "memory_size",
        "table_elements",
        "trap_on_grow_failure",
    )

    def __init__(
        self,
        memory_size: int | None = None,
        table_elements: int | None = None,
        instances: int = DEFAULT_INSTANCE_LIMIT,
        tables: int = DEFAULT_TABLE_LIMIT,
        memories: int = DEFAULT_MEMORY_LIMIT,
        trap_on_grow_failure: bool = False,
    ) -> None:
        self.memory_size = None if memory_size is None else _check_count("memory_size", memory_size)
        self.table_elements = (
            None if table_elements is None else _check_count("table_elements", table_elements)
        )
        self._instances = _check_count("instances", instances)
        self._tables = _check_count("tables", tables)
        self._memories = _check_count("memories", memories)
        if not isinstance(trap_on_grow_failure, bool):
            raise TypeError("trap_on_grow_failure must be a bool")
        self.trap_on_grow_failure = trap_on_grow_failure

    @classmethod
    def from_set_limits(
        cls,
        memory_size: int = -1,
        table_elements: int = -1,
        instances: int = -1,
        tables: int = -1,
        memories: int = -1,
    ) -> StoreLimits:
        """wasmtime-py's ``Store.set_limits``: a fresh object; a negative value keeps the default."""
        for name, value in (
            ("memory_size", memory_size),
            ("table_elements", table_elements),
            ("instances", instances),
            ("tables", tables),
            ("memories", memories),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        return cls(
            memory_size=memory_size if memory_size >= 0 else None,
            table_elements=table_elements if table_elements >= 0 else None,
            instances=instances if instances >= 0 else DEFAULT_INSTANCE_LIMIT,
            tables=tables if tables >= 0 else DEFAULT_TABLE_LIMIT,
            memories=memories if memories >= 0 else DEFAULT_MEMORY_LIMIT,
        )

    def __repr__(self) -> str:
        return (
            f"StoreLimits(memory_size={self.memory_size}, table_elements={self.table_elements}, "
            f"instances={self._instances}, tables={self._tables}, memories={self._memories}, "
            f"trap_on_grow_failure={self.trap_on_grow_failure})"
        )

    def memory_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        allow = not (self.memory_size is not None and desired > self.memory_size)
        if allow and maximum is not None and desired > maximum:
            allow = False
        if not allow and self.trap_on_grow_failure:
            raise WasmtimeError(f"forcing trap when growing memory to {desired} bytes")
        return allow

    def table_growing(self, current: int, desired: int, maximum: int | None) -> bool:
        allow = not (self.table_elements is not None and desired > self.table_elements)
        if allow and maximum is not None and desired > maximum:
            allow = False
        if not allow and self.trap_on_grow_failure:
            raise WasmtimeError(f"forcing trap when growing table to {desired} elements")
        return allow

    def memory_grow_failed(self, error: BaseException) -> None:
        if self.trap_on_grow_failure:
            raise context_error("forcing a memory growth failure to be a trap", error)
        super().memory_grow_failed(error)

    def table_grow_failed(self, error: BaseException) -> None:
        if self.trap_on_grow_failure:
            raise context_error("forcing a table growth failure to be a trap", error)
        super().table_grow_failed(error)

    def instances(self) -> int:
        return self._instances

    def tables(self) -> int:
        return self._tables

    def memories(self) -> int:
        return self._memories


class StoreLimitsBuilder:
    """Wasmtime's ``StoreLimitsBuilder``: chainable setters, then ``build()``."""

    def __init__(self) -> None:
        self._memory_size: int | None = None
        self._table_elements: int | None = None
        self._instances = DEFAULT_INSTANCE_LIMIT
        self._tables = DEFAULT_TABLE_LIMIT
        self._memories = DEFAULT_MEMORY_LIMIT
        self._trap = False

    def memory_size(self, limit: int) -> StoreLimitsBuilder:
        """Bytes any one linear memory may grow to."""
        self._memory_size = _check_count("memory_size", limit)
        return self

    def table_elements(self, limit: int) -> StoreLimitsBuilder:
        """Elements any one table may grow to."""
        self._table_elements = _check_count("table_elements", limit)
        return self

    def instances(self, limit: int) -> StoreLimitsBuilder:
        self._instances = _check_count("instances", limit)
        return self

    def tables(self, limit: int) -> StoreLimitsBuilder:
        self._tables = _check_count("tables", limit)
        return self

    def memories(self, limit: int) -> StoreLimitsBuilder:
        self._memories = _check_count("memories", limit)
        return self

    def trap_on_grow_failure(self, trap: bool) -> StoreLimitsBuilder:
        """Turn refusals and failed grows into errors (traps) instead of -1."""
        if not isinstance(trap, bool):
            raise TypeError("trap_on_grow_failure must be a bool")
        self._trap = trap
        return self

    def build(self) -> StoreLimits:
        return StoreLimits(
            memory_size=self._memory_size,
            table_elements=self._table_elements,
            instances=self._instances,
            tables=self._tables,
            memories=self._memories,
            trap_on_grow_failure=self._trap,
        )
