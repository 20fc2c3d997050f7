"""``WasiConfig``, ``DirPerms``, ``FilePerms``: wasmtime-py's WASI configuration.

Invariants:
- Names, signatures and errors follow wasmtime-py: the settable-only
  properties ``argv``/``env``/``stdin_file``/``stdout_file``/``stderr_file``/
  ``stdout_custom``/``stderr_custom``, the ``inherit_*`` methods and
  ``preopen_dir(path, guest_path, dir_perms, file_perms)``. A file or
  directory that cannot be opened raises ``WasmtimeError`` at once (as
  Wasmtime's C API opens them when configured), leaving the config as it was.
- The config owns the host descriptors it opened; ``close()`` (or garbage
  collection) releases them, and ``Store.set_wasi`` *consumes* the config:
  its ``WasiSpec`` moves into the store's WASI context, which then owns
  those descriptors, and the config can no longer be used
  (``ValueError("already closed")``), as in wasmtime-py.
- Every setter asks ``try_alloc(..., AllocKind.WASI)`` before it keeps
  anything; an ``OutOfMemory`` leaves the config unchanged (a descriptor
  opened for the failed setter is closed again).
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Iterable
from os import PathLike
from typing import Any

from wasmrt.alloc import SLOT_SIZE, AllocKind, try_alloc
from wasmrt.errors import WasmtimeError
from wasmrt.runtime import Managed

__all__ = [
    "CustomOutput",
    "DirPerms",
    "FilePerms",
    "Preopen",
    "StdioSpec",
    "WasiConfig",
    "WasiSpec",
]

CustomOutput = Callable[[bytes], int | None]


class DirPerms(enum.Enum):
    """What the guest may do with a preopened directory itself."""

    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_WRITE = 3


class FilePerms(enum.Enum):
    """The most a guest may do with files opened under a preopened directory."""

    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_WRITE = 3


class StdioSpec:
    """Where one standard stream goes: ``kind`` is ``null``, ``inherit``, ``file`` or ``custom``."""

    __slots__ = ("callback", "fd", "kind")

    def __init__(self, kind: str, fd: int = -1, callback: CustomOutput | None = None) -> None:
        self.kind = kind
        self.fd = fd
        self.callback = callback

    def release(self) -> None:
        if self.kind == "file" and self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class Preopen:
    """A host directory descriptor the guest sees as ``guest_path``."""

    __slots__ = ("dir_perms", "fd", "file_perms", "guest_path")

    def __init__(self, fd: int, guest_path: str, dir_perms: int, file_perms: int) -> None:
        self.fd = fd
        self.guest_path = guest_path
        self.dir_perms = dir_perms
        self.file_perms = file_perms


class WasiSpec:
    """Everything a ``WasiConfig`` collected; owns the host descriptors it holds."""

    def __init__(self) -> None:
        self.argv: list[str] = []
        self.env: list[tuple[str, str]] = []
        self.stdio = [StdioSpec("null"), StdioSpec("null"), StdioSpec("null")]
        self.preopens: list[Preopen] = []

    def set_stdio(self, index: int, spec: StdioSpec) -> None:
        old, self.stdio[index] = self.stdio[index], spec
        old.release()

    def release(self) -> None:
        """Close every host descriptor this spec owns (once)."""
        for s in self.stdio:
            s.release()
        preopens, self.preopens = self.preopens, []
        for p in preopens:
            os.close(p.fd)


def _encode_path(path: str | bytes | PathLike[Any]) -> str | bytes:
    if isinstance(path, (str, bytes)):
        return path
    return os.fspath(path)


def _strings(values: Iterable[Any], what: str) -> list[str]:
    out = []
    for v in values:
        if not isinstance(v, str):
            raise TypeError(f"{what} must be strings")
        out.append(v)
    return out


def _perm_value(value: Any, cls: type[enum.Enum]) -> int:
    if isinstance(value, cls):
        return int(value.value)
    if isinstance(value, bool):  # wasmtime-py >= 2x: ``fs_mutable``
        return 3 if value else 1
    raise TypeError(f"expected a {cls.__name__}")


def _open_for(path: str | bytes | PathLike[Any], flags: int, what: str) -> int:
    try:
        return os.open(_encode_path(path), flags | os.O_CLOEXEC, 0o666)
    except (OSError, ValueError):
        raise WasmtimeError(f"failed to set {what} file") from None


class WasiConfig(Managed[WasiSpec]):
    """Configuration of a WASI program's arguments, environment, stdio and preopens."""

    def __init__(self) -> None:
        try_alloc(256, AllocKind.WASI)
        self._set_ptr(WasiSpec())

    def _delete(self, ptr: WasiSpec) -> None:
        ptr.release()

    def _set_argv(self, argv: list[str]) -> None:
        values = _strings(argv, "arguments")
        spec = self.ptr()
        try_alloc(SLOT_SIZE * len(values) + sum(len(a) for a in values), AllocKind.WASI)
        spec.argv = values

    argv = property(
        fset=_set_argv, doc="Explicitly configure the `argv` for this WASI configuration"
    )

    def inherit_argv(self) -> None:
        """Use this process's ``sys.argv`` as the program's arguments."""
        self._set_argv(list(sys.argv))

    def _set_env(self, pairs: Iterable[Iterable[str]]) -> None:
        values: list[tuple[str, str]] = []
        for pair in pairs:
            name, value = pair
            values.append((_strings([name], "names")[0], _strings([value], "values")[0]))
        spec = self.ptr()
        try_alloc(
            SLOT_SIZE * 2 * len(values) + sum(len(k) + len(v) for k, v in values), AllocKind.WASI
        )
        spec.env = values

    env = property(fset=_set_env, doc="Configure the environment variables (key/value pairs).")

    def inherit_env(self) -> None:
        """Give the program this process's environment variables."""
        self._set_env(list(os.environ.items()))

    def _set_stdio(self, index: int, spec: StdioSpec) -> None:
        try:
            target = self.ptr()
            try_alloc(64, AllocKind.WASI)
        except BaseException:
            spec.release()
            raise
        target.set_stdio(index, spec)

    def _set_stdin_file(self, path: str | bytes | PathLike[Any]) -> None:
        self.ptr()
        self._set_stdio(0, StdioSpec("file", _open_for(path, os.O_RDONLY, "stdin")))

    stdin_file = property(fset=_set_stdin_file, doc="Read the program's stdin from this file.")

    def inherit_stdin(self) -> None:
        """The program reads this process's stdin."""
        self._set_stdio(0, StdioSpec("inherit", 0))

    def _out_file(self, index: int, path: str | bytes | PathLike[Any], what: str) -> None:
        self.ptr()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        self._set_stdio(index, StdioSpec("file", _open_for(path, flags, what)))

    def _set_stdout_file(self, path: str | bytes | PathLike[Any]) -> None:
        self._out_file(1, path, "stdout")

    stdout_file = property(fset=_set_stdout_file, doc="Write stdout to this file (truncated).")

    def _set_stdout_custom(self, callback: CustomOutput) -> None:
        if not callable(callback):
            raise TypeError("expected a callable")
        self._set_stdio(1, StdioSpec("custom", callback=callback))

    stdout_custom = property(fset=_set_stdout_custom, doc="Call this with each stdout write.")

    def inherit_stdout(self) -> None:
        """The program writes to this process's stdout."""
        self._set_stdio(1, StdioSpec("inherit", 1))

    def _set_stderr_file(self, path: str | bytes | PathLike[Any]) -> None:
        self._out_file(2, path, "stderr")

    stderr_file = property(fset=_set_stderr_file, doc="Write stderr to this file (truncated).")

    def _set_stderr_custom(self, callback: CustomOutput) -> None:
        if not callable(callback):
            raise TypeError("expected a callable")
        self._set_stdio(2, StdioSpec("custom", callback=callback))

    stderr_custom = property(fset=_set_stderr_custom, doc="Call this with each stderr write.")

    def inherit_stderr(self) -> None:
        """The program writes to this process's stderr."""
        self._set_stdio(2, StdioSpec("inherit", 2))

    def preopen_dir(
        self,
        path: str,
        guest_path: str,
        dir_perms: DirPerms | bool = DirPerms.READ_WRITE,
        file_perms: FilePerms = FilePerms.READ_WRITE,
    ) -> None:
        """Let the program reach the host directory ``path`` as ``guest_path``.

        ``dir_perms`` bounds what it may do to the directory tree (read it,
        change it), ``file_perms`` the most it may do with files in it. A
        bool in third position is wasmtime-py's later ``fs_mutable``.
        """
        if not isinstance(path, str) or not isinstance(guest_path, str):
            raise AttributeError("'path' and 'guest_path' must be str")
        dperms = _perm_value(dir_perms, DirPerms)
        fperms = dperms if isinstance(dir_perms, bool) else _perm_value(file_perms, FilePerms)
        spec = self.ptr()
        try_alloc(SLOT_SIZE * 4 + len(guest_path), AllocKind.WASI)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (OSError, ValueError):
            raise WasmtimeError("failed to add preopen dir") from None
        spec.preopens.append(Preopen(fd, guest_path, dperms, fperms))

    def _into_spec(self) -> WasiSpec:
        """Consume this config (``Store.set_wasi``): its spec and descriptors move out."""
        return self._consume()
