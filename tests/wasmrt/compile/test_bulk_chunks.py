"""Bulk memory/table helpers make no temporary larger than ``BULK_CHUNK`` and
still give exactly the spec's result (overlapping copies in both directions)."""

from __future__ import annotations

import random

import pytest

from wasmrt.compile import numeric


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 16])
def test_chunked_bulk_ops_match_plain_slices(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(numeric, "BULK_CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(1500):
        size = rng.randint(1, 60)
        base = [rng.randint(0, 255) for _ in range(size)]
        n = rng.randint(0, size)
        d, s = rng.randint(0, size - n), rng.randint(0, size - n)
        v = rng.randint(0, 300)

        buf, want = bytearray(base), bytearray(base)
        want[d : d + n] = want[s : s + n]
        numeric.mem_copy(buf, size, d, s, n)
        assert buf == want

        buf, want = bytearray(base), bytearray(base)
        want[d : d + n] = bytes([v & 0xFF]) * n
        numeric.mem_fill(buf, size, d, v, n)
        assert buf == want

        seg = bytes(base)
        buf, want = bytearray(size), bytearray(size)
        want[d : d + n] = seg[s : s + n]
        numeric.mem_init(buf, size, seg, d, s, n)
        assert buf == want

        tab, ref = list(base), list(base)
        ref[d : d + n] = ref[s : s + n]
        numeric.table_copy(tab, tab, d, s, n)
        assert tab == ref

        other = list(range(size))
        tab, ref = list(base), list(base)
        ref[d : d + n] = other[s : s + n]
        numeric.table_copy(tab, other, d, s, n)
        assert tab == ref

        tab, ref = list(base), list(base)
        ref[d : d + n] = [v] * n
        numeric.table_fill(tab, d, v, n)
        assert tab == ref


def test_out_of_bounds_bulk_ops_change_nothing() -> None:
    buf = bytearray(range(10))
    with pytest.raises(numeric.Trap):
        numeric.mem_copy(buf, 10, 5, 0, 6)
    with pytest.raises(numeric.Trap):
        numeric.mem_fill(buf, 10, 9, 1, 2)
    tab = list(range(10))
    with pytest.raises(numeric.Trap):
        numeric.table_fill(tab, 9, None, 2)
    assert buf == bytearray(range(10)) and tab == list(range(10))
