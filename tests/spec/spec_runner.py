"""A WAST-script runner driving the vm core directly (decode -> validate -> compile -> instantiate).

Invariants:
- Each script runs in one fresh ``StoreCore`` with the standard ``spectest``
  host module; module names and ``register`` follow the spec interpreter.
- Floats compare by bits; ``nan:canonical`` / ``nan:arithmetic`` follow the
  spec; references compare by identity (externref ``N`` is one object per N).
- Every assertion is counted as passed or failed; only text-format modules
  (``module_type == "text"``, which need a text parser) are counted as skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmrt import ir
from wasmrt.binary import decode_module
from wasmrt.compile import compile_module
from wasmrt.errors import LinkError, WasmtimeError
from wasmrt.trap import Trap, TrapCode
from wasmrt.validate import validate_module
from wasmrt.vm import (
    FuncInstance,
    GlobalInstance,
    HostFunction,
    ModuleInstance,
    StoreCore,
    instantiate,
)
from wasmrt.vm.values import f32_from_bits, f32_to_bits, f64_from_bits, f64_to_bits

_TRAP_ALIASES: dict[TrapCode, tuple[str, ...]] = {
    TrapCode.MEMORY_OUT_OF_BOUNDS: ("out of bounds memory access",),
    TrapCode.TABLE_OUT_OF_BOUNDS: ("undefined element", "out of bounds table access"),
    TrapCode.INDIRECT_CALL_TO_NULL: ("uninitialized element",),
    TrapCode.BAD_SIGNATURE: ("indirect call type mismatch",),
    TrapCode.INTEGER_OVERFLOW: ("integer overflow",),
    TrapCode.INTEGER_DIVISION_BY_ZERO: ("integer divide by zero",),
    TrapCode.BAD_CONVERSION_TO_INTEGER: ("invalid conversion to integer",),
    TrapCode.UNREACHABLE: ("unreachable",),
    TrapCode.STACK_OVERFLOW: ("call stack exhausted",),
}


class ExternRef:
    """Host reference ``ref.extern N``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"ExternRef({self.n})"


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)


class Failure(Exception):
    pass


def trap_matches(trap: Trap, text: str) -> bool:
    reason = trap.reason
    if text in reason or reason in text:
        return True
    code = trap.trap_code
    return code is not None and any(text.startswith(a) for a in _TRAP_ALIASES.get(code, ()))


