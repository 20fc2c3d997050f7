#!/usr/bin/env python3
"""Build the corpus programs: real C libraries, from their PyPI source
distributions, compiled to wasm32-wasi command modules with our wrappers.

Invariants: every source archive is pinned by version, URL and sha256 and is
refused if its digest differs; a build writes ``NAME.wasm`` and then
``MANIFEST.json`` (sha256 and size of each committed module, the toolchain,
flags, sources and defines it was built from). Standard library only; the
optional ``--record`` step runs the modules under wasmtime-py to (re)write
the ``NAME.json`` sidecars (WASI testsuite format: args, env, exit_code,
stdout, stderr).

Needs Debian's ``clang`` (14), ``lld`` and ``wasi-libc`` (plus
``libclang-rt-dev-wasm32``), or any clang whose ``--sysroot`` holds wasi-libc.

    python corpus/programs/build.py            # fetch, build, write MANIFEST.json
    python corpus/programs/build.py --check    # rebuild into a temp dir, compare digests
    python corpus/programs/build.py --record   # also rewrite sidecars from wasmtime-py runs
    python corpus/programs/build.py --record --no-build   # only the sidecars
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRAPPERS = HERE / "src"
MANIFEST = HERE / "MANIFEST.json"

CC = "clang"
SYSROOT = "/usr"
CFLAGS = ["--target=wasm32-wasi", "-Oz", "-flto", "-Wl,--strip-all"]


@dataclass(frozen=True)
class Sdist:
    """A pinned source distribution on PyPI."""

    project: str
    version: str
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def root(self) -> str:
        return self.filename.removesuffix(".tar.gz")


@dataclass(frozen=True)
class Program:
    """One module: a wrapper of ours plus the library's sources (globs)."""

    name: str
    sdist: Sdist
    wrapper: str
    sources: tuple[str, ...]
    includes: tuple[str, ...]
    defines: tuple[str, ...] = field(default=())
    what: str = ""


PYPI = "https://files.pythonhosted.org/packages"
LZ4 = Sdist(
    "lz4",
    "4.4.5",
    f"{PYPI}/57/51/f1b86d93029f418033dddf9b9f79c8d2641e7454080478ee2aab5123173e/lz4-4.4.5.tar.gz",
    "5f0b9e53c1e82e88c10d7c180069363980136b9d7a8306c4dca4f760d60c39f0",
)
XXHASH = Sdist(
    "xxhash",
    "3.6.0",
    f"{PYPI}/02/84/30869e01909fb37a6cc7e18688ee8bf1e42d57e7e0777636bd47524c43c7/xxhash-3.6.0.tar.gz",
    "f0162a78b13a0d7617b2845b90c763339d1f1d82bb04a4b07f4ab535cc5e05d6",
)
BROTLI = Sdist(
    "brotli",
    "1.2.0",
    f"{PYPI}/f7/16/c92ca344d646e71a43b8bb353f0a6490d7f6e06210f8554c8f874e454285/brotli-1.2.0.tar.gz",
    "e310f77e41941c13340a95976fe66a8a95b01e783d430eeaf7a2f87e0a57dd0a",
)

BROTLI_SOURCES = ("c/common/*.c", "c/dec/*.c", "c/enc/*.c")
PROGRAMS = (
    Program(
        "lz4",
        LZ4,
        "lz4_roundtrip.c",
        ("lz4libs/lz4.c", "lz4libs/lz4hc.c", "lz4libs/lz4frame.c", "lz4libs/xxhash.c"),
        ("lz4libs",),
        what="LZ4 1.9.4 block, HC and frame round trips",
    ),
    Program(
        "xxhash",
        XXHASH,
        "xxhash_digest.c",
        ("deps/xxhash/xxhash.c",),
        ("deps/xxhash",),
        what="xxHash 0.8.2 digests, one-shot vs streamed",
    ),
    Program(
        "brotli",
        BROTLI,
        "brotli_roundtrip.c",
        BROTLI_SOURCES,
        ("c/include",),
        what="brotli 1.2.0 round trip; encoder exits on OOM (library default)",
    ),
    Program(
        "brotli_cleanup",
        BROTLI,
        "brotli_roundtrip.c",
        BROTLI_SOURCES,
        ("c/include",),
        ("BROTLI_ENCODER_CLEANUP_ON_OOM",),
        what="brotli 1.2.0 round trip; encoder built with BROTLI_ENCODER_CLEANUP_ON_OOM",
    ),
)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(sdist: Sdist, cache: Path) -> Path:
    """The verified archive in ``cache``, downloaded (or pip-downloaded) if absent."""
    target = cache / sdist.filename
    if not target.exists() or sha256_of(target) != sdist.sha256:
        cache.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(sdist.url, timeout=120) as resp:
                target.write_bytes(resp.read())
        except OSError as exc:
            # An index mirror reachable only through pip's configuration.
            print(f"  {sdist.url}: {exc}; trying pip download", file=sys.stderr)
            spec = f"{sdist.project}=={sdist.version}"
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
                + ["-d", str(cache), spec],
                check=True,
            )
    digest = sha256_of(target)
    if digest != sdist.sha256:
        raise SystemExit(f"{target}: sha256 {digest}, expected {sdist.sha256}")
    return target


