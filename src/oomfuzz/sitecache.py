"""Scanned site universes kept on disk, so a sweep does not re-read the code under test.

:func:`oomfuzz.sites.scan` parses and compiles every file under its roots
(1–2 s for wasmrt), once per ``oomfuzz sweep``. :func:`cached_scan` returns
the same :class:`~oomfuzz.sites.Universe`, read from a cache file when one
was written for exactly the same inputs.

Invariants:
- The key is a sha256 over everything the scan is a function of: the
  Python version (sites are bytecode lines), the source of the scanning
  code (``oomfuzz/sites.py``, ``oomfuzz/inject.py``), the roots as given,
  and the path and *content* of every file the scan reads
  (:func:`~oomfuzz.sites.source_files`). A changed byte anywhere is a new
  key, so a stale universe is never returned.
- The cache is an optimisation only: an unreadable, corrupt or unwritable
  cache falls back to scanning (never an error); writes are atomic
  (a temporary file renamed into place), so readers never see half a file.
- Where: ``$OOMFUZZ_CACHE_DIR``, else ``$XDG_CACHE_HOME/oomfuzz``, else
  ``~/.cache/oomfuzz``; ``OOMFUZZ_CACHE_DIR=""`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import oomfuzz.inject as _inject
import oomfuzz.sites as _sites
from oomfuzz.inject import Site
from oomfuzz.sites import StaticSite, Universe, scan, source_files

__all__ = ["cache_dir", "cached_scan"]

_SCHEMA = "oomfuzz-site-universe/1"


def cache_dir() -> Path | None:
    """Where cached universes go (``None``: caching is off)."""
    configured = os.environ.get("OOMFUZZ_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "oomfuzz"


def cached_scan(roots: Iterable[str | os.PathLike[str]] | None = None) -> Universe:
    """``scan(roots)``, from the cache when its inputs are unchanged (module docstring)."""
    root_list = list(roots) if roots is not None else None
    where = cache_dir()
    if where is None:
        return scan(root_list)
    path = where / f"sites-{_key(root_list)}.json"
    universe = _load(path)
    if universe is None:
        universe = scan(root_list)
        _store(path, universe)
    return universe


def _key(roots: list[str | os.PathLike[str]] | None) -> str:
    h = hashlib.sha256()
    h.update(f"{_SCHEMA}\0{sys.version}\0{roots!r}\0".encode())
    for code in (_sites.__file__, _inject.__file__):
        h.update(Path(str(code)).read_bytes())
    for f in source_files(roots):
        h.update(f"\0{f}\0".encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:32]


def _load(path: Path) -> Universe | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("schema") != _SCHEMA:
            return None
        return _from_dict(d)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no usable cache entry: scan


def _store(path: Path, universe: Universe) -> None:
    data = {
        "schema": _SCHEMA,
        "roots": list(universe.roots),
        "files": sorted(universe.files),
        "sites": [s.to_dict() for s in universe.sites],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sites-", suffix=".tmp")
    except OSError:
        return  # a read-only cache directory: the sweep goes on uncached
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # a full disk: nothing half-written stays behind


def _from_dict(d: dict[str, Any]) -> Universe:
    sites = tuple(StaticSite(Site.from_dict(x), str(x["via"])) for x in d["sites"])
    return Universe(tuple(str(r) for r in d["roots"]), sites, frozenset(map(str, d["files"])))
