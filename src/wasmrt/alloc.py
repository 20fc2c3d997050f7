"""The single allocation choke point: ``try_alloc(size, kind)``.

Invariants:
- Every allocation wasmrt makes on a guest's or an embedder's behalf first
  calls ``try_alloc``; the call either returns ``None`` (granted) or raises
  ``OutOfMemory`` (refused). Nothing is allocated before the grant.
- The installed hook lives in a ``contextvars.ContextVar``: each thread has
  its own (a new thread starts with no hook) and each asyncio task inherits a
  copy of its creator's, so concurrent tests never see each other's hooks.
- A site whose Wasm semantics absorb failure (``memory.grow`` and
  ``table.grow`` return -1) passes ``absorbing=True``; the hook then knows a
  refusal there is handled by design, not missed.
- ``OutOfMemory`` construction never calls back into the hook.
- A fallible container asks on growth only; ``put_reserved``/``append_reserved``
  fill room an earlier ``reserve`` was granted and never ask (reserve first,
  change state after, so an operation stays all-or-none).
- The host's own refusal has the hook's outcome: code that really allocates
  a large buffer (linear-memory bytes, table element lists, segment copies)
  runs inside ``with HostAlloc(size):``, which turns a ``MemoryError`` into
  ``OutOfMemory(size)``, the exception a refusing hook raises at that site.
  Whatever handles the hook's refusal there (``memory.grow`` from wasm
  returning -1, instantiation's cleanup guard) thus handles both.
- Work whose many small allocations grow with its input (decoding,
  validating, reading text, serialising a module) runs through
  ``host_alloc_call(size, fn, ...)``: a ``MemoryError`` anywhere in it leaves
  as ``OutOfMemory(size)``, raised once the failed work's frames are gone.
  Such work builds new objects only, so a failure changes nothing the caller
  owns; the modelled ``try_alloc`` sites inside it are unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, Protocol, TypeVar

from wasmrt.errors import OutOfMemory

__all__ = [
    "AllocHook",
    "HostAlloc",
    "AllocKind",
    "OutOfMemory",
    "TryDict",
    "TryList",
    "current_hook",
    "host_alloc_call",
    "install_hook",
    "try_alloc",
]

#: Bytes charged per slot of a list or dict (a pointer on 64-bit hosts).
SLOT_SIZE = 8


class AllocKind(enum.Enum):
    """What an allocation is for; reported to hooks and in oomfuzz's site table."""

    STORE = "store"
    ENGINE = "engine"
    INSTANCE = "instance"
    MEMORY = "memory"  # linear-memory bytes
    TABLE = "table"  # table elements
    GLOBAL = "global"
    FUNC = "func"  # function references and host functions
    SEGMENT = "segment"  # element/data segment copies
    LINKER = "linker"  # linker definitions
    MODULE = "module"  # decoded module sections
    CODE = "code"  # compiled code
    CALL = "call"  # host-call argument and result buffers
    TEXT = "text"  # text-format parsing
    LIST = "list"  # growth of internal lists and maps
    WASI = "wasi"  # WASI state made for a guest: descriptors, buffers, listings, paths
    OTHER = "other"


class AllocHook(Protocol):
    """Called before each allocation; raise ``OutOfMemory`` to refuse it."""

    def __call__(self, size: int, kind: AllocKind, absorbing: bool) -> None: ...


_HOOK: ContextVar[AllocHook | None] = ContextVar("wasmrt_alloc_hook", default=None)


def try_alloc(size: int, kind: AllocKind, absorbing: bool = False) -> None:
    """Ask permission to allocate ``size`` bytes for ``kind``.

    Raises ``OutOfMemory`` when the installed hook refuses.
    """
    hook = _HOOK.get()
    if hook is not None:
        hook(size, kind, absorbing)