def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / archive.name.removesuffix(".tar.gz")


def expand(root: Path, patterns: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for pattern in patterns:
        matched = sorted(root.glob(pattern))
        if not matched:
            raise SystemExit(f"{root}: no source matches {pattern}")
        files.extend(matched)
    return files


def compile_program(prog: Program, src_root: Path, out: Path) -> list[str]:
    """Compile ``prog`` to ``out``; returns the sources relative to the sdist."""
    sources = expand(src_root, prog.sources)
    cmd = [CC, f"--sysroot={SYSROOT}", *CFLAGS]
    cmd += [f"-D{d}" for d in prog.defines]
    cmd += [f"-I{src_root / inc}" for inc in prog.includes] + [f"-I{WRAPPERS}"]
    cmd += ["-o", str(out), str(WRAPPERS / prog.wrapper), *map(str, sources)]
    subprocess.run(cmd, check=True)
    return [str(s.relative_to(src_root.parent)) for s in sources]


def toolchain() -> str:
    first = subprocess.run([CC, "--version"], capture_output=True, text=True, check=True)
    return first.stdout.splitlines()[0]


def build_all(out_dir: Path, cache: Path, work: Path) -> dict[str, object]:
    """Build every program into ``out_dir``; returns the manifest."""
    roots: dict[str, Path] = {}
    programs: dict[str, object] = {}
    for prog in PROGRAMS:
        if prog.sdist.project not in roots:
            roots[prog.sdist.project] = unpack(fetch(prog.sdist, cache), work)
        wasm = out_dir / f"{prog.name}.wasm"
        sources = compile_program(prog, roots[prog.sdist.project], wasm)
        programs[prog.name] = {
            "sha256": sha256_of(wasm),
            "bytes": wasm.stat().st_size,
            "sdist": f"{prog.sdist.project}=={prog.sdist.version}",
            "wrapper": f"src/{prog.wrapper}",
            "defines": list(prog.defines),
            "sources": sources,
            "what": prog.what,
        }
        print(f"built {wasm.name} ({wasm.stat().st_size} bytes)")
    return {
        "toolchain": toolchain(),
        "cflags": [f"--sysroot={SYSROOT}", *CFLAGS],
        "sdists": {
            s.project: {"version": s.version, "url": s.url, "sha256": s.sha256}
            for s in sorted({p.sdist for p in PROGRAMS}, key=lambda s: s.project)
        },
        "programs": programs,
    }


def record(names: list[str]) -> None:
    """Rewrite each sidecar's exit_code/stdout/stderr from a wasmtime-py run of
    its args, env and root (kept from the existing sidecar, default none)."""
    import wasmtime  # optional: only this step needs it

    for name in names:
        sidecar = HERE / f"{name}.json"
        spec = json.loads(sidecar.read_text()) if sidecar.exists() else {"args": []}
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp, "out"), Path(tmp, "err")
            cfg = wasmtime.WasiConfig()
            cfg.argv = [name, *spec.get("args", [])]
            cfg.env = list(spec.get("env", {}).items())
            cfg.stdout_file, cfg.stderr_file = str(out), str(err)
            if spec.get("root"):
                cfg.preopen_dir(str(HERE / spec["root"]), "/")
            engine = wasmtime.Engine()
            store = wasmtime.Store(engine)
            store.set_wasi(cfg)
            linker = wasmtime.Linker(engine)
            linker.define_wasi()
            module = wasmtime.Module.from_file(engine, str(HERE / f"{name}.wasm"))
            code = 0
            try:
                linker.instantiate(store, module).exports(store)["_start"](store)
            except wasmtime.ExitTrap as exc:
                code = exc.code
            spec.update(exit_code=code, stdout=out.read_text(), stderr=err.read_text())
        sidecar.write_text(json.dumps(spec, indent=2) + "\n")
        print(f"recorded {sidecar.name}: exit {code}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cache", type=Path, default=HERE / ".cache", help="sdist download cache")
    ap.add_argument("--check", action="store_true", help="rebuild elsewhere, compare with MANIFEST")
    ap.add_argument("--record", action="store_true", help="rewrite sidecars (needs wasmtime-py)")
    ap.add_argument("--no-build", action="store_true", help="with --record: the committed modules")
    args = ap.parse_args(argv)
    if args.no_build:
        if args.record:
            record([p.name for p in PROGRAMS])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.check:
            out = work / "out"
            out.mkdir()
            fresh = build_all(out, args.cache, work)
            committed = json.loads(MANIFEST.read_text())
            bad = [
                name
                for name, entry in fresh["programs"].items()  # type: ignore[attr-defined]
                if entry["sha256"] != committed["programs"].get(name, {}).get("sha256")
            ]
            for name in bad:
                print(f"{name}.wasm: rebuild differs from MANIFEST.json", file=sys.stderr)
            return 1 if bad else 0
        manifest = build_all(HERE, args.cache, work)
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    if args.record:
        record([p.name for p in PROGRAMS])
    return 0


if __name__ == "__main__":
    sys.exit(main())
