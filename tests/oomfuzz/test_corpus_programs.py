"""The committed real-C corpus programs (``corpus/programs``): the modules are
the ones the manifest describes, and they behave as their sidecars say.

Runs under wasmtime-py, the reference engine (skipped, saying why, when it is
not installed). Outputs are also checked independently of any engine: the
generated input is recomputed here, and the XXH32/XXH64 digests are computed
by a Python implementation of the xxHash specification.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).resolve().parents[2] / "corpus" / "programs"
MANIFEST = json.loads((PROGRAMS / "MANIFEST.json").read_text())
NAMES = sorted(MANIFEST["programs"])


def sidecar(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((PROGRAMS / f"{name}.json").read_text())
    return spec


# --- the manifest ----------------------------------------------------------


def test_every_module_is_in_the_manifest_and_has_a_sidecar() -> None:
    on_disk = sorted(p.stem for p in PROGRAMS.glob("*.wasm"))
    assert on_disk == NAMES
    for name in NAMES:
        assert (PROGRAMS / f"{name}.json").is_file(), f"{name}.json sidecar missing"


@pytest.mark.parametrize("name", NAMES)
def test_module_matches_manifest(name: str) -> None:
    entry = MANIFEST["programs"][name]
    data = (PROGRAMS / f"{name}.wasm").read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert len(data) == entry["bytes"]
    assert data[:8] == b"\0asm\x01\0\0\0"
    assert entry["sdist"].split("==")[0] in MANIFEST["sdists"]


def test_brotli_is_built_both_ways() -> None:
    progs = MANIFEST["programs"]
    assert progs["brotli"]["defines"] == []
    assert progs["brotli_cleanup"]["defines"] == ["BROTLI_ENCODER_CLEANUP_ON_OOM"]
    assert progs["brotli"]["sources"] == progs["brotli_cleanup"]["sources"]


# --- an independent model of the inputs and of xxHash -----------------------

_WORDS = [
    b"the ", b"quick ", b"brown ", b"fox ", b"jumps ", b"over ", b"lazy ", b"dog ",
    b"memory ", b"grow ", b"fails ", b"and ", b"malloc ", b"returns ", b"NULL ", b"\n",
]  # fmt: skip
M32, M64 = (1 << 32) - 1, (1 << 64) - 1


def generated_input(size: int, seed: int) -> bytes:
    """The wrappers' generated text (common.h ``generate``)."""
    x = seed or 0x9E3779B9
    out = bytearray()
    while len(out) < size:
        x ^= (x << 13) & M32
        x ^= x >> 17
        x ^= (x << 5) & M32
        out += _WORDS[(x >> 7) & 15][: size - len(out)]
        if (x & 0xFF) == 0 and len(out) < size:
            out.append(ord("0") + (x >> 24) % 10)
    return bytes(out)


def fnv1a32(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & M32
    return h


def _rotl(x: int, r: int, bits: int) -> int:
    mask = (1 << bits) - 1
    return ((x << r) | (x >> (bits - r))) & mask


def xxh32(data: bytes, seed: int) -> int:
    p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    n, i = len(data), 0
    if n >= 16:
        v = [(seed + p1 + p2) & M32, (seed + p2) & M32, seed, (seed - p1) & M32]
        while i + 16 <= n:
            for k in range(4):
                lane = int.from_bytes(data[i + 4 * k : i + 4 * k + 4], "little")
                v[k] = (_rotl((v[k] + lane * p2) & M32, 13, 32) * p1) & M32
            i += 16
        h = sum(_rotl(v[k], r, 32) for k, r in enumerate((1, 7, 12, 18))) & M32
    else:
        h = (seed + p5) & M32
    h = (h + n) & M32
    while i + 4 <= n:
        lane = int.from_bytes(data[i : i + 4], "little")
        h = (_rotl((h + lane * p3) & M32, 17, 32) * p4) & M32
        i += 4
    for b in data[i:]:
        h = (_rotl((h + b * p5) & M32, 11, 32) * p1) & M32
    h = ((h ^ (h >> 15)) * p2) & M32
    h = ((h ^ (h >> 13)) * p3) & M32
    return h ^ (h >> 16)


def xxh64(data: bytes, seed: int) -> int:
    p1, p2, p3 = 11400714785074694791, 14029467366897019727, 1609587929392839161
    p4, p5 = 9650029242287828579, 2870177450012600261

    def rnd(acc: int, lane: int) -> int:
        return (_rotl((acc + lane * p2) & M64, 31, 64) * p1) & M64

    n, i = len(data), 0
    if n >= 32:
        v = [(seed + p1 + p2) & M64, (seed + p2) & M64, seed, (seed - p1) & M64]
        while i + 32 <= n:
            for k in range(4):
                v[k] = rnd(v[k], int.from_bytes(data[i + 8 * k : i + 8 * k + 8], "little"))
            i += 32
        h = sum(_rotl(v[k], r, 64) for k, r in enumerate((1, 7, 12, 18))) & M64
        for k in range(4):
            h = ((h ^ rnd(0, v[k])) * p1 + p4) & M64
    else:
        h = (seed + p5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h ^= rnd(0, int.from_bytes(data[i : i + 8], "little"))
        h = (_rotl(h, 27, 64) * p1 + p4) & M64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i : i + 4], "little") * p1) & M64
        h = (_rotl(h, 23, 64) * p2 + p3) & M64
        i += 4
    for b in data[i:]:
        h ^= (b * p5) & M64
        h = (_rotl(h, 11, 64) * p1) & M64
    h = ((h ^ (h >> 33)) * p2) & M64
    h = ((h ^ (h >> 29)) * p3) & M64
    return h ^ (h >> 32)


