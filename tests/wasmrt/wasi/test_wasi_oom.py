"""WASI under allocation failure: every ``try_alloc`` of a WASI call, refused in turn.

For each WASI call below (one per function family, made by wasm code through
``support.wasi_guest``), the fault-free run counts the call's allocations;
then, for every N, a fresh store makes the same call with the Nth allocation
refused — once (transient) or from then on (persistent). Each time:

- ``OutOfMemory`` reaches the embedder (no errno to the guest, no other error);
- the descriptor table, the preopened tree, the guest-visible stdout and the
  process's open host descriptors are exactly as before the call;
- the same call, repeated in the same store without faults, gives the
  fault-free result.

Whole programs get the same treatment: a hand-written WAT program and a
WASI testsuite C program (when ``../shared`` is present), each run with its
Nth allocation refused (once, or from then on) for every N, must end in ``OutOfMemory``, release
every host descriptor with the store, and run fault-free afterwards with
the fault-free exit code and output.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import wasmrt
from support.wasi_guest import BUF, GUEST_WAT, OUT, Guest, make_fixture
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.errors import OutOfMemory
from wasmrt.runtime.wasi_hook import store_wasi

SUITE = Path(
    os.environ.get(
        "WASI_TESTSUITE_DIR", Path(__file__).resolve().parents[4] / "shared" / "wasi-testsuite"
    )
)

R_ALL = (1 << 29) - 1
R_READ = 1 << 1


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


def _tree(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted(root.parent.rglob("*")):
        key = str(p.relative_to(root.parent))
        if p.is_symlink():
            out[key] = ("link", os.readlink(p))
        elif p.is_file():
            out[key] = ("file", p.read_bytes())
        else:
            out[key] = ("dir",)
    return out


@contextmanager
def refusing(n: int, persistent: bool) -> Iterator[list[int]]:
    """Refuse the ``n``-th allocation (0-based), and every later one if ``persistent``."""
    seen = [0]

    def hook(size: int, kind: AllocKind, absorbing: bool) -> None:
        i = seen[0]
        seen[0] += 1
        if i == n or (persistent and i > n):
            raise OutOfMemory(size)

    with install_hook(hook):
        yield seen


@contextmanager
def counting() -> Iterator[list[int]]:
    seen = [0]

    def hook(size: int, kind: AllocKind, absorbing: bool) -> None:
        seen[0] += 1

    with install_hook(hook):
        yield seen


# One call per family ---------------------------------------------------------------
# ``setup(g)`` runs fault-free and returns the call's arguments; ``observe(g, errno)``
# turns the call's effect into a comparable value.

Setup = Callable[[Guest], tuple[str, tuple[int, ...]]]


def _iov(g: Guest, data: bytes) -> int:
    g.write(BUF, data)
    g.write(OUT + 32, struct.pack("<II", BUF, len(data)))
    return OUT + 32


def _file_fd(g: Guest, rights: int = R_ALL) -> int:
    err, fd = g.open("file", rights=rights)
    assert err == 0 and fd is not None
    return fd


def _dir_fd(g: Guest) -> int:
    err, fd = g.open("sub", oflags=2, rights=R_READ)
    assert err == 0 and fd is not None
    return fd


def _poll_clock(g: Guest) -> tuple[str, tuple[int, ...]]:
    g.write(BUF, struct.pack("<QB7xIxxxxQQH6x", 42, 0, 1, 0, 0, 0))
    return "poll_oneoff", (BUF, BUF + 256, 1, OUT)


CALLS: dict[str, Setup] = {
    "args_get": lambda g: ("args_get", (OUT, BUF)),
    "environ_get": lambda g: ("environ_get", (OUT, BUF)),
    "clock_time_get": lambda g: ("clock_time_get", (1, 0, OUT)),
    "random_get": lambda g: ("random_get", (BUF, 64)),
    "sched_yield": lambda g: ("sched_yield", ()),
    "fd_write stdout": lambda g: ("fd_write", (1, _iov(g, b"hello"), 1, OUT)),
    "fd_write file": lambda g: ("fd_write", (_file_fd(g), _iov(g, b"data"), 1, OUT)),
    "fd_pwrite": lambda g: ("fd_pwrite", (_file_fd(g), _iov(g, b"data"), 1, 2, OUT)),
    "fd_read": lambda g: ("fd_read", (_file_fd(g), _iov(g, b"\0" * 16), 1, OUT)),
    "fd_pread": lambda g: ("fd_pread", (_file_fd(g), _iov(g, b"\0" * 16), 1, 1, OUT)),
    "fd_seek": lambda g: ("fd_seek", (_file_fd(g), 2, 0, OUT)),
    "fd_filestat_get": lambda g: ("fd_filestat_get", (_file_fd(g), OUT)),
    "fd_fdstat_get": lambda g: ("fd_fdstat_get", (3, OUT)),
    "fd_close": lambda g: ("fd_close", (_file_fd(g),)),
    "fd_renumber": lambda g: ("fd_renumber", (_file_fd(g), _dir_fd(g))),
    "fd_prestat_dir_name": lambda g: ("fd_prestat_dir_name", (3, BUF, 8)),
    "fd_readdir": lambda g: ("fd_readdir", (_dir_fd(g), BUF, 1024, 0, OUT)),
    "path_open": lambda g: ("path_open", (3, 1, *g.path("sub/../file"), 0, R_ALL, R_ALL, 0, OUT)),
    "path_open create": lambda g: ("path_open", (3, 1, *g.path("new"), 1, R_ALL, R_ALL, 0, OUT)),
    "path_open via symlink": lambda g: ("path_open", (3, 1, *g.path("inner"), 0, 2, 2, 0, OUT)),
    "path_create_directory": lambda g: ("path_create_directory", (3, *g.path("sub/newdir"))),
    "path_remove_directory": lambda g: ("path_remove_directory", (3, *g.path("sub/deep"))),
    "path_unlink_file": lambda g: ("path_unlink_file", (3, *g.path("file"))),
    "path_rename": lambda g: ("path_rename", (3, *g.path("file"), 3, *g.path("sub/moved", 1))),
    "path_link": lambda g: ("path_link", (3, 0, *g.path("file"), 3, *g.path("hard", 1))),
    "path_symlink": lambda g: ("path_symlink", (*g.path("file"), 3, *g.path("soft", 1))),
    "path_readlink": lambda g: ("path_readlink", (3, *g.path("inner"), BUF, 64, OUT)),
    "path_filestat_get": lambda g: ("path_filestat_get", (3, 1, *g.path("inner"), OUT)),
    "poll_oneoff": _poll_clock,
    "escape refused": lambda g: ("path_open", (3, 1, *g.path("up/secret"), 0, 2, 2, 0, OUT)),
}


class World:
    """One fixture tree and one store with the forwarding guest, set up for one call."""

    def __init__(self, base: Path, engine: Any, linker: Any, module: Any, setup: Setup) -> None:
        base.mkdir()
        self.root = make_fixture(base)
        self.guest = Guest(
            wasmrt, self.root, store=wasmrt.Store(engine), linker=linker, module=module
        )
        self.name, self.args = setup(self.guest)

    def state(self) -> tuple[Any, ...]:
        ctx = store_wasi(self.guest.store)
        return ctx.describe(), _tree(self.root), list(self.guest.stdout), _open_fds()

    def call(self) -> Any:
        errno = self.guest.raw(self.name, *self.args)
        return errno, self._written(), _tree(self.root), list(self.guest.stdout)

    def _written(self) -> bytes:
        """What the call wrote back, without what differs run to run or tree to tree."""
        g = self.guest
        if self.name in ("clock_time_get", "random_get", "poll_oneoff"):
            return b""
        if self.name in ("fd_filestat_get", "path_filestat_get"):
            return g.read(OUT + 16, 24)  # filetype, link count, size (not device, inode, times)
        if self.name == "fd_readdir":
            return g.read(OUT, 4)  # bytes used (inodes differ between fixture copies)
        return g.read(OUT, 64) + g.read(BUF, 256)

    def close(self) -> None:
        self.guest.store.close()


@pytest.fixture(scope="module")
def compiled() -> tuple[Any, Any, Any]:
    engine = wasmrt.Engine()
    linker = wasmrt.Linker(engine)
    linker.define_wasi()
    return engine, linker, wasmrt.Module(engine, GUEST_WAT)


@pytest.mark.parametrize("persistent", [False, True], ids=["transient", "persistent"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_allocation_of_a_wasi_call(
    call: str, persistent: bool, compiled: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    engine, linker, module = compiled
    world = World(tmp_path / "baseline", engine, linker, module, CALLS[call])
    try:
        with counting() as seen:
            expected = world.call()
    finally:
        world.close()
    total = seen[0]
    assert total > 0, "every WASI call allocates at least its call buffers"
    for n in range(total):
        world = World(tmp_path / f"n{n}", engine, linker, module, CALLS[call])
        try:
            before = world.state()
            with refusing(n, persistent), pytest.raises(OutOfMemory):
                world.call()
            assert world.state() == before, f"allocation {n} of {total}: state changed"
            assert world.call() == expected, f"allocation {n} of {total}: store broken"
        finally:
            world.close()


# Whole programs ------------------------------------------------------------------------

PROGRAM_WAT = """
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir"
    (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "out.txt")
  (data (i32.const 32) "written by the guest\\n")
  (func $check (param i32) (if (local.get 0) (then (call $exit (i32.const 2)))))
  (func (export "_start")
    (local $fd i32)
    (call $check (call $args_sizes (i32.const 0) (i32.const 4)))
    ;; create out.txt and write to it and to stdout
    (call $check (call $open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 7)
      (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 8)))
    (local.set $fd (i32.load (i32.const 8)))
    (i32.store (i32.const 64) (i32.const 32))
    (i32.store (i32.const 68) (i32.const 21))
    (call $check (call $write (local.get $fd) (i32.const 64) (i32.const 1) (i32.const 72)))
    (call $check (call $write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 72)))
    (call $check (call $close (local.get $fd)))
    (call $check (call $readdir (i32.const 3) (i32.const 1024) (i32.const 1024) (i64.const 0)
      (i32.const 72)))
    (call $exit (i32.const 7))))
