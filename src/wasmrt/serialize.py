"""Module serialization: a versioned, checksummed container for a module and its artifacts.

Layout (all integers little-endian)::

    magic            16 bytes  b"\\x00wasmrt-module\\x00\\x00"
    format version   u16       FORMAT_VERSION
    total length     u64       whole blob, checksum included
    wasmrt version   u16 length + UTF-8
    settings         u32 length + UTF-8 JSON (the engine settings that shape code)
    fingerprint      32 bytes  SHA-256 of the settings JSON
    section count    u32
    sections         u16 name length + UTF-8 name, u64 length + payload
    checksum         32 bytes  SHA-256 of every byte before it

The ``wasm`` section (the module binary) is always present; other sections
are precomputed compile artifacts: ``compiled_variants`` (JSON: every
code variant's generated Python source, one per function, and the constants
its namespace needs) and ``python_source`` (the default variant's source,
informational). ``deserialize_compiled`` rebuilds the ``CompiledModule``
from ``compiled_variants`` without the code generator; each function's
source is compiled by Python on its first call.

Invariants:
- Checks run in a fixed order and each raises ``WasmtimeError`` with a
  message naming the cause: magic ("bytes are not a compatible serialized
  wasmrt module"), format version, truncation / trailing bytes (declared vs
  actual length), checksum (corruption), wasmrt version, engine settings
  (names the first differing setting), then section structure. Nothing is
  built before the checksum has been verified.
- Deserialising asks ``try_alloc`` for every buffer and table it builds
  (``AllocKind.MODULE`` for the module bytes and the section table,
  ``AllocKind.CODE`` for compile artifacts); an ``OutOfMemory`` propagates
  unchanged and leaves nothing behind. Serialising asks for the output blob.
- ``serialize(module, config, compiled)`` / ``deserialize_compiled(data,
  config) -> (ir.Module, CompiledModule | None)`` is the pair
  ``wasmrt.runtime.module.Module`` calls (``deserialize`` gives the IR only);
  the header checks above (version, engine settings) always run first, so
  compiled code is only loaded for this wasmrt version and engine settings. ``serialize_module`` /
  ``deserialize_module`` give access to the header and artifacts.
- Only the standard library is used.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wasmrt import ir
from wasmrt.alloc import AllocKind, TryDict, try_alloc
from wasmrt.binary import decode_module, encode_module
from wasmrt.compile import CompiledModule, load_variant
from wasmrt.errors import MalformedError, WasmtimeError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "SerializedModule",
    "COMPILED_ARTIFACT",
    "config_settings",
    "deserialize",
    "deserialize_compiled",
    "deserialize_module",
    "fingerprint",
    "load_compiled",
    "read_header",
    "serialize",
    "serialize_module",
    "wasmrt_version",
]

MAGIC = b"\x00wasmrt-module\x00\x00"
FORMAT_VERSION = 1
_CHECKSUM_SIZE = 32
_FINGERPRINT_SIZE = 32
#: Settings that never change generated code, left out of the fingerprint.
_IGNORED_SETTINGS = frozenset({"profiler", "parallel_compilation", "cache"})

_version_cache: list[str] = []


def wasmrt_version() -> str:
    """The installed wasmrt distribution version (cached)."""
    if not _version_cache:
        try:
            from importlib.metadata import PackageNotFoundError, version

            try:
                found = version("wasmrt-oomfuzz")
            except PackageNotFoundError:
                found = "0.0.0+unknown"
        except ImportError:
            found = "0.0.0+unknown"
        _version_cache.append(found)
    return _version_cache[0]


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return repr(value)


def config_settings(config: object) -> dict[str, object]:
    """The code-shaping engine settings of ``config`` as a flat, JSON-ready dict.

    Accepts the engine's ``ConfigValues`` (``flags``, ``ints``, ``choices``,
    ``epoch_interruption``, ``target``, ``cranelift_flags``), a plain mapping,
    or ``None`` (no settings).
    """
    out: dict[str, object] = {}
    if config is None:
        return out
    if isinstance(config, Mapping):
        items: dict[str, object] = {str(k): v for k, v in config.items()}
    else:
        items = {}
        for group in ("flags", "ints", "choices"):
            values = getattr(config, group, None)
            if isinstance(values, Mapping):
                items.update({str(k): v for k, v in values.items()})
        for name in ("epoch_interruption", "target", "cranelift_flags"):
            if hasattr(config, name):
                items[name] = getattr(config, name)
    for name in sorted(items):
        if name not in _IGNORED_SETTINGS:
            out[name] = _jsonable(items[name])
    return out


def _settings_json(settings: Mapping[str, object]) -> bytes:
    return json.dumps(dict(settings), sort_keys=True, separators=(",", ":")).encode("utf-8")


def fingerprint(config: object) -> bytes:
    """SHA-256 of the canonical settings of ``config`` (see ``config_settings``)."""
    return hashlib.sha256(_settings_json(config_settings(config))).digest()


@dataclass(slots=True)
class SerializedModule:
    """What ``deserialize_module`` recovered."""

    wasmrt_version: str
    settings: dict[str, object]
    fingerprint: bytes
    wasm: bytes
    #: Compile artifacts by section name (everything except ``wasm``).
    artifacts: dict[str, bytes] = field(default_factory=dict)


def serialize_module(
    wasm: bytes | bytearray, config: object = None, artifacts: Mapping[str, bytes] | None = None
) -> bytearray:
    """Pack the module binary ``wasm`` and ``artifacts`` for the engine settings ``config``."""
    settings = _settings_json(config_settings(config))
    version = wasmrt_version().encode("utf-8")
    sections: list[tuple[bytes, bytes]] = [(b"wasm", bytes(wasm))]
    for name, payload in (artifacts or {}).items():
        if name == "wasm":
            raise ValueError("the 'wasm' section is reserved for the module binary")
        if not isinstance(payload, (bytes, bytearray)):
            raise TypeError(f"artifact {name!r} must be bytes")
        sections.append((name.encode("utf-8"), bytes(payload)))
    body_size = (
        len(MAGIC)
        + 2
        + 8
        + 2
        + len(version)
        + 4
        + len(settings)
        + _FINGERPRINT_SIZE
        + 4
        + sum(2 + len(n) + 8 + len(p) for n, p in sections)
    )
    total = body_size + _CHECKSUM_SIZE
    try_alloc(total, AllocKind.MODULE)
    out = bytearray()
    out += MAGIC
    out += struct.pack("<HQ", FORMAT_VERSION, total)
    out += struct.pack("<H", len(version)) + version
    out += struct.pack("<I", len(settings)) + settings
    out += hashlib.sha256(settings).digest()
    out += struct.pack("<I", len(sections))
    for raw_name, raw_payload in sections:
        out += struct.pack("<H", len(raw_name)) + raw_name
        out += struct.pack("<Q", len(raw_payload)) + raw_payload
    out += hashlib.sha256(out).digest()
    assert len(out) == total
    return out


class _Reader:
    """Bounds-checked cursor over a verified blob; every overrun is a ``WasmtimeError``."""

    def __init__(self, data: memoryview, start: int, end: int) -> None:
        self.data = data
        self.pos = start
        self.end = end

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > self.end:
            raise WasmtimeError(f"serialized module is malformed: {what} runs past the end")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        value: int = struct.unpack(fmt, self.take(size, what))[0]
        return value

    def text(self, n: int, what: str) -> str:
        try:
            return bytes(self.take(n, what)).decode("utf-8")
        except UnicodeDecodeError:
            raise WasmtimeError(f"serialized module is malformed: {what} is not UTF-8") from None


def _view(data: bytes | bytearray | memoryview) -> memoryview:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("expected bytes")
    return memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)


def read_header(data: bytes | bytearray | memoryview) -> tuple[int, int, str]:
    """Check magic, format version and length; return ``(format_version, total, wasmrt_version)``.

    Does not verify the checksum (``deserialize_module`` does).
    """
    view = _view(data)
    fixed = len(MAGIC) + 2 + 8
    if len(view) < len(MAGIC) or bytes(view[: len(MAGIC)]) != MAGIC:
        raise WasmtimeError("bytes are not a compatible serialized wasmrt module")
    if len(view) < fixed:
        raise WasmtimeError(
            f"serialized module is truncated: {len(view)} bytes is shorter than its header"
        )
    fmt, total = struct.unpack_from("<HQ", view, len(MAGIC))
    if fmt != FORMAT_VERSION:
        raise WasmtimeError(
            f"serialized module uses format version {fmt}, but this wasmrt reads format "
            f"version {FORMAT_VERSION}"
        )
    if len(view) < total:
        raise WasmtimeError(
            f"serialized module is truncated: expected {total} bytes, found {len(view)}"
        )
    if len(view) > total:
        raise WasmtimeError(
            f"serialized module is corrupt: {len(view) - total} unexpected bytes after its end"
        )
    if total < fixed + _CHECKSUM_SIZE:
        raise WasmtimeError("serialized module is corrupt: impossible length in header")
    reader = _Reader(view, fixed, total - _CHECKSUM_SIZE)
    vlen = reader.uint("<H", "version")
    version = reader.text(vlen, "version")
    return fmt, total, version


def deserialize_module(
    data: bytes | bytearray | memoryview, config: object = None
) -> SerializedModule:
    """Verify and unpack a blob from ``serialize_module`` for an engine with ``config``."""
    view = _view(data)
    _, total, _ = read_header(view)
    body_end = total - _CHECKSUM_SIZE
    if hashlib.sha256(view[:body_end]).digest() != bytes(view[body_end:total]):
        raise WasmtimeError("serialized module is corrupt: checksum mismatch")
    reader = _Reader(view, len(MAGIC) + 2 + 8, body_end)
    version = reader.text(reader.uint("<H", "version"), "version")
    if version != wasmrt_version():
        raise WasmtimeError(
            f"Module was compiled with incompatible wasmrt version '{version}' "
            f"(this is wasmrt '{wasmrt_version()}')"
        )
    settings_raw = bytes(reader.take(reader.uint("<I", "settings"), "settings"))
    stored_fp = bytes(reader.take(_FINGERPRINT_SIZE, "fingerprint"))
    try:
        settings = json.loads(settings_raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WasmtimeError("serialized module is malformed: unreadable settings") from None
    if not isinstance(settings, dict) or hashlib.sha256(settings_raw).digest() != stored_fp:
        raise WasmtimeError("serialized module is malformed: settings do not match fingerprint")
    ours = config_settings(config)
    if stored_fp != fingerprint(config):
        for name in sorted(set(settings) | set(ours)):
            if settings.get(name) != ours.get(name):
                raise WasmtimeError(
                    f"Module was compiled with a different '{name}' setting: expected "
                    f"'{_show(settings.get(name))}' but host has '{_show(ours.get(name))}'"
                )
        raise WasmtimeError("Module was compiled with incompatible engine settings")
    count = reader.uint("<I", "section count")
    # The section table itself: bounded by what the blob could possibly hold.
    if count > (body_end - reader.pos) // 10:
        raise WasmtimeError("serialized module is malformed: impossible section count")
    artifacts: TryDict[str, bytes] = TryDict(kind=AllocKind.MODULE)
    wasm: bytes | None = None
    for _ in range(count):
        name = reader.text(reader.uint("<H", "section name"), "section name")
        size = reader.uint("<Q", f"section {name!r}")
        payload = reader.take(size, f"section {name!r}")
        if name == "wasm":
            if wasm is not None:
                raise WasmtimeError("serialized module is malformed: duplicate 'wasm' section")
            try_alloc(size, AllocKind.MODULE)
            wasm = bytes(payload)
        else:
            if name in artifacts:
                raise WasmtimeError(f"serialized module is malformed: duplicate section {name!r}")
            try_alloc(size, AllocKind.CODE)
            artifacts[name] = bytes(payload)
    if reader.pos != body_end:
        raise WasmtimeError("serialized module is malformed: bytes left after the last section")
    if wasm is None:
        raise WasmtimeError("serialized module is malformed: missing 'wasm' section")
    return SerializedModule(
        wasmrt_version=version,
        settings=settings,
        fingerprint=stored_fp,
        wasm=wasm,
        artifacts=dict(artifacts),
    )


def _show(value: object) -> str:
    if value is None:
        return "<unset>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


#: Artifact holding every compiled variant (source + constants), as JSON.
COMPILED_ARTIFACT = "compiled_variants"
#: Version of the ``compiled_variants`` payload layout (2: generated code passes
#: ``call_indirect``'s failure path the ``TableInstance``; see ``wasmrt.vm.table``;
#: 3: one source per function, compiled on first use, constants named by their bits,
#: no constant dicts).
COMPILED_FORMAT = 3


class _NotEncodable(Exception):
    """A compiled variant holds a constant this format cannot carry."""


def _encode_variant(v: Any) -> dict[str, object]:
    # Every function's source first: generating them completes ``consts``.
    sources = [str(f) for f in v.function_sources]
    consts = getattr(v, "consts", None)
    if not isinstance(consts, Mapping):
        raise _NotEncodable("variant without constants")
    for key in consts.values():
        if not isinstance(key, str):
            raise _NotEncodable(repr(key))
    return {
        "fuel": bool(v.fuel),
        "epoch": bool(v.epoch),
        "function_sources": sources,
        "consts": {str(k): val for k, val in consts.items()},
    }


def _artifacts_of(compiled: Any) -> dict[str, bytes]:
    """Artifacts worth shipping from a compiled module.

    A ``CompiledModule`` ships every variant it has set up (``compiled_variants``:
    every function's generated source plus the constants its namespace needs;
    functions not generated yet are generated here, none is compiled) and the
    default variant's source as ``python_source``. Another object ships its
    ``source`` string, if any, as ``python_source``.
    """
    out: dict[str, bytes] = {}
    if compiled is None:
        return out
    built = getattr(compiled, "built_variants", None)
    if callable(built):
        variants = built()
        try:
            payload: dict[str, object] | None = {
                "format": COMPILED_FORMAT,
                "variants": [_encode_variant(v) for v in variants],
            }
        except _NotEncodable:
            payload = None  # ship the binary only; loading recompiles
        for v in variants:
            if not v.fuel and not v.epoch and isinstance(v.source, str):
                out["python_source"] = v.source.encode("utf-8")
        if payload is not None:
            out[COMPILED_ARTIFACT] = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return out
    source = getattr(compiled, "source", None)
    if isinstance(source, str):
        out["python_source"] = source.encode("utf-8")
    return out


def serialize(module: ir.Module, config: object = None, compiled: Any = None) -> bytearray:
    """Serialize an IR module (re-encoded to its binary) plus ``compiled``'s artifacts."""
    return serialize_module(encode_module(module), config, _artifacts_of(compiled))