def test_xxhash_model_matches_published_vectors() -> None:
    # Reference values from the xxHash specification's test vectors.
    assert xxh32(b"", 0) == 0x02CC5D05
    assert xxh64(b"", 0) == 0xEF46DB3751D8E999
    assert xxh32(b"a", 0) == 0x550D7456
    assert xxh64(b"a", 0) == 0xD24EC4F1A98C6E5B


#: The wrappers' default generated input size (``-n``).
DEFAULT_SIZE = {"lz4": 2048, "xxhash": 4096, "brotli": 2048, "brotli_cleanup": 2048}


def sidecar_input(name: str, spec: dict[str, Any]) -> bytes:
    """The input a sidecar's run reads: its file operand under ``root``, else generated."""
    files = [a for a in spec.get("args", []) if a.startswith("/")]
    if files:
        return (PROGRAMS / spec["root"] / files[0].lstrip("/")).read_bytes()
    return generated_input(DEFAULT_SIZE[name], 1)


@pytest.mark.parametrize("name", NAMES)
def test_sidecar_input_line_describes_the_input(name: str) -> None:
    spec = sidecar(name)
    data = sidecar_input(name, spec)
    first = spec["stdout"].splitlines()[0]
    assert first == f"input: {len(data)} bytes, fnv1a32 {fnv1a32(data):08x}"


def test_sidecar_xxhash_digests_match_the_model() -> None:
    out = sidecar("xxhash")["stdout"]
    data = generated_input(4096, 1)
    assert f"XXH32    {xxh32(data, 1):08x}\n" in out
    assert f"XXH64    {xxh64(data, 1):016x}\n" in out


# --- running the modules under wasmtime-py ----------------------------------


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


class Wasmtime:
    """Runs a corpus program's ``_start`` under wasmtime-py, one module per name."""

    def __init__(self) -> None:
        self.wt = pytest.importorskip(
            "wasmtime", reason="wasmtime-py is not installed: the reference engine is needed"
        )
        self.engine = self.wt.Engine()
        self.modules: dict[str, Any] = {}

    def module(self, name: str) -> Any:
        if name not in self.modules:
            self.modules[name] = self.wt.Module.from_file(
                self.engine, str(PROGRAMS / f"{name}.wasm")
            )
        return self.modules[name]

    def run(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        root: Path | None = None,
        stdin: Path | None = None,
        memory_pages: int | None = None,
    ) -> Outcome:
        wt = self.wt
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp, "out"), Path(tmp, "err")
            cfg = wt.WasiConfig()
            cfg.argv = [name, *args]
            cfg.env = list((env or {}).items())
            cfg.stdout_file, cfg.stderr_file = str(out), str(err)
            if root is not None:
                cfg.preopen_dir(str(root), "/")
            if stdin is not None:
                cfg.stdin_file = str(stdin)
            store = wt.Store(self.engine)
            if memory_pages is not None:
                store.set_limits(memory_size=memory_pages * 65536)
            store.set_wasi(cfg)
            linker = wt.Linker(self.engine)
            linker.define_wasi()
            code = 0
            try:
                linker.instantiate(store, self.module(name)).exports(store)["_start"](store)
            except wt.ExitTrap as exc:
                code = exc.code
            return Outcome(code, out.read_text(), err.read_text())

    def initial_pages(self, name: str) -> int:
        (mem,) = [e.type for e in self.module(name).exports if e.name == "memory"]
        return int(mem.limits.min)