class HostAlloc:
    """``with HostAlloc(size):`` around a real allocation of about ``size`` bytes.

    A ``MemoryError`` raised in the block (the host refused: address-space or
    memory limits) leaves it as ``OutOfMemory(size)``, exactly what a hook
    refusing ``try_alloc(size, ...)`` at the same site raises. The block must
    change nothing before its allocation fails (every user allocates first).
    """

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        if exc_type is not None and issubclass(exc_type, MemoryError):
            raise OutOfMemory(self.size) from None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def host_alloc_call(size: int, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """``fn(*args, **kwargs)``, with a host ``MemoryError`` in it leaving as ``OutOfMemory(size)``.

    For work that allocates in proportion to its input (``size``: the input's
    length) at many places no hook is asked, because each is small: the
    host refusing any of them is one outcome, the one a refused hook has.
    The ``OutOfMemory`` is raised after the handler: by then the traceback
    (and the half-built result its frames hold) is released, so raising it
    does not need the memory that just ran out.
    """
    try:
        return fn(*args, **kwargs)
    except MemoryError:
        pass  # leave the handler first (see above); the OutOfMemory replaces it
    raise OutOfMemory(size)


def current_hook() -> AllocHook | None:
    return _HOOK.get()


@contextmanager
def install_hook(hook: AllocHook | None) -> Iterator[AllocHook | None]:
    """Install ``hook`` for the current context (thread/task) while the block runs.

    Nesting is allowed: the previous hook comes back on exit, even when the
    block raises. ``None`` removes any hook for the duration.
    """
    token = _HOOK.set(hook)
    try:
        yield hook
    finally:
        _HOOK.reset(token)


T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def _next_capacity(needed: int, current: int) -> int:
    return max(needed, current * 2, 4)


class TryList(list[T]):
    """A list that asks ``try_alloc`` whenever its capacity must grow.

    Mirrors Wasmtime's fallible ``Vec``: growth doubles the tracked capacity,
    so a sequence of appends costs O(log n) hook calls. If the hook refuses,
    the list is unchanged.
    """

    __slots__ = ("_cap", "_kind")

    def __init__(self, items: Iterable[T] = (), kind: AllocKind = AllocKind.LIST) -> None:
        super().__init__()
        self._cap = 0
        self._kind = kind
        self.extend(items)

    @classmethod
    def with_capacity(cls, capacity: int, kind: AllocKind = AllocKind.LIST) -> TryList[T]:
        out: TryList[T] = cls(kind=kind)
        out.reserve(capacity, exact=True)
        return out

    @property
    def capacity(self) -> int:
        return self._cap

    def reserve(self, total: int, exact: bool = False) -> None:
        """Make room for ``total`` elements in all (amortised doubling unless ``exact``)."""
        if total > self._cap:
            new_cap = total if exact else _next_capacity(total, self._cap)
            try_alloc((new_cap - self._cap) * SLOT_SIZE, self._kind)
            self._cap = new_cap

    def append(self, item: T) -> None:
        if len(self) >= self._cap:
            self.reserve(len(self) + 1)
        super().append(item)

    def append_reserved(self, item: T) -> None:
        """Append into room already granted (``reserve``/``with_capacity``); never asks.

        As ``TryDict.put_reserved``: no allocation site, and ``RuntimeError`` (a
        bug in the caller) when no reserved room is left.
        """
        if len(self) >= self._cap:
            raise RuntimeError("TryList.append_reserved: no reserved room left (reserve first)")
        super().append(item)

    def extend(self, items: Iterable[T]) -> None:
        items = items if isinstance(items, (list, tuple)) else list(items)
        self.reserve(len(self) + len(items))
        super().extend(items)

    def insert(self, index: int, item: T) -> None:  # type: ignore[override]
        self.reserve(len(self) + 1)
        super().insert(index, item)

    def __iadd__(self, items: Iterable[T]) -> TryList[T]:  # type: ignore[override,misc]
        self.extend(items)
        return self


class TryDict(dict[K, V]):
    """A dict that asks ``try_alloc`` when a new key needs more capacity."""

    __slots__ = ("_cap", "_kind")

    def __init__(self, kind: AllocKind = AllocKind.LIST) -> None:
        super().__init__()
        self._cap = 0
        self._kind = kind

    @classmethod
    def with_capacity(cls, capacity: int, kind: AllocKind = AllocKind.LIST) -> TryDict[K, V]:
        out: TryDict[K, V] = cls(kind=kind)
        out.reserve(capacity, exact=True)
        return out

    def reserve(self, total: int, exact: bool = False) -> None:
        if total > self._cap:
            new_cap = total if exact else _next_capacity(total, self._cap)
            # A dict entry is a hash, a key and a value.
            try_alloc((new_cap - self._cap) * 3 * SLOT_SIZE, self._kind)
            self._cap = new_cap

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self and len(self) >= self._cap:
            self.reserve(len(self) + 1)
        super().__setitem__(key, value)

    def put_reserved(self, key: K, value: V) -> None:
        """Insert into room already granted (``reserve``/``with_capacity``); never asks.

        For operations that stay all-or-none by reserving first and changing
        state after: the insert itself cannot fail, and is no allocation site.
        A new key with no room left is a bug in the caller: ``RuntimeError``,
        never a silent, unaccounted allocation.
        """
        if key not in self and len(self) >= self._cap:
            raise RuntimeError("TryDict.put_reserved: no reserved room left (reserve first)")
        super().__setitem__(key, value)

    def setdefault(self, key: K, default: V) -> V:  # type: ignore[override]
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, other: dict[K, V] | Iterable[tuple[K, V]] = (), /) -> None:  # type: ignore[override]
        """Insert every pair, all or none: room for the new keys is reserved first."""
        items = list(other.items() if isinstance(other, dict) else other)
        new_keys = {k for k, _ in items if k not in self}
        self.reserve(len(self) + len(new_keys))
        for k, v in items:
            super().__setitem__(k, v)


def refusing_after(count: int) -> Callable[[int, AllocKind, bool], None]:
    """A simple hook that grants ``count`` allocations, then refuses all (for users' tests)."""
    state = {"left": count}

    def hook(size: int, kind: AllocKind, absorbing: bool) -> None:
        if state["left"] <= 0:
            raise OutOfMemory(size)
        state["left"] -= 1

    return hook