def _decode_ir(unpacked: SerializedModule) -> ir.Module:
    try:
        return decode_module(unpacked.wasm)
    except MalformedError as e:
        raise WasmtimeError(
            f"serialized module is corrupt: its module binary does not decode\n\nCaused by:\n    {e}"
        ) from e


def deserialize(data: bytes | bytearray | memoryview, config: object = None) -> ir.Module:
    """Verify ``data`` for an engine with ``config`` and decode its module to IR."""
    return _decode_ir(deserialize_module(data, config))


_MALFORMED_CODE = "serialized module is malformed: unreadable 'compiled_variants' artifact"


def _variant_fields(raw: object) -> tuple[list[str], dict[str, str], bool, bool]:
    if not isinstance(raw, dict):
        raise WasmtimeError(_MALFORMED_CODE)
    funcs = raw.get("function_sources")
    consts = raw.get("consts")
    fuel = raw.get("fuel")
    epoch = raw.get("epoch")
    if (
        not isinstance(funcs, list)
        or not all(isinstance(f, str) for f in funcs)
        or not isinstance(consts, dict)
        or not all(_const_key(k) for k in consts.values())
        or not isinstance(fuel, bool)
        or not isinstance(epoch, bool)
    ):
        raise WasmtimeError(_MALFORMED_CODE)
    return funcs, consts, fuel, epoch


