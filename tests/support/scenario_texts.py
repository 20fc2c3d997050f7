"""Small ``.py`` scenario texts the CLI tests write into scratch directories.

Invariant: ``OK`` handles every one of its allocation failures (a sweep of it is
all handled, exit 0); tests that need a failing scenario define their own.
"""

from __future__ import annotations

#: Six TryList appends and one direct allocation, each failure reaching the caller.
OK = """\
# oomfuzz: allocator=ondemand
from wasmrt.alloc import AllocKind, TryList, try_alloc


def scenario(ctx):
    items = TryList()
    for i in range(6):
        items.append(i)
    try_alloc(32, AllocKind.STORE)
    ctx.record(sum(items))
"""
