"""Shared by the ``wasi_*.py`` scenarios: a guest that forwards WASI calls, in a temporary root.

``WasiWorld(ctx, names, ...)`` creates (inside the injected run) a temporary
directory with the given files, a store with a ``WasiConfig`` preopening it
as ``/`` (fd 3), stdout captured, and an instance of a guest that imports the
named ``wasi_snapshot_preview1`` functions and exports a wasm wrapper
``w_NAME`` for each, so every WASI call is made by wasm code with the guest's
``memory`` (the directory is on a RAM filesystem when the machine has one:
``SCRATCH``). ``call`` returns the errno or ``"trap"`` for a refused call; an
``OutOfMemory`` (and ``ExitTrap``) propagates untouched. ``close`` removes
the directory (the scenario calls it in ``finally``).

Not a scenario itself: it is loaded by path from the scenarios.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from typing import Any

from wasmrt.errors import OutOfMemory, WasmtimeError
from wasmrt.runtime import ExitTrap
from wasmrt.wasi import FUNCTIONS, MODULE

#: Where the temporary roots go: a RAM filesystem when there is one (every run makes
#: and removes a tree; on a disk its journal makes that the sweep's main cost).
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

#: Scratch areas of the guest's memory: out-parameters, a buffer, two path slots.
OUT = 256
BUF = 4096
PATHS = (1024, 1536)
R_ALL = (1 << 29) - 1
R_READ = 1 << 1


def guest_wat(names: list[str], extra: str = "") -> str:
    lines = ["(module"]
    for name in names:
        params, results, _ = FUNCTIONS[name]
        sig = (f"(param {' '.join(params)})" if params else "") + (
            f" (result {' '.join(results)})" if results else ""
        )
        lines.append(f'  (import "{MODULE}" "{name}" (func ${name} {sig}))')
    lines.append('  (memory (export "memory") 1)')
    for name in names:
        params, results, _ = FUNCTIONS[name]
        sig = (f"(param {' '.join(params)})" if params else "") + (
            f" (result {' '.join(results)})" if results else ""
        )
        body = " ".join(f"local.get {i}" for i in range(len(params)))
        lines.append(f'  (func (export "w_{name}") {sig} {body} call ${name})')
    lines.append(extra)
    lines.append(")")
    return "\n".join(lines)


class WasiWorld:
    def __init__(
        self,
        ctx: Any,
        names: list[str],
        files: dict[str, bytes | None] | None = None,
        argv: list[str] | None = None,
        env: list[tuple[str, str]] | None = None,
        extra_wat: str = "",
    ) -> None:
        self.root = tempfile.mkdtemp(prefix="oomfuzz-wasi-", dir=SCRATCH)
        try:
            for rel, data in (files or {}).items():
                path = os.path.join(self.root, rel)
                if data is None:
                    os.makedirs(path, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "wb") as f:
                        f.write(data)
            api = ctx.api
            engine = ctx.engine()
            self.store = ctx.store(engine)
            linker = api("Linker")(engine)
            linker.define_wasi()
            config = api("WasiConfig")()
            config.argv = argv or ["guest"]
            config.env = [list(kv) for kv in env or []]
            self.stdout: list[bytes] = []
            config.stdout_custom = self.stdout.append
            config.preopen_dir(self.root, "/")
            self.store.set_wasi(config)
            module = ctx.module(engine, guest_wat(names, extra_wat))
            self.instance = linker.instantiate(self.store, module)
            ctx.track(self.instance, "Instance(wasi guest)")
            exports = self.instance.exports(self.store)
            self.memory = exports["memory"]
            self.exports = exports
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def call(self, name: str, *args: int) -> int | str:
        try:
            return int(self.exports["w_" + name](self.store, *args))
        except (OutOfMemory, ExitTrap):
            raise
        except WasmtimeError:
            return "trap"

    def write(self, ptr: int, data: bytes) -> None:
        self.memory.write(self.store, data, ptr)

    def read(self, ptr: int, n: int) -> bytes:
        return bytes(self.memory.read(self.store, ptr, ptr + n))

    def u32(self, ptr: int) -> int:
        return int(struct.unpack("<I", self.read(ptr, 4))[0])

    def u64(self, ptr: int) -> int:
        return int(struct.unpack("<Q", self.read(ptr, 8))[0])

    def path(self, text: str, slot: int = 0) -> tuple[int, int]:
        data = text.encode()
        self.write(PATHS[slot], data)
        return PATHS[slot], len(data)

    def iov(self, data: bytes, at: int = BUF) -> int:
        """An iovec (at ``OUT + 32``) over ``data`` placed at ``at``."""
        self.write(at, data)
        self.write(OUT + 32, struct.pack("<II", at, len(data)))
        return OUT + 32

    def open(
        self, path: str, oflags: int = 0, rights: int = R_ALL, fdflags: int = 0, dirfd: int = 3
    ) -> tuple[int | str, int]:
        ptr, n = self.path(path)
        err = self.call("path_open", dirfd, 1, ptr, n, oflags, rights, rights, fdflags, OUT)
        return err, (self.u32(OUT) if err == 0 else -1)