def _const_key(key: object) -> bool:
    """``"f32:<bits>"`` or ``"f64:<bits>"``."""
    if not isinstance(key, str):
        return False
    kind, _, bits = key.partition(":")
    return kind in ("f32", "f64") and bits.isdigit()


def load_compiled(module: ir.Module, unpacked: SerializedModule) -> Any:
    """The ``CompiledModule`` rebuilt from ``unpacked``'s artifacts, or ``None`` if it has none.

    Runs no code generator: each variant's stored function sources are kept
    with its stored constants (``wasmrt.compile.load_variant``) and each is
    compiled on its function's first use.
    """
    raw = unpacked.artifacts.get(COMPILED_ARTIFACT)
    if raw is None:
        return None
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WasmtimeError(_MALFORMED_CODE) from None
    if not isinstance(payload, dict) or payload.get("format") != COMPILED_FORMAT:
        raise WasmtimeError(
            "serialized module uses an unknown 'compiled_variants' format "
            f"{payload.get('format') if isinstance(payload, dict) else None!r}"
        )
    variants = payload.get("variants")
    if not isinstance(variants, list) or not variants:
        raise WasmtimeError(_MALFORMED_CODE)
    fields = [_variant_fields(v) for v in variants]
    try:
        loaded = [load_variant(module, *f) for f in fields]
    except WasmtimeError as e:
        raise WasmtimeError(f"{_MALFORMED_CODE}\n\nCaused by:\n    {e}") from e
    return CompiledModule.from_variants(module, loaded)


def deserialize_compiled(
    data: bytes | bytearray | memoryview, config: object = None
) -> tuple[ir.Module, Any]:
    """Verify ``data`` and return ``(ir module, CompiledModule or None)`` without recompiling.

    ``None`` means the blob carries no compiled code (the caller compiles).
    """
    unpacked = deserialize_module(data, config)
    module = _decode_ir(unpacked)
    return module, load_compiled(module, unpacked)
