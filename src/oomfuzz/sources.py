"""Finding the source text of a site's file, from the path a report names it by.

A report names every site's file as :func:`oomfuzz.inject.short_path` gives
it: relative to ``src/`` or ``site-packages`` (``wasmrt/vm/store.py``), i.e.
relative to the root its top-level package is imported from, else relative to
the directory the sweep ran in. The JSON carries only those names; whoever
renders the report reads the text here, from the package installed (or on
``sys.path``) on *this* machine, and the HTML embeds the lines it shows, so
an HTML report renders anywhere.

Invariants:
- Lookup order: an absolute path as is; then ``DIR/name`` for each extra
  directory given, the current directory, and each ``sys.path`` entry; then
  the top-level package's import location (``importlib.util.find_spec`` of
  the first path component, which imports nothing below it). The first file
  that exists wins.
- Names of generated code (``<...>``) have no source: ``None``.
- Never raises for a missing or unreadable file: ``None`` (the page says so).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["find_source", "read_source"]


def _candidates(name: str, extra: Sequence[str | os.PathLike[str]]) -> list[Path]:
    out = [Path(d) / name for d in (*extra, os.getcwd(), *sys.path) if d != ""]
    top = name.split("/", 1)[0]
    if top.isidentifier():
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                out.append(Path(loc).parent / name)
        elif spec is not None and spec.origin:
            out.append(Path(spec.origin).parent / name)
    return out


def find_source(name: str, extra: Sequence[str | os.PathLike[str]] = ()) -> Path | None:
    """The file a site names ``name``, on this machine; ``None`` when there is none."""
    if not name or name.startswith("<"):
        return None
    p = Path(name)
    if p.is_absolute():
        return p if p.is_file() else None
    for c in _candidates(name, extra):
        if c.is_file():
            return c
    return None


def read_source(name: str, extra: Sequence[str | os.PathLike[str]] = ()) -> list[str] | None:
    """The lines of ``name``'s source (no line ends), or ``None`` when it cannot be read."""
    path = find_source(name, extra)
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
