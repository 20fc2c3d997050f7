"""The preopen sandbox: no guest path reaches outside the preopened root.

Each escape attempt — ``..`` above the root, absolute paths, symlinks whose
target is absolute or climbs out (followed directly or as an intermediate
component), hard links and renames into or out of the root, creating
files, directories and symlinks outside — must fail with ``PERM`` (the errno
Wasmtime's cap-std sandbox gives) and leave the directory next to the root
untouched. Paths that stay inside (``sub/../file``, a relative in-root
symlink) keep working.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import wasmrt
from support.wasi_guest import Guest, make_fixture
from wasmrt.wasi import Errno

Op = Callable[[Guest], object]

PERM = Errno.PERM


def snapshot(d: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d.parent)): (p.read_text() if p.is_file() and not p.is_symlink() else "")
        for p in sorted(d.parent.rglob("*"))
        if not str(p).startswith(str(d.parent / "root"))
    }


ESCAPES: dict[str, Op] = {
    "open ..": lambda g: g.open("..")[0],
    "open ../outside/secret": lambda g: g.open("../outside/secret")[0],
    "open absolute": lambda g: g.open("/etc/passwd")[0],
    "open through absolute symlink": lambda g: g.open("abs/passwd")[0],
    "open absolute symlink followed": lambda g: g.open("abs")[0],
    "open through climbing symlink": lambda g: g.open("up/secret")[0],
    "open climbing symlink followed": lambda g: g.open("up")[0],
    "open through intermediate symlink": lambda g: g.open("sub/upup/outside/secret")[0],
    "open sub/../../": lambda g: g.open("sub/../../outside/secret")[0],
    "create ../created": lambda g: g.open("../created", oflags=1)[0],
    "create through climbing symlink": lambda g: g.open("up/created", oflags=1)[0],
    "create through absolute symlink": lambda g: g.open("abs/created", oflags=1)[0],
    "truncate through climbing symlink": lambda g: g.open("up/secret", oflags=8)[0],
    "stat ..": lambda g: g.stat(".."),
    "stat climbing symlink followed": lambda g: g.stat("up", True),
    "stat absolute symlink dir": lambda g: g.stat("abs/"),
    "hardlink out": lambda g: g.two_paths("path_link", "file", "../stolen"),
    "hardlink in": lambda g: g.two_paths("path_link", "../outside/secret", "got"),
    "hardlink in via symlink": lambda g: g.two_paths("path_link", "up/secret", "got"),
    "rename out": lambda g: g.two_paths("path_rename", "file", "../moved"),
    "rename in via symlink": lambda g: g.two_paths("path_rename", "up/secret", "got"),
    "rename in via intermediate": lambda g: g.two_paths(
        "path_rename", "sub/upup/outside/secret", "got"
    ),
    "mkdir ../newdir": lambda g: g.one_path("path_create_directory", "../newdir"),
    "mkdir via symlink": lambda g: g.one_path("path_create_directory", "up/newdir"),
    "unlink via symlink": lambda g: g.one_path("path_unlink_file", "up/secret"),
    "unlink absolute": lambda g: g.one_path("path_unlink_file", "/tmp/x"),
    "rmdir ..": lambda g: g.one_path("path_remove_directory", ".."),
    "symlink with absolute target": lambda g: g.symlink("/etc/passwd", "newlink"),
    "symlink placed outside": lambda g: g.symlink("x", "../newlink"),
    "timestamps via symlink": lambda g: g.call(
        "path_filestat_set_times", 3, 1, *g.path("up/secret"), 0, 0, 2
    ),
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escape_is_refused(name: str, tmp_path: Path) -> None:
    root = make_fixture(tmp_path)
    before = snapshot(root)
    guest = Guest(wasmrt, root)
    assert ESCAPES[name](guest) == PERM
    assert snapshot(root) == before


def test_planted_symlink_cannot_be_used_later(tmp_path: Path) -> None:
    """A relative symlink that climbs out may be *created* (Wasmtime allows it) but not used."""
    root = make_fixture(tmp_path)
    guest = Guest(wasmrt, root)
    assert guest.symlink("../outside", "planted") == 0
    assert guest.readlink("planted") == (0, b"../outside")
    assert guest.open("planted/secret")[0] == PERM
    assert guest.one_path("path_unlink_file", "planted/secret") == PERM
    assert (tmp_path / "outside" / "secret").read_text() == "secret"


def test_paths_inside_the_root_work(tmp_path: Path) -> None:
    root = make_fixture(tmp_path)
    guest = Guest(wasmrt, root)
    assert guest.open("sub/../file")[0] == 0
    assert guest.open("./sub/deep/../../inner")[0] == 0
    assert guest.open("sub/deep/", oflags=2, rights=2)[0] == 0
    assert guest.open(".", oflags=2, rights=2)[0] == 0
    assert guest.open("inner", follow=False)[0] == Errno.LOOP
    assert guest.open("loop")[0] == Errno.LOOP
    assert guest.stat("up") == 0  # the link itself lives inside
    assert guest.two_paths("path_rename", "file", "sub/deep/moved") == 0
    assert (root / "sub" / "deep" / "moved").read_text() == "hello"


def test_path_with_nul_is_invalid(tmp_path: Path) -> None:
    guest = Guest(wasmrt, make_fixture(tmp_path))
    assert guest.open("fi\0le")[0] == Errno.INVAL


def test_symlink_chain_limit(tmp_path: Path) -> None:
    root = make_fixture(tmp_path)
    for i in range(60):
        os.symlink(f"c{i + 1}", root / f"c{i}")
    (root / "c60").write_text("end")
    guest = Guest(wasmrt, root)
    assert guest.open("c0")[0] == Errno.LOOP
    assert guest.open("c30")[0] == 0