@pytest.fixture(scope="module")
def wasmtime_runner() -> Wasmtime:
    return Wasmtime()


@pytest.mark.parametrize("name", NAMES)
def test_program_matches_its_sidecar(wasmtime_runner: Wasmtime, name: str) -> None:
    spec = sidecar(name)
    root = PROGRAMS / spec["root"] if spec.get("root") else None
    got = wasmtime_runner.run(name, spec.get("args", []), spec.get("env", {}), root)
    assert got == Outcome(spec.get("exit_code", 0), spec.get("stdout", ""), spec.get("stderr", ""))


def test_file_and_stdin_inputs_give_the_generated_run(
    wasmtime_runner: Wasmtime, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_bytes(generated_input(4096, 1))
    expected = sidecar("xxhash")["stdout"]
    assert wasmtime_runner.run("xxhash", ["/in.txt"], root=tmp_path) == Outcome(0, expected, "")
    got = wasmtime_runner.run("xxhash", ["-"], stdin=tmp_path / "in.txt")
    assert got == Outcome(0, expected, "")


def test_input_errors_are_reported(wasmtime_runner: Wasmtime, tmp_path: Path) -> None:
    missing = wasmtime_runner.run("lz4", ["/missing.txt"], root=tmp_path)
    assert (missing.exit_code, missing.stdout) == (1, "")
    assert missing.stderr == "lz4: /missing.txt: No such file or directory\n"
    usage = wasmtime_runner.run("brotli", ["-x"])
    assert usage.exit_code == 2 and usage.stderr.startswith("usage: brotli ")


def test_lz4_reports_allocation_failure(wasmtime_runner: Wasmtime) -> None:
    # Capped at its initial memory: the first malloc that needs memory.grow
    # fails, and LZ4HC says so by returning 0.
    got = wasmtime_runner.run("lz4", [], memory_pages=wasmtime_runner.initial_pages("lz4"))
    assert got.exit_code == 1
    assert got.stderr == "lz4: LZ4_compress_HC: failed (returned 0)\n"
    assert got.stdout.endswith("lz4 block: 2048 -> 1131 bytes, roundtrip ok\n")


@pytest.mark.parametrize("extra_pages", [1, 4, 8, 16])
def test_brotli_oom_exits_by_default_and_falls_back_when_built_to(
    wasmtime_runner: Wasmtime, extra_pages: int
) -> None:
    # Enough memory for the wrapper's buffers, not for the encoder: the
    # default build exits 1 from inside BrotliAllocate without a word; the
    # CLEANUP_ON_OOM build falls back to an uncompressed stream that still
    # round-trips, so its stdout is the fault-free one.
    pages = wasmtime_runner.initial_pages("brotli") + extra_pages
    default = wasmtime_runner.run("brotli", ["-v"], memory_pages=pages)
    assert (default.exit_code, default.stderr) == (1, "")
    assert "roundtrip" not in default.stdout
    cleanup = wasmtime_runner.run("brotli_cleanup", ["-v"], memory_pages=pages)
    assert cleanup.exit_code == 0 and cleanup.stderr == ""
    fallback = cleanup.stdout.splitlines()
    # Stored, not compressed: BrotliEncoderMaxCompressedSize, input + 6 bytes of
    # stream and meta-block headers for one meta-block under 16 MiB.
    assert fallback[2] == "compressed: 2048 -> 2054 bytes"
    fault_free = wasmtime_runner.run("brotli_cleanup", ["-v"]).stdout.splitlines()
    assert fault_free[2] == "compressed: 2048 -> 526 bytes"
    assert fallback[:2] + fallback[3:] == fault_free[:2] + fault_free[3:]
