# oomfuzz: fork=false
"""WASI path operations under injection: create/remove directories, open with O_CREAT/O_EXCL/
O_TRUNC, stat, set times, rename, hard and symbolic links, readlink, unlink — and the
sandbox refusing escapes (``..``, absolute paths, symlinks out) with PERM."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_wasi_guest", Path(__file__).with_name("_wasi_guest.py")
)
_guest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guest)

NAMES = [
    "path_open",
    "path_create_directory",
    "path_remove_directory",
    "path_unlink_file",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_rename",
    "path_link",
    "path_symlink",
    "path_readlink",
    "fd_close",
]


def scenario(ctx):
    world = _guest.WasiWorld(ctx, NAMES, files={"a.txt": b"aaaa", "dir/b.txt": b"bb"})
    try:
        out, buf = _guest.OUT, _guest.BUF

        def one(name, path):
            return world.call(name, 3, *world.path(path))

        def two(name, old, new):
            if name == "path_link":
                return world.call(name, 3, 0, *world.path(old), 3, *world.path(new, 1))
            if name == "path_symlink":
                return world.call(name, *world.path(old), 3, *world.path(new, 1))
            return world.call(name, 3, *world.path(old), 3, *world.path(new, 1))

        ctx.record(
            ("mkdir", one("path_create_directory", "new"), one("path_create_directory", "new"))
        )
        ctx.record(("mkdir nested", one("path_create_directory", "new/inner/")))
        err, fd = world.open("new/created.txt", oflags=1 | 4)
        ctx.record(("create excl", err, world.open("new/created.txt", oflags=1 | 4)[0]))
        ctx.record(("close", world.call("fd_close", fd)))
        ctx.record(("trunc", world.open("a.txt", oflags=8)[0]))
        ctx.record(("stat", world.call("path_filestat_get", 3, 1, *world.path("dir/b.txt"), out)))
        ctx.record((world.read(out + 16, 1), world.u64(out + 24), world.u64(out + 32)))
        ctx.record(
            (
                "times",
                world.call("path_filestat_set_times", 3, 1, *world.path("a.txt"), 5, 7, 1 | 4),
            )
        )
        world.call("path_filestat_get", 3, 1, *world.path("a.txt"), out)
        ctx.record(("atim/mtim", world.u64(out + 40), world.u64(out + 48)))
        ctx.record(("rename", two("path_rename", "dir/b.txt", "new/b2.txt")))
        ctx.record(("link", two("path_link", "new/b2.txt", "hard.txt")))
        world.call("path_filestat_get", 3, 0, *world.path("hard.txt"), out)
        ctx.record(("nlink", world.u64(out + 24)))
        ctx.record(("symlink", two("path_symlink", "new/b2.txt", "soft")))
        ctx.record(("readlink", world.call("path_readlink", 3, *world.path("soft"), buf, 64, out)))
        ctx.record(world.read(buf, world.u32(out)))
        ctx.record(
            (
                "readlink short",
                world.call("path_readlink", 3, *world.path("soft"), buf, 3, out),
                world.u32(out),
            )
        )
        ctx.record(("open via symlink", world.open("soft", rights=_guest.R_READ)[0]))
        ctx.record(("unlink", one("path_unlink_file", "soft"), one("path_unlink_file", "soft")))
        ctx.record(("rmdir non-empty", one("path_remove_directory", "new")))
        ctx.record(("rmdir", one("path_remove_directory", "new/inner")))
        ctx.record(
            ("escape ..", world.open("../etc/passwd")[0], one("path_create_directory", "../x"))
        )
        ctx.record(("escape abs", world.open("/etc/passwd")[0]))
        ctx.record(("plant", two("path_symlink", "../..", "up"), world.open("up/etc/passwd")[0]))
        ctx.record(("abs symlink", two("path_symlink", "/etc", "abs")))
        ctx.record(("rename out", two("path_rename", "a.txt", "../a.txt")))
        ctx.record(("link out", two("path_link", "a.txt", "up/a.txt")))
        ctx.record(("missing", world.open("nope")[0], one("path_unlink_file", "nope")))
    finally:
        world.close()