"""


def _run(
    engine: Any, linker: Any, module: Any, root: Path, out: Path, argv: list[str]
) -> tuple[int, bytes]:
    config = wasmrt.WasiConfig()
    config.argv = argv
    config.preopen_dir(str(root), "/")
    config.stdout_file = str(out)
    with wasmrt.Store(engine) as store:
        store.set_wasi(config)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
            code = 0
        except wasmrt.ExitTrap as e:
            code = e.code
    return code, out.read_bytes()


def _programs() -> list[Any]:
    out: list[Any] = [pytest.param(None, None, id="wat-program")]
    wasm = SUITE / "c" / "pwrite-with-access.wasm"
    if wasm.exists():
        out.append(pytest.param(wasm, SUITE / "c" / "fs-tests.dir", id="c/pwrite-with-access"))
    else:
        out.append(
            pytest.param(
                None,
                None,
                id="c/pwrite-with-access",
                marks=pytest.mark.skip(reason=f"WASI testsuite not found at {SUITE}"),
            )
        )
    return out


@pytest.mark.parametrize("persistent", [False, True], ids=["transient", "persistent"])
@pytest.mark.parametrize(("wasm", "fixture"), _programs())
def test_every_allocation_of_a_program_run(
    wasm: Path | None, fixture: Path | None, persistent: bool, tmp_path: Path
) -> None:
    engine = wasmrt.Engine()
    linker = wasmrt.Linker(engine)
    linker.define_wasi()
    module = (
        wasmrt.Module(engine, PROGRAM_WAT)
        if wasm is None
        else wasmrt.Module.from_file(engine, str(wasm))
    )

    def fresh_root(name: str) -> Path:
        root = tmp_path / name
        if fixture is None:
            root.mkdir()
        else:
            shutil.copytree(fixture, root, symlinks=True)
        return root

    fds = _open_fds()
    argv = ["prog", "a"]
    expected = _run(engine, linker, module, fresh_root("base"), tmp_path / "base.out", argv)
    assert expected[0] == (7 if wasm is None else 0)
    with counting() as seen:
        _run(engine, linker, module, fresh_root("count"), tmp_path / "count.out", argv)
    total = seen[0]
    for n in range(total):
        root = fresh_root(f"n{n}")
        with refusing(n, persistent), pytest.raises(OutOfMemory):
            _run(engine, linker, module, root, tmp_path / f"n{n}.out", argv)
        assert _open_fds() == fds, f"allocation {n} of {total}: host descriptors leaked"
        shutil.rmtree(root)
        again = _run(engine, linker, module, fresh_root(f"r{n}"), tmp_path / f"r{n}.out", argv)
        assert again == expected, f"allocation {n} of {total}: fault-free rerun differs"