class Runner:
    def __init__(self, wasm_dir: Path) -> None:
        self.dir = wasm_dir
        self.store = StoreCore()
        self.externs: dict[int, ExternRef] = {}
        self.registry: dict[str, dict[str, Any]] = {"spectest": self._spectest()}
        self.named: dict[str, ModuleInstance] = {}
        self.current: ModuleInstance | None = None
        self.counts = Counts()

    # ------------------------------------------------------------ setup
    def _spectest(self) -> dict[str, Any]:
        s = self.store

        def host(*params: str) -> HostFunction:
            return HostFunction(s, ir.FuncType(tuple(params), ()), lambda caller, *a: None)

        return {
            "print": host(),
            "print_i32": host("i32"),
            "print_i64": host("i64"),
            "print_f32": host("f32"),
            "print_f64": host("f64"),
            "print_i32_f32": host("i32", "f32"),
            "print_f64_f64": host("f64", "f64"),
            "global_i32": GlobalInstance(ir.GlobalType("i32", False), 666),
            "global_i64": GlobalInstance(ir.GlobalType("i64", False), 666),
            "global_f32": GlobalInstance(ir.GlobalType("f32", False), f32_from_bits(0x4426A666)),
            "global_f64": GlobalInstance(ir.GlobalType("f64", False), 666.6),
            "table": s.new_host_table(ir.TableType("funcref", ir.Limits(10, 20))),
            "memory": s.new_host_memory(ir.MemoryType(ir.Limits(1, 2))),
        }

    def load(self, filename: str) -> Any:
        data = (self.dir / filename).read_bytes()
        m = decode_module(data)
        validate_module(m)
        return compile_module(m)

    def link(self, m: ir.Module) -> list[Any]:
        out = []
        for imp in m.imports:
            mod = self.registry.get(imp.module)
            if mod is None or imp.name not in mod:
                raise LinkError(f"unknown import: `{imp.module}::{imp.name}` has not been defined")
            out.append(mod[imp.name])
        return out

    def instantiate(self, filename: str) -> ModuleInstance:
        compiled = self.load(filename)
        return instantiate(self.store, compiled, self.link(compiled.module))

    # ------------------------------------------------------------ values
    def arg(self, v: dict[str, Any]) -> Any:
        t, val = v["type"], v.get("value")
        if t in ("i32", "i64"):
            return int(val) & (0xFFFFFFFF if t == "i32" else 0xFFFFFFFFFFFFFFFF)
        if t == "f32":
            return f32_from_bits(int(val))
        if t == "f64":
            return f64_from_bits(int(val))
        if t == "externref":
            if val == "null":
                return None
            n = int(val)
            return self.externs.setdefault(n, ExternRef(n))
        if t == "funcref":
            if val == "null":
                return None
            raise Failure(f"unsupported funcref argument {v}")
        raise Failure(f"unsupported argument type {t}")

    def check(self, actual: Any, exp: dict[str, Any]) -> bool:
        t, val = exp["type"], exp.get("value")
        if t in ("i32", "i64"):
            mask = 0xFFFFFFFF if t == "i32" else 0xFFFFFFFFFFFFFFFF
            return isinstance(actual, int) and actual == int(val) & mask
        if t in ("f32", "f64"):
            if not isinstance(actual, float):
                return False
            if t == "f32":
                bits, quiet, mag = f32_to_bits(actual), 0x400000, 0x7FFFFFFF
                canon = 0x7FC00000
                isnan = (bits & 0x7F800000) == 0x7F800000 and bits & 0x7FFFFF
            else:
                bits, quiet, mag = f64_to_bits(actual), 1 << 51, (1 << 63) - 1
                canon = 0x7FF8000000000000
                isnan = math.isnan(actual)
            if val == "nan:canonical":
                return bool(isnan) and bits & mag == canon
            if val == "nan:arithmetic":
                return bool(isnan) and bool(bits & quiet)
            return bits == int(val) & (0xFFFFFFFF if t == "f32" else (1 << 64) - 1)
        if t == "externref":
            if val is None:
                return actual is not None
            if val == "null":
                return actual is None
            return actual is self.externs.get(int(val))
        if t == "funcref":
            if val == "null":
                return actual is None
            return isinstance(actual, FuncInstance)
        raise Failure(f"unsupported expected type {t}")

    # ------------------------------------------------------------ actions
    def action(self, a: dict[str, Any]) -> list[Any]:
        inst = self.named[a["module"]] if a.get("module") else self.current
        if inst is None:
            raise Failure("no current module")
        item = inst.exports[a["field"]]
        if a["type"] == "invoke":
            args = [self.arg(x) for x in a.get("args", [])]
            res = self.store.call(item, args)
            if len(item.type.results) == 1:
                return [res]
        elif a["type"] == "get":
            assert isinstance(item, GlobalInstance)
            return [item.value]
        else:
            raise Failure(f"unknown action {a['type']}")
        if res is None:
            return []
        return list(res) if isinstance(res, tuple) else [res]

    # ------------------------------------------------------------ commands
    def run(self, commands: list[dict[str, Any]]) -> Counts:
        for cmd in commands:
            try:
                self.command(cmd)
            except Failure as e:
                self.counts.failed += 1
                self.counts.failures.append(f"line {cmd.get('line')}: {cmd['type']}: {e}")
            except (
                Trap,
                WasmtimeError,
                LookupError,
                AssertionError,
                TypeError,
                ValueError,
                ArithmeticError,
            ) as e:
                self.counts.failed += 1
                self.counts.failures.append(
                    f"line {cmd.get('line')}: {cmd['type']}: unexpected {type(e).__name__}: {e}"
                )
        return self.counts

    def ok(self) -> None:
        self.counts.passed += 1

    def command(self, cmd: dict[str, Any]) -> None:
        t = cmd["type"]
        if t == "module":
            filename = cmd.get("binary_filename") or cmd["filename"]
            if not filename.endswith(".wasm"):
                self.counts.skipped += 1
                return
            inst = self.instantiate(filename)
            self.current = inst
            if cmd.get("name"):
                self.named[cmd["name"]] = inst
        elif t == "register":
            inst = self.named[cmd["name"]] if cmd.get("name") else self.current
            assert inst is not None
            self.registry[cmd["as"]] = inst.exports
        elif t == "action":
            self.action(cmd["action"])
        elif t == "assert_return":
            got = self.action(cmd["action"])
            exp = cmd["expected"]
            if len(got) != len(exp) or not all(
                self.check(g, e) for g, e in zip(got, exp, strict=False)
            ):
                raise Failure(f"expected {exp}, got {got!r}")
            self.ok()
        elif t in ("assert_trap", "assert_exhaustion"):
            try:
                if "action" in cmd:
                    got = self.action(cmd["action"])
                else:
                    self.instantiate(cmd["filename"])
                    got = []
            except Trap as e:
                if not trap_matches(e, cmd["text"]):
                    raise Failure(f"expected trap {cmd['text']!r}, got {e.reason!r}") from None
                if t == "assert_exhaustion" and e.trap_code is not TrapCode.STACK_OVERFLOW:
                    raise Failure(f"expected stack overflow, got {e.reason!r}") from None
                self.ok()
                return
            raise Failure(f"expected trap {cmd['text']!r}, got {got!r}")
        elif t in ("assert_invalid", "assert_malformed"):
            filename = cmd.get("binary_filename") or cmd["filename"]
            if not filename.endswith(".wasm"):
                self.counts.skipped += 1
                return
            try:
                self.load(filename)
            except WasmtimeError:
                self.ok()
                return
            raise Failure(f"module was accepted, expected {cmd['text']!r}")
        elif t == "assert_unlinkable":
            try:
                self.instantiate(cmd["filename"])
            except LinkError:
                self.ok()
                return
            raise Failure(f"module linked, expected {cmd['text']!r}")
        elif t == "assert_uninstantiable":
            try:
                self.instantiate(cmd["filename"])
            except Trap as e:
                if not trap_matches(e, cmd["text"]):
                    raise Failure(f"expected trap {cmd['text']!r}, got {e.reason!r}") from None
                self.ok()
                return
            raise Failure(f"module instantiated, expected {cmd['text']!r}")
        elif t in ("module_definition", "module_instance"):
            raise Failure(f"unsupported command {t}")
        else:
            raise Failure(f"unknown command {t}")
