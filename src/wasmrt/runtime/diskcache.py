"""The on-disk code cache behind ``Config.cache``: generated code kept across processes.

Invariants:
- Off unless the engine's config set ``cache`` (``True``: the default
  directory; a TOML path: its ``[cache]`` table, ``enabled = false`` turns
  it off, ``directory`` overrides the default). The default directory is
  ``$WASMRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/wasmrt``, else
  ``~/.cache/wasmrt``. Nothing touches the disk before the first lookup;
  no directory is created before the first write.
- One entry per function, in ``<dir>/<64 hex>`` (flat: creating a
  directory per entry would double a cold write's cost), named by a
  SHA-256 over a salt (entry format, wasmrt version, a digest of the
  wasmrt package's source files, Python's bytecode magic and cache tag) and
  a stable rendering of the function's ``ContentKey`` (module-facts
  digest, type index, locals, body) and option variant (fuel, epoch). A key
  holding anything whose ``repr`` is not a pure function of its value (only
  ``None``/bool/int/str/bytes, tuples and lists of them, and ``wasmrt.ir``
  dataclasses of them qualify: floats are out, their ``repr`` drops NaN
  payloads) is not looked up or stored: never a wrong hit.
- An entry is ``ENTRY_MAGIC``, ``ENTRY_FORMAT`` (u16), the key digest, the
  bytecode magic, the payload length (u64), the payload (``marshal`` of the
  ``FunctionSource`` fields and the code object) and a SHA-256 of all
  before it. A load checks all of that before unmarshalling; any mismatch
  (corrupt, truncated, foreign, another Python) or unreadable file is a
  miss, and the function's regenerated entry replaces it.
- Entries are written to a temporary file beside the entry (named for the
  writing process and thread) and moved into place with ``os.replace``, so
  readers see a whole entry or none. ``OSError`` while writing (read-only,
  full, missing permissions), ``MemoryError`` while reading or encoding and
  ``RecursionError`` while saving (a function first called deep in wasm
  recursion) are swallowed there and only there: the cache never fails a
  module or a call.
- Nothing here asks ``try_alloc`` (the compiled variant asks for each
  function's code, hit or miss), so a warm cache leaves a module's
  allocation sequence unchanged. Counters (``hits``, ``misses``,
  ``writes``, ``failed_writes``) are kept per store, under a lock.
- This module reuses ``serialize.wasmrt_version`` but not the module
  container: that container asks ``try_alloc`` for its buffers and carries
  a module binary, and an entry must do neither.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import marshal
import os
import struct
import sys
import threading
import tomllib
from types import CodeType
from typing import Any

from wasmrt import compile as compile_package
from wasmrt import ir
from wasmrt.compile.codegen import ContentKey, FunctionSource
from wasmrt.serialize import wasmrt_version

__all__ = [
    "ENTRY_FORMAT",
    "ENTRY_MAGIC",
    "ENV_DIR",
    "DiskCodeCache",
    "code_store",
    "counters",
    "default_directory",
]

ENTRY_MAGIC = b"\x00wasmrt-code\x00\x00\x00\x00"
ENTRY_FORMAT = 1
#: Environment variable naming the default cache directory (tests, CI).
ENV_DIR = "WASMRT_CACHE_DIR"
_PY_MAGIC = importlib.util.MAGIC_NUMBER
_HEAD = struct.Struct("<H32sB")
_LENGTH = struct.Struct("<Q")
_DIGEST = 32
_ATOMS = (type(None), bool, int, str, bytes)
_ATOM_SET = frozenset(_ATOMS)
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
_MAX_PENDING = 4096

_lock = threading.Lock()
_stores: dict[str, DiskCodeCache] = {}
_sources: list[bytes | None] = []


def _sources_digest() -> bytes | None:
    """SHA-256 of every source file of the wasmrt package (None if one cannot be read):
    generated code changes with the code generator, the opcode table and the helpers
    it names even when the version does not (1-2 ms, once per process)."""
    if not _sources:
        package = os.path.dirname(os.path.dirname(os.path.abspath(compile_package.__file__ or "")))
        h = hashlib.sha256()
        try:
            for folder, subdirs, files in os.walk(package):
                subdirs.sort()
                for name in sorted(files):
                    if name.endswith(".py"):
                        path = os.path.join(folder, name)
                        with open(path, "rb") as f:
                            rel = os.path.relpath(path, package).encode()
                            h.update(rel + b"\0" + f.read() + b"\0")
            _sources.append(h.digest())
        except OSError:
            _sources.append(None)
    return _sources[0]


def _stable(value: object) -> bool:
    """Whether ``repr(value)`` is a pure function of ``value`` (same in every process)."""
    t = type(value)
    if t in _ATOMS:
        return True
    if t is tuple or t is list:
        return all(_stable(v) for v in value)  # type: ignore[attr-defined]
    if t is ir.Instr:
        imm = value.imm  # type: ignore[attr-defined]
        return type(value.op) is str and (  # type: ignore[attr-defined]
            type(imm) is tuple and all(type(v) in _ATOMS for v in imm) or _stable(imm)
        )
    if dataclasses.is_dataclass(value) and t.__module__ == ir.__name__:
        return all(_stable(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def _stable_body(body: tuple[object, ...]) -> list[tuple[str, tuple[object, ...]]] | None:
    """``body``'s instructions as (op, immediates) pairs, if they render stably (one pass
    over the body per check: this runs once per function looked up)."""
    flat = [(i.op, i.imm) for i in body if type(i) is ir.Instr]  # type: ignore[attr-defined]
    if len(flat) != len(body) or {(type(op), type(imm)) for op, imm in flat} - {(str, tuple)}:
        return None
    kinds = {type(v) for _, imm in flat for v in imm}
    if kinds - _ATOM_SET - {tuple}:
        return None
    if tuple in kinds and not all(_stable(v) for _, imm in flat for v in imm if type(v) is tuple):
        return None
    return flat


def _stable_key(key: ContentKey, fuel: bool, epoch: bool) -> bytes | None:
    parts = key.parts
    if len(parts) == 4 and type(parts[3]) is tuple:  # codegen's (context, type, locals, body)
        flat = _stable_body(parts[3])
        if flat is None or not _stable(parts[:3]):
            return None
        rendered: object = (parts[:3], flat)
    elif _stable(parts):
        rendered = parts
    else:
        return None
    return repr((bool(fuel), bool(epoch), rendered)).encode("utf-8")


class DiskCodeCache:
    """A directory of generated-code entries (implements ``compile.cache.CodeStore``)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.failed_writes = 0
        self._count_lock = threading.Lock()
        #: Digests of entries known to be on disk (read or written by this process).
        self._known: set[bytes] = set()
        #: Digests computed by ``load``/``wants`` for the ``save`` that follows a miss,
        #: by (id of the key, fuel, epoch); the key is kept so its id stays its own.
        self._pending: dict[tuple[int, bool, bool], tuple[ContentKey, bytes]] = {}
        salt = hashlib.sha256()
        for part in (
            ENTRY_MAGIC,
            str(ENTRY_FORMAT).encode(),
            wasmrt_version().encode(),
            _sources_digest() or b"",
            _PY_MAGIC,
            str(sys.implementation.cache_tag).encode(),
        ):
            salt.update(struct.pack("<I", len(part)) + part)
        self._salt = salt

    def _count(self, name: str) -> None:
        with self._count_lock:
            setattr(self, name, getattr(self, name) + 1)

    def digest(self, key: ContentKey, fuel: bool, epoch: bool) -> bytes | None:
        """The entry name of ``key`` in the variant (fuel, epoch), or None if not stable."""
        rendered = _stable_key(key, fuel, epoch)
        if rendered is None:
            return None
        h = self._salt.copy()
        h.update(rendered)
        return h.digest()

    def _remember_pending(self, key: ContentKey, fuel: bool, epoch: bool, digest: bytes) -> None:
        if len(self._pending) >= _MAX_PENDING:  # saves that never came (failed compiles)
            self._pending.clear()
        self._pending[(id(key), fuel, epoch)] = (key, digest)

    def _pending_digest(self, key: ContentKey, fuel: bool, epoch: bool) -> bytes | None:
        got = self._pending.pop((id(key), fuel, epoch), None)
        if got is not None and got[0] is key:
            return got[1]
        return self.digest(key, fuel, epoch)

    def entry_path(self, digest: bytes) -> str:
        return os.path.join(self.directory, digest.hex())

    def load(
        self, key: ContentKey, fuel: bool, epoch: bool
    ) -> tuple[FunctionSource, CodeType] | None:
        try:
            digest = self.digest(key, fuel, epoch)
            got = None if digest is None else self._read(digest)
        except MemoryError:  # the host is short of memory: generate instead
            digest = got = None
        if digest is None or got is None:
            self._count("misses")
            if digest is not None:
                self._remember_pending(key, fuel, epoch, digest)
            return None
        self._count("hits")
        self._known.add(digest)
        return got

    def wants(self, key: ContentKey, fuel: bool, epoch: bool) -> bool:
        try:
            digest = self.digest(key, fuel, epoch)
        except MemoryError:
            return False
        if digest is None or digest in self._known:
            return False
        if os.path.exists(self.entry_path(digest)):
            self._known.add(digest)
            return False
        self._remember_pending(key, fuel, epoch, digest)
        return True

    def _read(self, digest: bytes) -> tuple[FunctionSource, CodeType] | None:
        try:
            with open(self.entry_path(digest), "rb") as f:
                data = f.read()
        except OSError:
            return None
        return decode_entry(data, digest)

    def save(
        self, key: ContentKey, fuel: bool, epoch: bool, source: FunctionSource, code: CodeType
    ) -> None:
        try:
            digest = self._pending_digest(key, fuel, epoch)
            if digest is None:
                return
            blob = encode_entry(digest, source, code)
        except (MemoryError, RecursionError):  # keeping it is optional: the code is there
            return
        try:
            self._write(self.entry_path(digest), blob)
        except (OSError, RecursionError):  # read-only, full, forbidden; or deep in recursion
            self._count("failed_writes")
            return
        self._known.add(digest)
        self._count("writes")

    def _write(self, path: str, blob: bytes) -> None:
        # One writer per (process, thread) uses a temporary name at a time.
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o644)
        except FileNotFoundError:  # first entry: the directory is not there yet
            os.makedirs(self.directory, exist_ok=True)
            fd = os.open(tmp, _TMP_FLAGS, 0o644)
        try:
            with open(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass  # already gone; the original error is what matters
            raise


def encode_entry(digest: bytes, source: FunctionSource, code: CodeType) -> bytes:
    """The bytes of the entry for ``digest`` holding ``source`` and ``code``."""
    payload = marshal.dumps(
        (
            source.text,
            tuple(sorted(source.consts.items())),
            source.lines_before_body,
            tuple(source.line_instrs),
            code,
        )
    )
    head = (
        ENTRY_MAGIC
        + _HEAD.pack(ENTRY_FORMAT, digest, len(_PY_MAGIC))
        + _PY_MAGIC
        + _LENGTH.pack(len(payload))
    )
    body = head + payload
    return body + hashlib.sha256(body).digest()


def decode_entry(data: bytes, digest: bytes) -> tuple[FunctionSource, CodeType] | None:
    """``encode_entry``'s source and code if ``data`` is a whole, intact entry for
    ``digest`` written by this Python; None otherwise."""
    start = len(ENTRY_MAGIC) + _HEAD.size + len(_PY_MAGIC) + _LENGTH.size
    if len(data) < start + _DIGEST or not data.startswith(ENTRY_MAGIC):
        return None
    fmt, stored, magic_len = _HEAD.unpack_from(data, len(ENTRY_MAGIC))
    magic_at = len(ENTRY_MAGIC) + _HEAD.size
    if fmt != ENTRY_FORMAT or stored != digest or magic_len != len(_PY_MAGIC):
        return None
    if data[magic_at : magic_at + magic_len] != _PY_MAGIC:
        return None
    (length,) = _LENGTH.unpack_from(data, magic_at + magic_len)
    if len(data) != start + length + _DIGEST:
        return None
    if hashlib.sha256(memoryview(data)[: start + length]).digest() != data[start + length :]:
        return None
    try:
        fields = marshal.loads(memoryview(data)[start : start + length])
    except (ValueError, EOFError, TypeError):
        return None
    return _source_and_code(fields)


def _source_and_code(fields: Any) -> tuple[FunctionSource, CodeType] | None:
    if type(fields) is not tuple or len(fields) != 5:
        return None
    text, consts, before, instrs, code = fields
    ok = (
        type(text) is str
        and type(consts) is tuple
        and all(type(c) is tuple and len(c) == 2 and all(type(s) is str for s in c) for c in consts)
        and type(before) is int
        and type(instrs) is tuple
        and all(type(n) is int for n in instrs)
        and isinstance(code, CodeType)
        and text.startswith(f"def {code.co_name}(")
    )
    if not ok:
        return None
    return FunctionSource(text, dict(consts), before, instrs), code


def default_directory() -> str:
    """Where ``Config.cache = True`` keeps entries (see the module docstring)."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return os.path.abspath(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "wasmrt")
    return os.path.join(os.path.expanduser("~"), ".cache", "wasmrt")


def _configured_directory(setting: object) -> str | None:
    """The directory ``Config.cache``'s value ``setting`` names, or None when off."""
    if setting is True:
        return default_directory()
    if not isinstance(setting, str):
        return None
    try:
        with open(setting, "rb") as f:
            table = tomllib.loads(f.read().decode("utf-8")).get("cache", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # checked when it was set; gone or changed since: run uncached
    if not isinstance(table, dict) or table.get("enabled", True) is not True:
        return None
    directory = table.get("directory")
    if directory is None:
        return default_directory()
    return os.path.abspath(directory) if isinstance(directory, str) else None


def code_store(config: object) -> DiskCodeCache | None:
    """The on-disk cache an engine with ``config`` (``ConfigValues``) compiles into,
    or None when ``Config.cache`` was not set (or the code generator is unreadable)."""
    setting = getattr(config, "cache", False)
    if setting is False:
        return None
    directory = _configured_directory(setting)
    if directory is None or _sources_digest() is None:
        return None
    with _lock:
        store = _stores.get(directory)
        if store is None:
            store = _stores[directory] = DiskCodeCache(directory)
    return store


def counters() -> dict[str, int]:
    """Hits, misses, writes and failed writes of every store this process used."""
    out = {"hits": 0, "misses": 0, "writes": 0, "failed_writes": 0}
    with _lock:
        stores = list(_stores.values())
    for store in stores:
        for name in out:
            out[name] += getattr(store, name)
    return out
