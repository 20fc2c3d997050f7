"""Guest path resolution confined to a directory descriptor (the preopen sandbox).

Invariants:
- A guest path is resolved component by component from a host directory
  descriptor, never handed whole to the host: every intermediate directory
  is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to the previous one,
  and symbolic links are read (``readlink``) and expanded here, inside the
  sandbox. So no guest path reaches outside the root it started from:
  absolute paths, ``..`` above the starting directory and symlinks whose
  target is absolute or climbs out are refused with ``PERM``, the errno
  Wasmtime's ``cap-std`` sandbox gives them (checked side by side; older
  Wasmtime versions said ``NOTCAPABLE``). A path containing NUL is ``INVAL``.
- ``resolve`` returns the directory descriptor that holds the final
  component and the final component's name; the name never contains a
  ``/`` except one trailing ``/`` kept from the guest path, so host calls
  made with it relative to that descriptor act on exactly that entry (a
  trailing ``/`` makes the host insist on a directory, POSIX's rule).
- Following a final symlink (``follow=True``) expands it here too, so the
  host call that comes next never follows a link on its own.
- At most ``MAX_SYMLINKS`` expansions per resolution (then ``LOOP``).
- ``Resolved.close()`` closes every descriptor resolution opened, exactly
  once; the starting descriptor is the caller's and is never closed here.
"""

from __future__ import annotations

import os
import stat as _stat

from wasmrt.wasi.errno import Errno, WasiErrno, from_oserror

__all__ = ["MAX_SYMLINKS", "Resolved", "resolve"]

MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Resolved:
    """The parent directory descriptor and final name of a resolved guest path."""

    __slots__ = ("_owned", "dir_fd", "name")

    def __init__(self, dir_fd: int, name: str, owned: list[int]) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self._owned = owned

    def close(self) -> None:
        owned, self._owned = self._owned, []
        for fd in owned:
            os.close(fd)

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_symlink(dir_fd: int, name: str) -> bool:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return _stat.S_ISLNK(st.st_mode)


def _readlink(dir_fd: int, name: str) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as e:
        raise WasiErrno(from_oserror(e)) from None


def _split(path: str) -> tuple[list[str], bool]:
    """Components (no empty ones) and whether the path ends with ``/``."""
    return [c for c in path.split("/") if c], path.endswith("/")


class _Walk:
    """The directory stack of one resolution: ``stack[-1]`` is the current directory."""

    def __init__(self, start: int) -> None:
        self.stack = [start]
        self.owned: list[int] = []

    @property
    def cur(self) -> int:
        return self.stack[-1]

    def up(self) -> None:
        if len(self.stack) == 1:
            raise WasiErrno(Errno.PERM)
        self.stack.pop()

    def down(self, name: str) -> None:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.cur)
        except OSError as e:
            raise WasiErrno(from_oserror(e)) from None
        self.owned.append(fd)
        self.stack.append(fd)

    def close(self) -> None:
        owned, self.owned = self.owned, []
        for fd in owned:
            os.close(fd)


def resolve(start: int, path: str, follow: bool) -> Resolved:
    """Resolve guest ``path`` relative to the host directory ``start`` (see module doc)."""
    if "\0" in path:
        raise WasiErrno(Errno.INVAL)
    if path == "":
        raise WasiErrno(Errno.NOENT)
    if path.startswith("/"):
        raise WasiErrno(Errno.PERM)
    walk = _Walk(start)
    try:
        return _resolve(walk, path, follow)
    except BaseException:
        walk.close()
        raise


def _resolve(walk: _Walk, path: str, follow: bool) -> Resolved:
    parts, trailing = _split(path)
    pending = list(reversed(parts))  # a stack: next component last
    expansions = 0
    while True:
        if not pending:
            # Only "." / ".." components, or ended on a directory we descended into.
            return Resolved(walk.cur, "." + ("/" if trailing else ""), walk.owned)
        name = pending.pop()
        last = not pending
        if name == ".":
            continue
        if name == "..":
            walk.up()
            continue
        if last:
            must_follow = follow or trailing
            if must_follow and _is_symlink(walk.cur, name):
                expansions = _expand(walk, name, pending, expansions)
                # The target's own trailing slash (if any) is kept by its components.
                continue
            return Resolved(walk.cur, name + ("/" if trailing else ""), walk.owned)
        if _is_symlink(walk.cur, name):
            expansions = _expand(walk, name, pending, expansions)
            continue
        walk.down(name)


def _expand(walk: _Walk, name: str, pending: list[str], expansions: int) -> int:
    """Replace symlink ``name`` by its target's components (pushed onto ``pending``)."""
    expansions += 1
    if expansions > MAX_SYMLINKS:
        raise WasiErrno(Errno.LOOP)
    target = _readlink(walk.cur, name)
    if target.startswith("/"):
        raise WasiErrno(Errno.PERM)
    parts, trailing = _split(target)
    if trailing and not pending:
        parts.append(".")
    pending.extend(reversed(parts))
    return expansions
