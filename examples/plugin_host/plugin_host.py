"""A small plugin host built on wasmrt's public API: the embedding the examples test.

A :class:`PluginHost` loads plugins (WebAssembly modules) into a registry,
gives them host functions (``host.log``, ``host.kv_put``, ``host.kv_get``
over a key-value store, reading and writing guest memory), runs each plugin
in a store taken from a small pool, caches compiled modules, and limits how
many plugins are loaded at once (a quota).

Its promise to callers, which the tests check under OOM injection:
- an operation that fails (``OutOfMemory`` included) changes nothing: no
  registry entry, quota unit, cache entry or pooled store is left behind,
  and guest memory is written only when the whole result fits;
- the host stays usable after a failure (the same host, retried, behaves
  as if the failure never happened);
- ``close()`` releases every store; nothing outlives the host.

``bugs`` switches on seeded embedder bugs (names in ``BUGS``), one per kind
of mistake the examples' tests must catch; the default host has none.
``benign`` is the context manager the host enters around its rollback code
(code that may allocate after an OOM); the tests pass ``oomfuzz.cleanup``.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import wasmrt
from wasmrt import (
    Engine,
    FuncType,
    Instance,
    Linker,
    Module,
    OutOfMemory,
    Store,
    ValType,
    WasmtimeError,
)

#: Seeded bugs: name -> what goes wrong (and the class a test must report).
BUGS: dict[str, str] = {
    "half_write": "write_result writes the length header, then grows memory (not_atomic)",
    "early_linker": "the shared linker is saved before its host functions are defined "
    "(post_oom_failure, long-lived form)",
    "early_register": "load registers the plugin before instantiating it "
    "(post_oom_failure, long-lived form)",
    "quota_leak": "load takes a quota unit and does not give it back on failure "
    "(post_oom_failure, long-lived form)",
    "cache_placeholder": "the module cache reserves its entry before compiling "
    "(post_oom_failure, long-lived form)",
    "pool_closed_store": "a failed load closes its store but still returns it to the pool "
    "(post_oom_failure, long-lived form)",
    "retry_call": "call retries a call that failed with OutOfMemory (alloc_after_oom)",
    "retry_queue": "a failed load is queued for a later retry in a module-level queue "
    "that keeps the host alive (leak)",
    "pool_drop": "a failed load drops the store it took from the pool without closing it "
    "(cleanup_not_restored, seen by the pool probe)",
}

#: Failed loads waiting for a retry (only the ``retry_queue`` bug ever fills it).
RETRY_QUEUE: list[tuple[PluginHost, str, str]] = []

_I32 = ValType.i32()


class PluginError(Exception):
    """A plugin operation was refused (unknown plugin, already loaded, over quota)."""


@dataclass(eq=False)
class Plugin:
    name: str
    store: Store
    instance: Instance

    def export(self, name: str) -> Any:
        return self.instance.exports(self.store)[name]


class PluginHost:
    """Loads and runs plugins; see the module docstring for its promises."""

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        quota: int = 3,
        pool_size: int = 2,
        bugs: Iterable[str] = (),
        benign: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self.bugs = frozenset(bugs)
        unknown = self.bugs - set(BUGS)
        if unknown:
            raise ValueError(f"unknown seeded bugs: {sorted(unknown)}")
        self.engine = engine if engine is not None else Engine()
        self.quota = quota
        self.pool_size = pool_size
        self.benign = benign
        self.plugins: dict[str, Plugin] = {}
        self.modules: dict[str, Module] = {}
        self.kv: dict[bytes, bytes] = {}
        self.log: list[str] = []
        self.used = 0
        self._idle: list[Store] = []
        self._linker: Linker | None = None
        self.stores_created = 0
        self.stores_closed = 0
        self.closed = False

    # -- state views (for oomfuzz.state and a Probe) -------------------------------------

    def snapshot(self) -> dict[str, object]:
        """What a failed operation must leave unchanged (plain, comparable data).

        The module cache and the idle pool are not in it: a failed load may
        leave a (valid) compiled module cached or a new store pooled.
        """
        return {
            "plugins": sorted(self.plugins),
            "kv": sorted(self.kv.items()),
            "log": len(self.log),
            "quota used": self.used,
        }

    def stats(self) -> dict[str, object]:
        """Pool counters: every store the host created is idle, in use, or closed
        (after ``close()`` both are 0)."""
        open_stores = self.stores_created - self.stores_closed
        return {
            "stores.open": open_stores,
            "stores.unaccounted": open_stores - len(self._idle) - len(self.plugins),
        }

    # -- the shared linker (one-time setup on first use) ---------------------------------

    def linker(self) -> Linker:
        if self._linker is not None:
            return self._linker
        linker = Linker(self.engine)
        if "early_linker" in self.bugs:
            self._linker = linker  # BUG: saved before it is complete
        linker.define_func("host", "log", FuncType([_I32, _I32], []), self._log, True)
        linker.define_func(
            "host", "kv_put", FuncType([_I32, _I32, _I32, _I32], []), self._kv_put, True
        )
        linker.define_func(
            "host", "kv_get", FuncType([_I32, _I32, _I32], [_I32]), self._kv_get, True
        )
        self._linker = linker
        return linker

    # host functions (called by plugins) ------------------------------------------------

    @staticmethod
    def _guest_bytes(caller: Any, ptr: int, n: int) -> bytes:
        mem = caller.get("memory")
        if ptr < 0 or n < 0 or ptr + n > mem.data_len(caller):
            raise PluginError("guest pointer out of bounds")
        return bytes(mem.read(caller, ptr, ptr + n))

    def _log(self, caller: Any, ptr: int, n: int) -> None:
        self.log.append(self._guest_bytes(caller, ptr, n).decode("utf-8", "replace"))

    def _kv_put(self, caller: Any, kp: int, kn: int, vp: int, vn: int) -> None:
        self.kv[self._guest_bytes(caller, kp, kn)] = self._guest_bytes(caller, vp, vn)

    def _kv_get(self, caller: Any, kp: int, kn: int, out: int) -> int:
        value = self.kv.get(self._guest_bytes(caller, kp, kn))
        if value is None:
            return -1
        mem = caller.get("memory")
        if out < 0 or out + len(value) > mem.data_len(caller):
            raise PluginError("guest buffer out of bounds")
        mem.write(caller, value, out)
        return len(value)

    # -- the store pool ------------------------------------------------------------------

    def _checkout(self) -> Store:
        if self._idle:
            return self._idle.pop()
        store = Store(self.engine)
        self.stores_created += 1
        return store

    def _checkin(self, store: Store) -> None:
        if len(self._idle) < self.pool_size:
            self._idle.append(store)
        else:
            self._close_store(store)

    def _close_store(self, store: Store) -> None:
        store.close()
        self.stores_closed += 1

    # -- the compiled-module cache ---------------------------------------------------------

    def module(self, name: str, wat: str) -> Module:
        if name in self.modules:
            cached = self.modules[name]
            if cached is None:
                raise PluginError(f"module {name!r} is still being compiled")
            return cached
        if "cache_placeholder" in self.bugs:
            self.modules[name] = None  # type: ignore[assignment]  # BUG: reserved, never undone
        module = Module(self.engine, wat)
        self.modules[name] = module
        return module

    # -- operations ------------------------------------------------------------------------

    def load(self, name: str, wat: str) -> None:
        """Compile (cached), instantiate in a pooled store, register. All or nothing."""
        if name in self.plugins:
            raise PluginError(f"plugin {name!r} is already loaded")
        if self.used >= self.quota:
            raise PluginError(f"quota of {self.quota} plugins reached")
        if "quota_leak" in self.bugs:
            self.used += 1  # BUG: taken before the load can fail, never given back
        linker = self.linker()
        module = self.module(name, wat)
        store = self._checkout()
        placeholder = "early_register" in self.bugs
        if placeholder:
            self.plugins[name] = Plugin(name, store, None)  # type: ignore[arg-type]  # BUG
        try:
            instance = linker.instantiate(store, module)
        except BaseException as e:
            self._load_failed(name, wat, store, e)
            raise
        self.plugins[name] = Plugin(name, store, instance)
        if "quota_leak" not in self.bugs:
            self.used += 1

    def _load_failed(self, name: str, wat: str, store: Store, exc: BaseException) -> None:
        if "retry_queue" in self.bugs and isinstance(exc, OutOfMemory):
            RETRY_QUEUE.append((self, name, wat))  # BUG: never drained, keeps the host alive
        if "pool_drop" in self.bugs:
            return  # BUG: the store is neither returned to the pool nor closed
        if "pool_closed_store" in self.bugs:
            store.close()  # BUG: closed as "possibly dirty", then pooled anyway
        self._checkin(store)

    def call(self, name: str, export: str, *args: int) -> object:
        """Call an export of a loaded plugin; after a failure, the plugin's ``reset`` runs."""
        plugin = self._plugin(name)
        func = plugin.export(export)
        try:
            return func(plugin.store, *args)
        except OutOfMemory:
            if "retry_call" in self.bugs:
                return func(plugin.store, *args)  # BUG: retries after OOM
            raise

    def call_with_rollback(self, name: str, export: str, *args: int) -> object:
        """Like :meth:`call`, then on any failure roll the plugin back with its ``reset``.

        The rollback calls into wasm after the failure (it may allocate after an
        OOM): it runs inside ``self.benign()``.
        """
        plugin = self._plugin(name)
        ok = False
        try:
            result = self.call(name, export, *args)
            ok = True
            return result
        finally:
            if not ok:
                with self.benign():
                    plugin.export("reset")(plugin.store)

    def write_result(self, name: str, ptr: int, data: bytes) -> None:
        """Write ``len(data)`` (u32) then ``data`` at ``ptr`` in the plugin's memory,
        growing it when needed. All or nothing."""
        plugin = self._plugin(name)
        mem = plugin.export("memory")
        header = struct.pack("<I", len(data))
        need = ptr + len(header) + len(data)
        if "half_write" in self.bugs:
            mem.write(plugin.store, header, ptr)  # BUG: written before the grow can fail
        size = mem.data_len(plugin.store)
        if need > size:
            mem.grow(plugin.store, -(-(need - size) // 65536))
        mem.write(plugin.store, header + data, ptr)

    def read_guest(self, name: str, ptr: int, n: int) -> bytes:
        plugin = self._plugin(name)
        return bytes(plugin.export("memory").read(plugin.store, ptr, ptr + n))

    def unload(self, name: str) -> None:
        plugin = self.plugins.pop(self._plugin(name).name)
        self.used -= 1
        # A used store keeps its instances: close it rather than pool it.
        self._close_store(plugin.store)

    def close(self) -> None:
        """Close every store (loaded plugins' and idle ones); the host is done."""
        for plugin in list(self.plugins.values()):
            if plugin.instance is not None:
                self._close_store(plugin.store)
        self.plugins.clear()
        while self._idle:
            self._close_store(self._idle.pop())
        self.modules.clear()
        self._linker = None
        self.closed = True

    def _plugin(self, name: str) -> Plugin:
        plugin = self.plugins.get(name)
        if plugin is None:
            raise PluginError(f"no plugin {name!r}")
        if plugin.instance is None:
            raise PluginError(f"plugin {name!r} is not usable")
        return plugin


__all__ = ["BUGS", "RETRY_QUEUE", "Plugin", "PluginError", "PluginHost", "WasmtimeError", "wasmrt"]
