"""``Config.cache``: generated code kept on disk and reused by later processes.

A fresh process finds every function it calls on disk (no code generation,
no ``compile()``) and behaves identically, trap frames included; damaged or
foreign entries are ignored and rewritten; an unusable directory changes
nothing but the counters; the default config never touches the disk; each
option variant has entries of its own; and a warm cache leaves a module's
allocation sequence exactly as a cold one does.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import wasmrt
from oomfuzz.inject import Injector
from wasmrt.alloc import install_hook
from wasmrt.compile import cache
from wasmrt.compile.codegen import ContentKey
from wasmrt.ir import Instr
from wasmrt.runtime import diskcache

WAT = """
(module
  (memory 1)
  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 1))
      (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))
  (func $half (export "half") (param f64) (result f64)
    (f64.mul (local.get 0) (f64.const 0.5)))
  (func $div (export "div") (param i32 i32) (result i32)
    (i32.store (i32.const 8) (local.get 0))
    (i32.div_s (i32.add (local.get 0) (i32.const 1)) (local.get 1)))
  (func $deep (export "deep") (param i32) (result i32)
    (i32.add (i32.const 3) (call $div (local.get 0) (local.get 0))))
)
"""
#: Defined functions ``run`` calls (all of them).
N_FUNCS = 4

SRC = str(Path(__file__).resolve().parents[3] / "src")


def run(engine: wasmrt.Engine) -> dict[str, Any]:
    """Results of calling every export, the trap ``deep(0)`` gives and its frames."""
    module = wasmrt.Module(engine, WAT)
    store = wasmrt.Store(engine)
    config = engine.ptr().config
    if config.flags.get("consume_fuel"):
        store.set_fuel(10_000_000)
    if config.epoch_interruption:
        store.set_epoch_deadline(1 << 30)
    ex = wasmrt.Instance(store, module, []).exports(store)
    out: dict[str, Any] = {
        "fac": ex["fac"](store, 20),
        "half": ex["half"](store, 3.0),
        "div": ex["div"](store, 7, 2),
        "deep": ex["deep"](store, 5),
    }
    with pytest.raises(wasmrt.Trap) as caught:
        ex["deep"](store, 0)
    out["trap"] = str(caught.value)
    out["frames"] = [(f.func_index, f.func_offset, f.module_offset) for f in caught.value.frames]
    return out


def make_engine(cache_setting: bool | str | None = None, **knobs: bool) -> wasmrt.Engine:
    config = wasmrt.Config()
    if cache_setting is not None:
        config.cache = cache_setting
    for name, value in knobs.items():
        setattr(config, name, value)
    return wasmrt.Engine(config)


def toml_for(tmp_path: Path, directory: Path) -> str:
    path = tmp_path / "cache.toml"
    path.write_text(f'[cache]\nenabled = true\ndirectory = "{directory}"\n')
    return str(path)


def store_at(toml: str) -> diskcache.DiskCodeCache:
    store = diskcache.code_store(SimpleNamespace(cache=toml))
    assert store is not None
    return store


def entries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def counts(store: diskcache.DiskCodeCache) -> tuple[int, int, int, int]:
    return store.hits, store.misses, store.writes, store.failed_writes


CHILD = """
import json, sys
sys.path.insert(0, {test_dir!r})
import wasmrt
from wasmrt.runtime import diskcache
from test_diskcache import make_engine, run
out = run(make_engine({setting!r}))
out["counters"] = diskcache.counters()
print(json.dumps(out))
"""


def in_fresh_process(setting: bool | str, env: dict[str, str]) -> dict[str, Any]:
    script = CHILD.format(test_dir=str(Path(__file__).parent), setting=setting)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, "PYTHONPATH": SRC, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def as_json(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` as a child process reports it (tuples become lists)."""
    out: dict[str, Any] = json.loads(json.dumps(result))
    return out


def test_a_fresh_process_takes_every_function_from_disk_via_the_toml(tmp_path: Path) -> None:
    directory = tmp_path / "code"
    toml = toml_for(tmp_path, directory)
    cold = in_fresh_process(toml, {})
    assert cold.pop("counters") == {
        "hits": 0,
        "misses": N_FUNCS,
        "writes": N_FUNCS,
        "failed_writes": 0,
    }
    assert len(entries(directory)) == N_FUNCS
    warm = in_fresh_process(toml, {})
    assert warm.pop("counters") == {"hits": N_FUNCS, "misses": 0, "writes": 0, "failed_writes": 0}
    expected = as_json(run(make_engine()))
    assert cold == expected
    assert warm == expected
    # Frames precise to the instruction: the trap is not at its function's start.
    assert all(offset > 0 for _, offset, _ in warm["frames"])


