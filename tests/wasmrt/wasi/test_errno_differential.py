"""wasmrt's preview 1 results against the real Wasmtime (wasmtime-py), call by call.

The same forwarding guest (``support.wasi_guest``) runs under both runtimes,
each with its own copy of one fixture tree, and the same sequence of calls
is made: sandbox escapes, missing and mistyped paths, descriptors of every
kind used for the wrong thing, invalid flags, bad pointers. The errno of
every call (or ``"trap"`` when the runtime refuses the call), and for
successful calls the values written back, must agree. Skips when the
``wasmtime`` package is not installed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import wasmrt
from support.wasi_guest import BUF, OUT, Guest, make_fixture

wasmtime = pytest.importorskip("wasmtime", reason="differential tests need wasmtime-py")

R_READ = 1 << 1
R_WRITE = 1 << 6
R_ALL = (1 << 29) - 1


def _fdstat(g: Guest, fd: int | None) -> Any:
    if fd is None:
        return "no fd"
    err = g.call("fd_fdstat_get", fd, OUT)
    if err != 0:
        return err
    ftype, flags, base, inh = struct.unpack("<BxHxxxxQQ", g.read(OUT, 24))
    return ftype, flags, base, inh


def _filestat(g: Guest, path: str, follow: bool) -> Any:
    err = g.stat(path, follow)
    if err != 0:
        return err
    _dev, _ino, ftype, nlink, size = struct.unpack("<QQBxxxxxxxQQ", g.read(OUT, 40))
    return ftype, nlink, size if ftype == 4 else None


def _fd(g: Guest, path: str, rights: int = R_READ, oflags: int = 0, fdflags: int = 0) -> int:
    err, fd = g.open(path, rights=rights, oflags=oflags, fdflags=fdflags)
    assert err == 0 and fd is not None, f"opening {path}: {err}"
    return fd


def _read_all(g: Guest, fd: int) -> Any:
    g.write(OUT, struct.pack("<II", BUF, 64))
    err = g.call("fd_read", fd, OUT, 1, OUT + 8)
    return err if err else g.read(BUF, g.u32(OUT + 8))


def _write(g: Guest, fd: int, data: bytes) -> Any:
    g.write(BUF, data)
    g.write(OUT, struct.pack("<II", BUF, len(data)))
    err = g.call("fd_write", fd, OUT, 1, OUT + 8)
    return err if err else g.u32(OUT + 8)


def _seek(g: Guest, fd: int, offset: int, whence: int) -> Any:
    err = g.call("fd_seek", fd, offset & (2**64 - 1), whence, OUT)
    return err if err else g.u64(OUT)


def _readdir_names(g: Guest, fd: int) -> Any:
    err = g.call("fd_readdir", fd, BUF, 2048, 0, OUT)
    if err:
        return err
    data, names, pos = g.read(BUF, g.u32(OUT)), [], 0
    while pos + 24 <= len(data):
        _next, _ino, n, ftype = struct.unpack_from("<QQIB", data, pos)
        names.append((data[pos + 24 : pos + 24 + n].decode(), ftype))
        pos += 24 + n
    return sorted(names)


_SUB = struct.Struct("<QB7xIxxxxQQH6x")


def _clock(userdata: int, clock_id: int, timeout: int, flags: int = 0) -> bytes:
    return _SUB.pack(userdata, 0, clock_id, timeout, 0, flags)


def _fd_sub(userdata: int, tag: int, fd: int) -> bytes:
    return struct.pack("<QB7xI", userdata, tag, fd).ljust(_SUB.size, b"\0")


def _poll(g: Guest, subs: list[bytes]) -> Any:
    g.write(BUF, b"".join(subs))
    err = g.call("poll_oneoff", BUF, BUF + 1024, len(subs), OUT)
    if err:
        return err
    return sorted(
        struct.unpack("<QHBxxxxxQH6x", g.read(BUF + 1024 + 32 * i, 32)) for i in range(g.u32(OUT))
    )


OPS: list[tuple[str, Callable[[Guest], Any]]] = [
    # The sandbox.
    ("open ../outside/secret", lambda g: g.open("../outside/secret")[0]),
    ("open absolute", lambda g: g.open("/etc/passwd")[0]),
    ("open via absolute symlink", lambda g: g.open("abs/passwd")[0]),
    ("open absolute symlink nofollow", lambda g: g.open("abs", follow=False)[0]),
    ("open via climbing symlink", lambda g: g.open("up/secret")[0]),
    ("open via intermediate symlink", lambda g: g.open("sub/upup/outside/secret")[0]),
    ("open sub/../../", lambda g: g.open("sub/../../outside/secret")[0]),
    ("stat ..", lambda g: g.stat("..")),
    ("link out", lambda g: g.two_paths("path_link", "file", "../stolen")),
    ("link in", lambda g: g.two_paths("path_link", "../outside/secret", "got")),
    ("link follow", lambda g: g.two_paths("path_link", "up/secret", "got", flags=1)),
    ("rename out", lambda g: g.two_paths("path_rename", "file", "../moved")),
    ("rename in", lambda g: g.two_paths("path_rename", "up/secret", "got")),
    ("mkdir out", lambda g: g.one_path("path_create_directory", "../newdir")),
    ("unlink via symlink", lambda g: g.one_path("path_unlink_file", "up/secret")),
    ("rmdir ..", lambda g: g.one_path("path_remove_directory", "..")),
    ("rmdir .", lambda g: g.one_path("path_remove_directory", ".")),
    ("symlink absolute target", lambda g: g.symlink("/etc/passwd", "newlink")),
    ("symlink relative climbing target", lambda g: g.symlink("../outside", "planted")),
    ("open planted/secret", lambda g: g.open("planted/secret")[0]),
    ("symlink placed outside", lambda g: g.symlink("x", "../newlink")),
    ("readlink planted", lambda g: g.readlink("planted")),
    ("path with NUL", lambda g: g.open("a\0b")[0]),
    # Paths inside.
    ("open sub/../file", lambda g: g.open("sub/../file")[0]),
    ("open inner", lambda g: g.open("inner")[0]),
    ("open inner nofollow", lambda g: g.open("inner", follow=False)[0]),
    ("open loop", lambda g: g.open("loop")[0]),
    ("open . as file", lambda g: g.open(".")[0]),
    ("open missing", lambda g: g.open("nope")[0]),
    ("open excl existing", lambda g: g.open("file", oflags=5)[0]),
    ("open directory flag on file", lambda g: g.open("file", oflags=2)[0]),
    ("open directory flag on file ro", lambda g: g.open("file", oflags=2, rights=R_READ)[0]),
    ("open directory|creat", lambda g: g.open("x", oflags=3, rights=R_READ)[0]),
    ("open directory|trunc", lambda g: g.open("sub", oflags=10, rights=R_READ)[0]),
    ("open dir for writing", lambda g: g.open("sub", rights=R_WRITE)[0]),
    ("open file/", lambda g: g.open("file/")[0]),
    ("open trunc read-only", lambda g: g.open("file", oflags=8, rights=R_READ)[0]),
    ("mkdir existing", lambda g: g.one_path("path_create_directory", "sub")),
    ("mkdir trailing slash", lambda g: g.one_path("path_create_directory", "newd/")),
    ("rmdir non-empty", lambda g: g.one_path("path_remove_directory", "sub")),
    ("rmdir file", lambda g: g.one_path("path_remove_directory", "file")),
    ("rmdir trailing slash", lambda g: g.one_path("path_remove_directory", "newd/")),
    ("unlink dir", lambda g: g.one_path("path_unlink_file", "sub")),
    ("unlink dir/", lambda g: g.one_path("path_unlink_file", "sub/")),
    ("unlink file/", lambda g: g.one_path("path_unlink_file", "file/")),
    ("unlink missing", lambda g: g.one_path("path_unlink_file", "nope")),
    ("stat empty path", lambda g: g.stat("")),
    ("stat file/", lambda g: g.stat("file/")),
    ("stat inner/", lambda g: g.stat("inner/")),
    ("stat file", lambda g: _filestat(g, "file", False)),
    ("stat inner nofollow", lambda g: _filestat(g, "inner", False)[:2]),
    ("stat inner follow", lambda g: _filestat(g, "inner", True)),
    ("readlink non-link", lambda g: g.readlink("file")),
    ("rename dir onto file", lambda g: g.two_paths("path_rename", "sub", "file")),
    ("rename file onto dir", lambda g: g.two_paths("path_rename", "file", "sub")),
    ("rename to missing/", lambda g: g.two_paths("path_rename", "file", "inner2/")),
    ("link dir", lambda g: g.two_paths("path_link", "sub", "subl")),
    ("link onto existing", lambda g: g.two_paths("path_link", "file", "inner")),
    ("symlink onto existing", lambda g: g.symlink("x", "file")),
    ("create through dangling symlink", lambda g: (g.symlink("nowhere", "dl"), g.open("dl", 1))),
    (
        "set times: both flags",
        lambda g: g.call("path_filestat_set_times", 3, 0, *g.path("file"), 0, 0, 3),
    ),
    ("fd set times: both flags", lambda g: g.call("fd_filestat_set_times", 3, 0, 0, 12)),
    # Descriptors.
    ("fdstat preopen", lambda g: _fdstat(g, 3)),
    ("fdstat stdout", lambda g: _fdstat(g, 1)),
    ("fdstat closed", lambda g: _fdstat(g, 77)),
    ("fdstat file rw", lambda g: _fdstat(g, _fd(g, "file", (1 << 29) - 1))),
    ("fdstat file ro", lambda g: _fdstat(g, _fd(g, "file"))),
    ("fdstat dir", lambda g: _fdstat(g, _fd(g, "sub"))),
    ("read file", lambda g: _read_all(g, _fd(g, "file"))),
    ("write read-only file", lambda g: _write(g, _fd(g, "file"), b"x")),
    ("read write-only file", lambda g: _read_all(g, _fd(g, "file", R_WRITE))),
    (
        "write then read back",
        lambda g: (
            _write(g, f := _fd(g, "new", R_READ | R_WRITE, 1), b"abc"),
            _seek(g, f, 0, 0),
            _read_all(g, f),
        ),
    ),
    ("seek negative", lambda g: _seek(g, _fd(g, "file"), -1, 0)),
    ("seek from end", lambda g: _seek(g, _fd(g, "file"), -2, 2)),
    ("seek bad whence", lambda g: g.call("fd_seek", _fd(g, "file"), 0, 3, OUT)),
    ("seek stdout", lambda g: _seek(g, 1, 0, 0)),
    ("seek preopen", lambda g: _seek(g, 3, 0, 0)),
    ("tell preopen", lambda g: g.call("fd_tell", 3, OUT)),
    ("read preopen", lambda g: _read_all(g, 3)),
    ("write preopen", lambda g: _write(g, 3, b"x")),
    ("write stdin", lambda g: _write(g, 0, b"x")),
    ("read stdout", lambda g: _read_all(g, 1)),
    ("readdir file", lambda g: _readdir_names(g, _fd(g, "file"))),
    ("readdir stdout", lambda g: _readdir_names(g, 1)),
    ("readdir sub", lambda g: _readdir_names(g, _fd(g, "sub"))),
    ("readdir big cookie", lambda g: (g.call("fd_readdir", 3, BUF, 100, 1000, OUT), g.u32(OUT))),
    ("set size preopen", lambda g: g.call("fd_filestat_set_size", 3, 0)),
    ("set size read-only", lambda g: g.call("fd_filestat_set_size", _fd(g, "file"), 0)),
    ("allocate preopen", lambda g: g.call("fd_allocate", 3, 0, 1)),
    ("datasync preopen", lambda g: g.call("fd_datasync", 3)),
    ("sync stdout", lambda g: g.call("fd_sync", 1)),
    ("advise preopen", lambda g: g.call("fd_advise", 3, 0, 0, 0)),
    ("set flags preopen", lambda g: g.call("fd_fdstat_set_flags", 3, 0)),
    ("set flags stdout", lambda g: g.call("fd_fdstat_set_flags", 1, 0)),
    ("renumber to closed", lambda g: g.call("fd_renumber", 3, 77)),
    ("renumber from closed", lambda g: g.call("fd_renumber", 77, 3)),
    ("close closed", lambda g: g.call("fd_close", 77)),
    ("prestat stdin", lambda g: g.call("fd_prestat_get", 0, OUT)),
    (
        "prestat preopen",
        lambda g: (g.call("fd_prestat_get", 3, OUT), g.read(OUT, 1), g.u32(OUT + 4)),
    ),
    ("prestat dir name too short", lambda g: g.call("fd_prestat_dir_name", 3, BUF, 0)),
    ("prestat dir name", lambda g: (g.call("fd_prestat_dir_name", 3, BUF, 8), g.read(BUF, 1))),
    ("prestat opened dir", lambda g: g.call("fd_prestat_get", _fd(g, "sub"), OUT)),
    # Everything else.
    ("iovec out of bounds", lambda g: g.call("fd_read", _fd(g, "file"), 65535 * 1000, 1, OUT)),
    ("cpu-time clock", lambda g: g.call("clock_time_get", 2, 0, OUT)),
    ("clock id out of range", lambda g: g.call("clock_time_get", 4, 0, OUT)),
    ("clock res cpu-time", lambda g: g.call("clock_res_get", 3, OUT)),
    ("random_get out of bounds", lambda g: g.call("random_get", 65536 - 4, 8)),
    ("args sizes", lambda g: (g.call("args_sizes_get", OUT, OUT + 4), g.u32(OUT), g.u32(OUT + 4))),
    ("args", lambda g: (g.call("args_get", OUT, BUF), g.read(BUF, 10))),
    (
        "environ sizes",
        lambda g: (g.call("environ_sizes_get", OUT, OUT + 4), g.u32(OUT), g.u32(OUT + 4)),
    ),
    ("environ", lambda g: (g.call("environ_get", OUT, BUF), g.read(BUF, 4))),
    ("proc_raise", lambda g: g.call("proc_raise", 1)),
    ("sched_yield", lambda g: g.call("sched_yield")),
    ("sock_accept on dir", lambda g: g.call("sock_accept", 3, 0, OUT)),
    ("sock_shutdown closed", lambda g: g.call("sock_shutdown", 77, 1)),
    ("poll nothing", lambda g: g.call("poll_oneoff", OUT, BUF, 0, OUT + 60)),
    ("poll relative clock", lambda g: _poll(g, [_clock(1, 1, 0)])),
    ("poll absolute clock", lambda g: _poll(g, [_clock(1, 0, 0, 1)])),
    ("poll clock bad flags", lambda g: _poll(g, [_clock(1, 1, 0, 2)])),
    ("poll cpu clock", lambda g: _poll(g, [_clock(1, 2, 0)])),
    ("poll unknown clock", lambda g: _poll(g, [_clock(1, 4, 0)])),
    ("poll file read", lambda g: _poll(g, [_fd_sub(1, 1, _fd(g, "file"))])),
    ("poll file write", lambda g: _poll(g, [_fd_sub(1, 2, _fd(g, "file"))])),
    (
        "poll file at end",
        lambda g: (_seek(g, f := _fd(g, "file"), 0, 2), _poll(g, [_fd_sub(1, 1, f)])),
    ),
    ("poll dir", lambda g: _poll(g, [_fd_sub(1, 1, 3)])),
    ("poll stdout write", lambda g: _poll(g, [_fd_sub(2, 2, 1)])),
    ("poll stdout read", lambda g: _poll(g, [_fd_sub(2, 1, 1)])),
    ("poll stdin write", lambda g: _poll(g, [_fd_sub(2, 2, 0)])),
    ("poll closed fd first", lambda g: _poll(g, [_fd_sub(2, 1, 99), _clock(3, 2, 0)])),
    ("poll cpu clock first", lambda g: _poll(g, [_clock(3, 2, 0), _fd_sub(2, 1, 99)])),
    ("poll misaligned", lambda g: g.call("poll_oneoff", BUF + 4, BUF + 1024, 1, OUT)),
    ("open with sync flag", lambda g: g.open("file", fdflags=16)[0]),
    ("open missing with dsync flag", lambda g: g.open("nope", fdflags=2)[0]),
    ("open escape with rsync flag", lambda g: g.open("../x", fdflags=8)[0]),
    (
        "open append, write, tell",
        lambda g: (
            _write(g, f := _fd(g, "file", R_ALL, 0, 1), b"XY"),
            g.call("fd_tell", f, OUT),
            g.u64(OUT),
        ),
    ),
    (
        "set append then write",
        lambda g: (
            g.call("fd_fdstat_set_flags", f := _fd(g, "file", R_ALL), 1),
            _write(g, f, b"Z"),
            _seek(g, f, 0, 1),
        ),
    ),
    ("set sync flags", lambda g: g.call("fd_fdstat_set_flags", _fd(g, "file", R_ALL), 16)),
    (
        "seek around",
        lambda g: (_seek(g, f := _fd(g, "file"), 3, 0), _seek(g, f, -2, 1), _seek(g, f, -10, 1)),
    ),
    (
        "set size and stat",
        lambda g: (g.call("fd_filestat_set_size", f := _fd(g, "file", R_ALL), 20), _fdstat(g, f)),
    ),
    (
        "fd set times",
        lambda g: (
            g.call("fd_filestat_set_times", f := _fd(g, "file", R_ALL), 1000, 2000, 5),
            g.call("fd_filestat_get", f, OUT),
            g.u64(OUT + 40),
            g.u64(OUT + 48),
        ),
    ),
    (
        "readlink into short buffer",
        lambda g: (
            g.call("path_readlink", 3, *g.path("up"), BUF, 3, OUT),
            g.u32(OUT),
            g.read(BUF, 3),
        ),
    ),
    (
        "renumber onto stdout",
        lambda g: (g.call("fd_renumber", _fd(g, "new2", R_ALL, 1), 1), _write(g, 1, b"to file")),
    ),
    (
        "zero-length iovec out of bounds",
        lambda g: (
            g.write(OUT + 32, struct.pack("<II", 70000, 0)),
            g.call("fd_write", 1, OUT + 32, 1, OUT),
        )[1],
    ),
    ("no iovecs, array out of bounds", lambda g: g.call("fd_write", 1, 70000, 0, OUT)),
    ("random_get of nothing past the end", lambda g: g.call("random_get", 2**32 - 1, 0)),
    (
        "readdir into nothing past the end",
        lambda g: (g.call("fd_readdir", 3, 70000, 0, 0, OUT), g.u32(OUT)),
    ),
    ("empty path out of bounds", lambda g: g.call("path_create_directory", 3, 70000, 0)),
    (
        "dangling symlink: create exclusive",
        lambda g: (g.symlink("nowhere2", "dl2"), g.open("dl2", oflags=5)[0]),
    ),
    (
        "dangling symlink: stat follow",
        lambda g: (g.symlink("nowhere3", "dl3"), g.stat("dl3", True)),
    ),
    ("dangling symlink: mkdir over it", lambda g: g.one_path("path_create_directory", "dl3")),
    ("dangling symlink: as a directory", lambda g: g.symlink("a", "dl3/x")),
    ("rename dir into itself", lambda g: g.two_paths("path_rename", "sub", "sub/deep/x")),
    (
        "rename over non-empty dir",
        lambda g: (
            g.one_path("path_create_directory", "full"),
            g.symlink("x", "full/x"),
            g.two_paths("path_rename", "sub", "full"),
        ),
    ),
    (
        "rmdir symlink to dir",
        lambda g: (g.symlink("sub", "sublink"), g.one_path("path_remove_directory", "sublink")),
    ),
    ("unlink symlink to dir", lambda g: g.one_path("path_unlink_file", "sublink")),
    (
        "close preopen, then prestat",
        lambda g: (g.call("fd_close", 3), g.call("fd_prestat_get", 3, OUT)),
    ),
    ("unaligned out pointer", lambda g: g.call("args_sizes_get", OUT + 1, OUT + 8)),
]


def _run_all(rt: ModuleType, base: Path) -> list[Any]:
    base.mkdir()
    guest = Guest(rt, make_fixture(base), argv=["prog", "arg1"], env=[("K", "V")])
    return [op(guest) for _, op in OPS]


def test_results_match_wasmtime(tmp_path: Path) -> None:
    ours = _run_all(wasmrt, tmp_path / "wasmrt")
    theirs = _run_all(wasmtime, tmp_path / "wasmtime")
    diffs = [
        f"{name}: wasmrt {a!r}, wasmtime {b!r}"
        for (name, _), a, b in zip(OPS, ours, theirs, strict=True)
        if a != b
    ]
    assert not diffs, "\n".join(diffs)
