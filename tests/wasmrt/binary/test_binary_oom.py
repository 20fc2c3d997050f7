"""OOM injection: failing the Nth ``try_alloc`` while ``Module(engine, bytes)``
decodes, validates and compiles a module raises exactly ``OutOfMemory`` until
enough allocations are granted, and the module then builds and runs."""

from __future__ import annotations

import pytest
from binary_corpus import SuiteModule, load_corpus

import wasmrt
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.binary import decode_module
from wasmrt.errors import MalformedError, OutOfMemory

#: (wast stem, n-th decodable valid module in it): a varied dozen.
PICKS = [
    ("binary", 0),
    ("custom", 0),
    ("elem", 5),
    ("data", 3),
    ("bulk", 0),
    ("br_table", 0),
    ("simd_const", 0),
    ("simd_lane", 0),
    ("imports", 0),
    ("table_init", 0),
    ("memory_init", 0),
    ("func", 0),
    ("start", 0),
    ("global", 0),
]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[SuiteModule]:
    return load_corpus(tmp_path_factory.mktemp("suite"))


def pick(corpus: list[SuiteModule], wast: str, nth: int) -> bytes:
    found = [m.data for m in corpus if m.wast == wast and m.kind == "module"]
    if not found:
        pytest.skip(f"{wast}.wast has no module")
    return found[min(nth, len(found) - 1)]


class FailNth:
    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self, size: int, kind: AllocKind, absorbing: bool) -> None:
        self.calls += 1
        if self.calls - 1 == self.n:
            raise OutOfMemory(size)


ENGINE = wasmrt.Engine()


def load(data: bytes) -> wasmrt.Module:
    return wasmrt.Module(ENGINE, data)


def shape(module: wasmrt.Module) -> list[tuple[str, str]]:
    return [(e.name, type(e.type).__name__) for e in module.exports]


@pytest.mark.parametrize(("wast", "nth"), PICKS, ids=[p[0] for p in PICKS])
def test_fail_nth_allocation(corpus: list[SuiteModule], wast: str, nth: int) -> None:
    data = pick(corpus, wast, nth)
    n = 0
    while True:
        hook = FailNth(n)
        with install_hook(hook):
            try:
                built = load(data)
            except OutOfMemory as e:
                assert type(e) is OutOfMemory
                assert hook.calls == n + 1, "OutOfMemory without a refused allocation"
                n += 1
                assert n < 1_000_000
                continue
        break
    assert hook.calls == n, "the last run must grant every allocation it asked for"
    # Functions compile on their first call, so building asks only for the module itself.
    assert n >= 2, "building a module asked for (almost) no allocation"
    # The module that finally built under the hook is the one a fault-free build gives.
    assert shape(built) == shape(load(data))


def test_huge_count_is_malformed_not_a_huge_request() -> None:
    sizes: list[int] = []

    def record(size: int, kind: AllocKind, absorbing: bool) -> None:
        sizes.append(size)

    # A type section claiming 2**32-1 types in 5 bytes of payload.
    module = b"\x00asm\x01\x00\x00\x00" + b"\x01\x06\xff\xff\xff\xff\x0f\x60"
    with install_hook(record), pytest.raises(MalformedError):
        decode_module(module)
    assert all(s < 1 << 20 for s in sizes)
    # A data segment claiming a 4 GiB payload.
    module = (
        b"\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01"
        + b"\x0b\x0a\x01\x00\x41\x00\x0b\xff\xff\xff\xff\x0f"
    )
    with install_hook(record), pytest.raises(MalformedError):
        decode_module(module)
    assert all(s < 1 << 20 for s in sizes)
