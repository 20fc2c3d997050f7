"""Benchmark workloads as WAT text, shared by every benchmark script.

Each workload names its module, the export to call, its arguments and the
expected result, so every engine's answer is checked before it is timed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Freestanding C programs built to wasm32 by clang (``c/build.sh``); the
#: built ``.wasm`` files are kept next to their sources.
C_DIR = Path(__file__).resolve().parent / "c"


@dataclass(frozen=True)
class Workload:
    name: str
    wat: str
    export: str
    args: tuple[int | float, ...]
    expected: int | float | None
    #: "call": time one call; "instantiate": time instantiating the module.
    kind: str = "call"
    #: A prebuilt binary module (then ``wat`` is empty), e.g. a C-built one.
    wasm: bytes | None = None


FIB = """(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))"""

LOOP = """(module
  (func (export "loop") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $top
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (i32.xor (local.get $i) (i32.const 0x55))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $top)))
    (local.get $acc)))"""

MEMORY = """(module
  (memory 1)
  (func (export "mem") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $top
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const 0xfffc))
                   (i32.mul (local.get $i) (i32.const 7)))
        (local.set $acc (i32.add (local.get $acc)
          (i32.load (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const 0xfffc)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $top)))
    (local.get $acc)))"""

INDIRECT = """(module
  (type $op (func (param i32) (result i32)))
  (table 4 funcref)
  (elem (i32.const 0) $inc $dbl $neg $id)
  (func $inc (type $op) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $op) (i32.shl (local.get 0) (i32.const 1)))
  (func $neg (type $op) (i32.sub (i32.const 0) (local.get 0)))
  (func $id (type $op) (local.get 0))
  (func (export "dispatch") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $top
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (call_indirect (type $op) (local.get $acc)
                                       (i32.and (local.get $i) (i32.const 3))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $top)))
    (local.get $acc)))"""

FLOAT = """(module
  (func (export "float") (param $n i32) (result f64)
    (local $i i32) (local $x f64)
    (local.set $x (f64.const 1.5))
    (block $done
      (loop $top
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (f64.add (f64.mul (local.get $x) (f64.const 0.999))
                               (f64.sqrt (f64.convert_i32_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $top)))
    (local.get $x)))"""

SIMD = """(module
  (memory 1)
  (func (export "simd") (param $n i32) (result i32)
    (local $i i32) (local $acc v128) (local $v v128)
    ;; fill 4 KiB with a byte pattern, then fold it lane-wise n times
    (block $filled
      (loop $fill
        (br_if $filled (i32.ge_u (local.get $i) (i32.const 4096)))
        (i32.store8 (local.get $i) (i32.mul (local.get $i) (i32.const 31)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $top
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $v (v128.load (i32.and (i32.shl (local.get $i) (i32.const 4)) (i32.const 0xff0))))
        (local.set $acc (i32x4.add (local.get $acc)
          (v128.xor (local.get $v) (i32x4.shl (local.get $acc) (i32.const 1)))))
        (local.set $acc (i16x8.add_sat_u (local.get $acc) (i8x16.swizzle (local.get $v) (local.get $acc))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $top)))
    (i32.add (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
             (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc))))))"""

INSTANTIATE = """(module
  (memory 1)
  (table 8 funcref)
  (global $g (mut i32) (i32.const 0))
  (func $a (result i32) (i32.const 1))
  (func $b (result i32) (i32.const 2))
  (elem (i32.const 0) $a $b $a $b)
  (data (i32.const 16) "hello, instantiation benchmark")
  (func (export "get") (result i32) (global.get $g)))"""


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _loop(n: int) -> int:
    return sum(i ^ 0x55 for i in range(n)) & 0xFFFFFFFF


def _mem(n: int) -> int:
    acc = 0
    for i in range(n):
        acc = (acc + i * 7) & 0xFFFFFFFF
    return acc


def _dispatch(n: int) -> int:
    acc = 0
    for i in range(n):
        op = i & 3
        if op == 0:
            acc = acc + 1
        elif op == 1:
            acc = acc << 1
        elif op == 2:
            acc = -acc
        acc &= 0xFFFFFFFF
    return acc


def _signed(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


WORKLOADS = [
    Workload("fib(20)", FIB, "fib", (20,), _fib(20)),
    Workload("loop(100k)", LOOP, "loop", (100_000,), _signed(_loop(100_000))),
    Workload("memory(50k)", MEMORY, "mem", (50_000,), _signed(_mem(50_000))),
    Workload("call_indirect(50k)", INDIRECT, "dispatch", (50_000,), _signed(_dispatch(50_000))),
    Workload("f64(50k)", FLOAT, "float", (50_000,), None),
    Workload("instantiate", INSTANTIATE, "get", (), 0, kind="instantiate"),
]

#: SIMD workloads are reported apart, so scalar results stay comparable across versions.
SIMD_WORKLOADS = [
    # No closed form: both engines must agree (checked by the benchmark).
    Workload("simd checksum(5k)", SIMD, "simd", (5_000,), None),
]


def c_module(name: str) -> bytes:
    """The bytes of ``benchmarks/c/<name>.wasm`` (built by ``c/build.sh``)."""
    return (C_DIR / f"{name}.wasm").read_bytes()


def _sort_checksum(n: int, seed: int) -> int:
    """What ``c/sort.c``'s ``sort_checksum`` computes."""
    x = seed
    data = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        data.append(x >> 8)
    total = 0
    for i, v in enumerate(sorted(data)):
        total = (total * 31 + v * (i + 1)) & 0xFFFFFFFF
    return total


def _hash_bench(n: int) -> int:
    """What ``c/hash.c``'s ``hash_bench`` computes (the n keys are distinct)."""
    return (n * 65536 + (n * (n - 1) // 2 & 0xFFFF)) & 0xFFFFFFFF


#: (name, module file, export, args, expected) of the C-built modules; each
#: module is also instantiated by ``bench_api.py``. ``None``: no closed form,
#: the engines must agree.
C_MODULES = [
    ("C sort(200)", "sort", "sort_checksum", (200, 7), _signed(_sort_checksum(200, 7))),
    ("C interp(100)", "interp", "run_program", (100,), None),
    ("C hash(200)", "hash", "hash_bench", (200,), _signed(_hash_bench(200))),
]


def c_workloads() -> list[Workload]:
    """The C-built modules as call workloads (reads the ``.wasm`` files)."""
    return [
        Workload(name, "", export, args, expected, wasm=c_module(file))
        for name, file, export, args, expected in C_MODULES
    ]