def test_cache_true_uses_the_environment_directory(tmp_path: Path) -> None:
    env = {diskcache.ENV_DIR: str(tmp_path / "env-dir")}
    in_fresh_process(True, env)
    warm = in_fresh_process(True, env)
    assert warm["counters"]["hits"] == N_FUNCS
    assert len(entries(tmp_path / "env-dir")) == N_FUNCS


def test_default_directory_follows_xdg_then_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(diskcache.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert diskcache.default_directory() == os.path.join("/x/cache", "wasmrt")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/h")
    assert diskcache.default_directory() == os.path.join("/h", ".cache", "wasmrt")


def warm_up(tmp_path: Path) -> tuple[str, Path, dict[str, Any]]:
    directory = tmp_path / "code"
    toml = toml_for(tmp_path, directory)
    cache.clear()
    first = run(make_engine(toml))
    assert len(entries(directory)) == N_FUNCS
    return toml, directory, first


def damage_truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def damage_flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def damage_python_marker(data: bytes) -> bytes:
    """Another Python's bytecode marker, checksum recomputed: only the marker is wrong."""
    at = len(diskcache.ENTRY_MAGIC) + 2 + 32 + 1
    body = data[:at] + b"\x00\x00\x0d\x0a" + data[at + 4 : -32]
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize("damage", [damage_truncate, damage_flip, damage_python_marker])
def test_damaged_entries_are_ignored_and_rewritten(tmp_path: Path, damage: Any) -> None:
    toml, directory, first = warm_up(tmp_path)
    for path in entries(directory):
        path.write_bytes(damage(path.read_bytes()))
    store = store_at(toml)
    before = counts(store)
    cache.clear()
    assert run(make_engine(toml)) == first
    hits, misses, writes, _ = (a - b for a, b in zip(counts(store), before, strict=True))
    assert (hits, misses, writes) == (0, N_FUNCS, N_FUNCS)
    # Rewritten whole: the next fresh lookup hits.
    cache.clear()
    before = counts(store)
    assert run(make_engine(toml)) == first
    assert counts(store)[0] - before[0] == N_FUNCS


def test_an_entry_under_another_functions_name_is_ignored(tmp_path: Path) -> None:
    toml, directory, first = warm_up(tmp_path)
    paths = entries(directory)
    blobs = [p.read_bytes() for p in paths]
    for path, blob in zip(paths, blobs[1:] + blobs[:1], strict=True):
        path.write_bytes(blob)
    store = store_at(toml)
    before = counts(store)
    cache.clear()
    assert run(make_engine(toml)) == first
    assert counts(store)[1] - before[1] == N_FUNCS


def test_an_unusable_directory_changes_nothing_but_the_counters(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    toml = toml_for(tmp_path, blocker / "code")
    store = store_at(toml)
    before = counts(store)
    cache.clear()
    assert run(make_engine(toml)) == run(make_engine())
    hits, misses, writes, failed = (a - b for a, b in zip(counts(store), before, strict=True))
    assert (hits, misses, writes, failed) == (0, N_FUNCS, 0, N_FUNCS)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_a_read_only_directory_changes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        toml = toml_for(tmp_path, directory)
        cache.clear()
        assert run(make_engine(toml)) == run(make_engine())
        assert entries(directory) == []
    finally:
        directory.chmod(0o700)


def test_the_default_config_never_touches_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(diskcache.ENV_DIR, str(tmp_path / "env"))
    before = diskcache.counters()
    cache.clear()
    run(make_engine())
    assert list(tmp_path.iterdir()) == []
    assert diskcache.counters() == before
    # The same run with the cache on writes there (the process caches hold the code).
    run(make_engine(True))
    assert len(entries(tmp_path / "env")) == N_FUNCS


def test_a_toml_with_the_cache_disabled_writes_nothing(tmp_path: Path) -> None:
    toml = tmp_path / "off.toml"
    toml.write_text(f'[cache]\nenabled = false\ndirectory = "{tmp_path / "code"}"\n')
    cache.clear()
    run(make_engine(str(toml)))
    assert not (tmp_path / "code").exists()


def test_a_relative_directory_is_refused_like_wasmtime(tmp_path: Path) -> None:
    toml = tmp_path / "rel.toml"
    toml.write_text('[cache]\ndirectory = "relative/dir"\n')
    with pytest.raises(wasmrt.WasmtimeError, match="has to be absolute"):
        wasmrt.Config().cache = str(toml)


def test_fuel_and_epoch_variants_keep_entries_of_their_own(tmp_path: Path) -> None:
    directory = tmp_path / "code"
    toml = toml_for(tmp_path, directory)
    store = store_at(toml)
    results = []
    variants: list[dict[str, bool]] = [
        {},
        {"consume_fuel": True},
        {"epoch_interruption": True},
        {"consume_fuel": True, "epoch_interruption": True},
    ]
    for n, knobs in enumerate(variants, start=1):
        cache.clear()
        before = counts(store)
        results.append(run(make_engine(toml, **knobs)))
        hits, misses, writes, _ = (a - b for a, b in zip(counts(store), before, strict=True))
        assert (hits, misses, writes) == (0, N_FUNCS, N_FUNCS), knobs
        assert len(entries(directory)) == n * N_FUNCS
    assert all(r == results[0] for r in results)
    cache.clear()
    before = counts(store)
    run(make_engine(toml, consume_fuel=True))
    assert counts(store)[0] - before[0] == N_FUNCS


def allocations(engine: wasmrt.Engine) -> list[tuple[object, ...]]:
    inj = Injector(mode="count", record_all=True)
    with install_hook(inj):
        run(engine)
    return [
        (
            r.index,
            r.kind,
            r.size,
            r.absorbing,
            r.site,
            [s for s in r.stack if s.file.startswith("wasmrt/")],
        )
        for r in inj.records
    ]


def test_a_warm_cache_keeps_the_allocation_sequence(tmp_path: Path) -> None:
    directory = tmp_path / "code"
    toml = toml_for(tmp_path, directory)
    store = store_at(toml)
    cache.clear()
    cold = allocations(make_engine(toml))
    assert len(entries(directory)) == N_FUNCS
    cache.clear()
    hits = store.hits
    warm = allocations(make_engine(toml))
    assert store.hits - hits == N_FUNCS
    assert warm == cold
    cache.clear()
    assert allocations(make_engine()) == cold


def test_keys_that_cannot_be_rendered_stably_are_not_cached(tmp_path: Path) -> None:
    store = store_at(toml_for(tmp_path, tmp_path / "code"))
    body = (Instr("i32.const", (1,)), Instr("drop"))
    stable = ContentKey(("ctx", 0, ("i32",), body), len(body))
    assert store.digest(stable, False, False) is not None
    assert store.digest(stable, False, False) != store.digest(stable, True, False)
    table = ContentKey(("ctx", 0, (), (Instr("br_table", ((0, 1), 2)),)), 1)
    assert store.digest(table, False, False) is not None
    odd_bodies: list[tuple[object, ...]] = [
        (Instr("x", (1.5,)),),
        (Instr("x", (object(),)),),
        (Instr("br_table", ((0, 1.5), 2)),),
        (Instr("x", "ab"),),  # immediates that are not a tuple
        (("x", ()),),  # not an instruction
    ]
    for body in odd_bodies:
        bad = ContentKey(("ctx", 0, (), body), 1)
        assert store.digest(bad, False, False) is None
        assert store.load(bad, False, False) is None
        assert not store.wants(bad, False, False)
    assert store.digest(ContentKey(("ctx", 0.5, (), ()), 0), False, False) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("_PY_MAGIC", b"\x00\x00\r\n"),
        ("wasmrt_version", lambda: "0.0.0+another"),
        ("_sources", [b"\x01" * 32]),
    ],
)
def test_entries_belong_to_one_wasmrt_build_and_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: object
) -> None:
    key = ContentKey(("ctx", 0, (), (Instr("nop"),)), 1)
    ours = diskcache.DiskCodeCache(str(tmp_path)).digest(key, False, False)
    monkeypatch.setattr(diskcache, name, value)
    assert diskcache.DiskCodeCache(str(tmp_path)).digest(key, False, False) != ours


def test_host_exhaustion_in_the_cache_is_a_miss_or_a_skipped_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml, directory, first = warm_up(tmp_path)
    store = store_at(toml)

    def no_memory(*args: object) -> None:
        raise MemoryError

    def too_deep(*args: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(diskcache, "decode_entry", no_memory)
    monkeypatch.setattr(diskcache.DiskCodeCache, "_write", too_deep)
    before = counts(store)
    cache.clear()
    assert run(make_engine(toml)) == first
    hits, misses, writes, failed = (a - b for a, b in zip(counts(store), before, strict=True))
    assert (hits, misses, writes, failed) == (0, N_FUNCS, 0, N_FUNCS)
    monkeypatch.undo()
    cache.clear()
    before = counts(store)
    assert run(make_engine(toml)) == first
    assert counts(store)[0] - before[0] == N_FUNCS  # the entries were left as they were
