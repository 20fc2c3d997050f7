"""A tiny guest that lets a test call any ``wasi_snapshot_preview1`` function directly.

``GUEST_WAT`` imports every preview 1 function (signatures from
``wasmrt.wasi.FUNCTIONS``) and exports a wasm wrapper ``w_NAME`` for each that
forwards its arguments, so the WASI call is made *by wasm code* with the
guest's exported ``memory`` — exactly as a compiled program would. The same
text runs under wasmrt and under the real ``wasmtime``, which is what the
differential tests need.

``Guest(rt, root)`` builds engine, linker, store (WASI preopening ``root`` as
``/`` with fd 3) and instance for runtime module ``rt`` (``wasmrt`` or
``wasmtime``). ``guest.call(name, *args)`` returns the errno, or
``"trap"`` when the runtime refused the call with an error (Wasmtime traps on
bad pointers and enum values). Memory helpers place strings in a scratch
area and read results back.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

from wasmrt.wasi import FUNCTIONS, MODULE

__all__ = ["BUF", "GUEST_WAT", "OUT", "PATH_AREA", "Guest", "guest_wat", "make_fixture"]

#: Where ``Guest.path`` places strings (two of them: ``PATH_AREA`` and ``+512``).
PATH_AREA = 1024
#: A 64-byte, 8-aligned area for out-parameters.
OUT = 256
#: A 4 KiB buffer for reads, listings and readlink.
BUF = 4096


def guest_wat(names: list[str] | None = None) -> str:
    """The forwarding guest for ``names`` (default: every preview 1 function)."""
    imports = []
    wrappers = []
    for name in names or sorted(FUNCTIONS):
        params, results, _ = FUNCTIONS[name]
        p = " ".join(params)
        r = " ".join(results)
        sig = (f"(param {p})" if p else "") + (f" (result {r})" if r else "")
        imports.append(f'  (import "{MODULE}" "{name}" (func ${name} {sig}))')
        body = " ".join(f"local.get {i}" for i in range(len(params)))
        wrappers.append(f'  (func (export "w_{name}") {sig} {body} call ${name})')
    return (
        "(module\n"
        + "\n".join(imports)
        + '\n  (memory (export "memory") 1)\n'
        + ("\n".join(wrappers) + ")\n")
    )


GUEST_WAT = guest_wat()


def make_fixture(base: Path) -> Path:
    """``base/root`` (preopened) next to ``base/outside`` (must stay untouched)."""
    root = base / "root"
    outside = base / "outside"
    (root / "sub" / "deep").mkdir(parents=True)
    outside.mkdir()
    (root / "file").write_text("hello")
    (outside / "secret").write_text("secret")
    os.symlink("/etc", root / "abs")
    os.symlink("../outside", root / "up")
    os.symlink("../..", root / "sub" / "upup")
    os.symlink("file", root / "inner")
    os.symlink("loop", root / "loop")
    return root


class Guest:
    """One instance of the forwarding guest in runtime ``rt`` (see module doc)."""

    def __init__(
        self,
        rt: ModuleType,
        root: Path | None,
        wat: str = GUEST_WAT,
        argv: list[str] | None = None,
        env: list[tuple[str, str]] | None = None,
        store: Any = None,
        linker: Any = None,
        module: Any = None,
    ) -> None:
        self.rt = rt
        engine = rt.Engine() if store is None else store.engine
        if linker is None:
            linker = rt.Linker(engine)
            linker.define_wasi()
        config = rt.WasiConfig()
        config.argv = argv or ["guest"]
        config.env = [list(kv) for kv in env or []]
        self.stdout: list[bytes] = []
        config.stdout_custom = self.stdout.append
        if root is not None:
            config.preopen_dir(str(root), "/")
        self.store = rt.Store(engine) if store is None else store
        self.store.set_wasi(config)
        if module is None:
            module = rt.Module(engine, wat)
        self.instance = linker.instantiate(self.store, module)
        exports = self.instance.exports(self.store)
        self.memory = exports["memory"]
        self._exports = exports

    def call(self, name: str, *args: int) -> int | str:
        try:
            return int(self._exports["w_" + name](self.store, *args))
        except self.rt.WasmtimeError:
            return "trap"

    def raw(self, name: str, *args: int) -> Any:
        """Call ``w_NAME`` without catching anything."""
        return self._exports["w_" + name](self.store, *args)

    # Memory --------------------------------------------------------------------

    def write(self, ptr: int, data: bytes) -> None:
        self.memory.write(self.store, data, ptr)

    def read(self, ptr: int, n: int) -> bytes:
        return bytes(self.memory.read(self.store, ptr, ptr + n))

    def u32(self, ptr: int) -> int:
        return int(struct.unpack("<I", self.read(ptr, 4))[0])

    def u64(self, ptr: int) -> int:
        return int(struct.unpack("<Q", self.read(ptr, 8))[0])

    def path(self, text: str | bytes, slot: int = 0) -> tuple[int, int]:
        """``(ptr, len)`` of ``text`` placed in string slot ``slot`` (0 or 1)."""
        data = text.encode() if isinstance(text, str) else text
        ptr = PATH_AREA + 512 * slot
        self.write(ptr, data)
        return ptr, len(data)

    # Common calls ----------------------------------------------------------------

    def open(
        self,
        path: str,
        oflags: int = 0,
        rights: int = (1 << 29) - 1,
        fdflags: int = 0,
        follow: bool = True,
        dirfd: int = 3,
    ) -> tuple[int | str, int | None]:
        """``path_open``: (errno, new fd or None)."""
        ptr, n = self.path(path)
        err = self.call(
            "path_open", dirfd, int(follow), ptr, n, oflags, rights, rights, fdflags, OUT
        )
        return err, (self.u32(OUT) if err == 0 else None)

    def two_paths(self, name: str, old: str, new: str, *, flags: int | None = None) -> int | str:
        """``path_link`` / ``path_rename`` between ``old`` and ``new`` under fd 3."""
        op, on = self.path(old, 0)
        np, nn = self.path(new, 1)
        if name == "path_link":
            return self.call(name, 3, flags or 0, op, on, 3, np, nn)
        return self.call(name, 3, op, on, 3, np, nn)

    def one_path(self, name: str, path: str) -> int | str:
        """``path_create_directory`` / ``path_remove_directory`` / ``path_unlink_file``."""
        ptr, n = self.path(path)
        return self.call(name, 3, ptr, n)

    def stat(self, path: str, follow: bool = False) -> int | str:
        ptr, n = self.path(path)
        return self.call("path_filestat_get", 3, int(follow), ptr, n, OUT)

    def readlink(self, path: str) -> tuple[int | str, bytes]:
        ptr, n = self.path(path)
        err = self.call("path_readlink", 3, ptr, n, BUF, 256, OUT)
        return err, (self.read(BUF, self.u32(OUT)) if err == 0 else b"")

    def symlink(self, target: str, path: str) -> int | str:
        tp, tn = self.path(target, 0)
        pp, pn = self.path(path, 1)
        return self.call("path_symlink", tp, tn, 3, pp, pn)
