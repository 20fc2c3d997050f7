"""oomfuzz.sitecache: a sweep's site universe read back from disk, never a stale one."""

from __future__ import annotations

from pathlib import Path

import pytest

from oomfuzz import sitecache
from oomfuzz.sitecache import cache_dir, cached_scan
from oomfuzz.sites import scan

PKG = """
from wasmrt.alloc import AllocKind, try_alloc


def one() -> None:
    try_alloc(8, AllocKind.OTHER)
"""


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cachedpkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "mod.py").write_text(PKG)
    monkeypatch.setenv("OOMFUZZ_CACHE_DIR", str(tmp_path / "cache"))
    return root


def entries() -> list[Path]:
    where = cache_dir()
    assert where is not None
    return sorted(where.glob("sites-*.json"))


def test_a_cached_universe_is_the_scanned_one(pkg: Path) -> None:
    first = cached_scan([pkg])
    assert len(entries()) == 1
    again = cached_scan([pkg])
    assert again == first == scan([pkg])
    assert again.files == first.files and len(again) == 1


def test_the_cache_is_read_instead_of_scanning(pkg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = cached_scan([pkg])

    def no_scan(*args: object) -> None:
        raise AssertionError("scanned again although nothing changed")

    monkeypatch.setattr(sitecache, "scan", no_scan)
    assert cached_scan([pkg]) == expected


def test_a_changed_file_is_scanned_again(pkg: Path) -> None:
    before = cached_scan([pkg])
    (pkg / "mod.py").write_text(
        PKG + "\n\ndef two() -> None:\n    try_alloc(16, AllocKind.OTHER)\n"
    )
    after = cached_scan([pkg])
    assert len(after) == len(before) + 1 == 2
    assert after == scan([pkg]) and len(entries()) == 2


def test_a_corrupt_or_foreign_entry_is_rescanned(pkg: Path) -> None:
    expected = cached_scan([pkg])
    (entry,) = entries()
    for junk in (
        "{not json",
        '{"schema": "something else"}',
        '{"schema": "oomfuzz-site-universe/1"}',
    ):
        entry.write_text(junk)
        assert cached_scan([pkg]) == expected
    assert entry.read_text().startswith('{"schema": "oomfuzz-site-universe/1", "roots"')


def test_an_empty_cache_dir_setting_turns_caching_off(
    pkg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OOMFUZZ_CACHE_DIR", "")
    assert cache_dir() is None
    assert cached_scan([pkg]) == scan([pkg])
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_dir_still_scans(
    pkg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("OOMFUZZ_CACHE_DIR", str(blocker / "cache"))
    assert cached_scan([pkg]) == scan([pkg])
