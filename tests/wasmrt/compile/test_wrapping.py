"""Integer add/sub/mul/shl/and chains: generated code drops inner wrap-around masks,
so deep mixed expressions must still give the wasm results (checked against a
Python model of the wasm semantics, over seeded random expression trees)."""

from __future__ import annotations

import random

import pytest
from wat_helpers import instance

OPS = ("add", "sub", "mul", "shl", "and", "xor", "shr_u")


def _model(op: str, a: int, b: int, w: int) -> int:
    m = (1 << w) - 1
    if op == "add":
        return (a + b) & m
    if op == "sub":
        return (a - b) & m
    if op == "mul":
        return (a * b) & m
    if op == "shl":
        return (a << (b % w)) & m
    if op == "and":
        return a & b
    if op == "xor":
        return a ^ b
    return a >> (b % w)


def _tree(rng: random.Random, w: int, depth: int) -> tuple[str, object]:
    if depth == 0 or rng.random() < 0.2:
        if rng.random() < 0.5:
            k = rng.randrange(2)
            return f"(local.get {k})", ("local", k)
        c = rng.choice([0, 1, 3, 31, 32, 63, 255, 65532, (1 << w) - 1, rng.getrandbits(w)])
        return f"(i{w}.const {c - (1 << w) if c >> (w - 1) else c})", ("const", c)
    op = rng.choice(OPS)
    ta, ma = _tree(rng, w, depth - 1)
    tb, mb = _tree(rng, w, depth - 1)
    return f"(i{w}.{op} {ta} {tb})", (op, ma, mb)


def _eval(node: object, args: list[int], w: int) -> int:
    kind = node[0]  # type: ignore[index]
    if kind == "local":
        return args[node[1]]  # type: ignore[index]
    if kind == "const":
        return node[1]  # type: ignore[index,no-any-return]
    return _model(kind, _eval(node[1], args, w), _eval(node[2], args, w), w)  # type: ignore[index,arg-type]


@pytest.mark.parametrize("w", [32, 64])
def test_random_integer_chains_match_the_model(w: int) -> None:
    rng = random.Random(1600 + w)
    funcs, models = [], []
    for k in range(60):
        text, node = _tree(rng, w, 5)
        funcs.append(f'(func (export "e{k}") (param i{w} i{w}) (result i{w}) {text})')
        models.append(node)
    store, inst = instance(f"(module {' '.join(funcs)})")
    for k, node in enumerate(models):
        for _ in range(4):
            args = [rng.getrandbits(w), rng.choice([0, 1, 5, (1 << w) - 1, rng.getrandbits(w)])]
            assert store.call(inst.exports[f"e{k}"], args) == _eval(node, args, w), (k, args)
