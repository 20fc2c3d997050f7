"""A WAST-script runner: our reader (``wasmrt.text.wast``) drives the vm core directly.

Pipeline per module: ``WastModule.parse()`` (text, quote or binary) ->
``validate_module`` -> ``compile_module`` -> ``instantiate`` in one ``StoreCore``.

Invariants:
- Each script runs in one fresh ``StoreCore`` with the standard ``spectest``
  host module; module names and ``register`` follow the spec interpreter.
- No tool other than our own reader touches the script: text, ``quote`` and
  ``binary`` modules all run, so nothing is skipped.
- Values compare by bits: floats and v128 lanes bit for bit, ``nan:canonical``
  / ``nan:arithmetic`` per the spec (per lane for v128); references compare
  by identity (externref ``N`` is one object per N).
- ``assert_malformed`` needs a ``MalformedError``/``WatParseError``,
  ``assert_invalid`` an ``InvalidModuleError``, ``assert_unlinkable`` a
  ``LinkError``; a trap must match the expected message.
- Every assertion is counted exactly once as passed or failed; a failing
  module or action command counts as a failure too. No failure is tolerated
  silently: the caller fails the file if ``Counts.failures`` is non-empty.
- With ``via_binary=True`` text modules go through our encoder and decoder
  (``to_bytes()`` -> ``decode_module``) instead of straight to the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wasmrt import ir
from wasmrt.binary import decode_module
from wasmrt.compile import CompiledModule, compile_module
from wasmrt.errors import (
    InvalidModuleError,
    LinkError,
    MalformedError,
    WasmtimeError,
    WatParseError,
)
from wasmrt.text.wast import (
    Action,
    ActionCommand,
    AssertExhaustion,
    AssertInvalid,
    AssertMalformed,
    AssertReturn,
    AssertTrap,
    AssertUninstantiable,
    AssertUnlinkable,
    Command,
    ModuleCommand,
    Register,
    WastModule,
    WastValue,
)
from wasmrt.trap import SPEC_TRAP_WORDING, Trap, TrapCode
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

_TRAP_ALIASES = SPEC_TRAP_WORDING

#: float lane/scalar facts: (width, canonical NaN bits, quiet bit)
_FLOAT = {"f32": (32, 0x7FC00000, 1 << 22), "f64": (64, 0x7FF8000000000000, 1 << 51)}
_LANE_WIDTH = {"i8": 8, "i16": 16, "i32": 32, "i64": 64, "f32": 32, "f64": 64}

#: exceptions a single command may raise that count as that command's failure
_COMMAND_ERRORS = (
    Trap,
    WasmtimeError,
    LookupError,
    AssertionError,
    TypeError,
    ValueError,
    ArithmeticError,
    NotImplementedError,
    RecursionError,
)


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
    failures: list[str] = field(default_factory=list)


class Failure(Exception):
    pass


def trap_matches(trap: Trap, text: str) -> bool:
    reason = trap.reason
    if text in reason or reason in text:
        return True
    code = trap.trap_code
    return code is not None and any(text.startswith(a) for a in _TRAP_ALIASES.get(code, ()))


def _float_matches(bits: int, ty: str, want: int | str | None) -> bool:
    width, canon, quiet = _FLOAT[ty]
    exp_mask = canon & ~quiet  # all exponent bits
    mant_mask = (quiet << 1) - 1
    is_nan = (bits & exp_mask) == exp_mask and bool(bits & mant_mask)
    if want == "nan:canonical":
        return is_nan and bits & ((1 << (width - 1)) - 1) == canon
    if want == "nan:arithmetic":
        return is_nan and bool(bits & quiet)
    return bits == want


class Runner:
    def __init__(self, *, via_binary: bool = False) -> None:
        self.via_binary = via_binary
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

    def parse(self, wm: WastModule) -> ir.Module:
        if self.via_binary and wm.kind != "binary":
            return decode_module(wm.to_bytes())  # type: ignore[no-any-return]
        return wm.parse()

    def load(self, wm: WastModule) -> CompiledModule:
        m = self.parse(wm)
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

    def instantiate(self, wm: WastModule) -> ModuleInstance:
        compiled = self.load(wm)
        return instantiate(self.store, compiled, self.link(compiled.module))

    # ------------------------------------------------------------ values
    def arg(self, v: WastValue) -> Any:
        t = v.type
        if t in ("i32", "i64", "v128") and v.bits is not None:
            return v.bits
        if t == "f32" and v.bits is not None:
            return f32_from_bits(v.bits)
        if t == "f64" and v.bits is not None:
            return f64_from_bits(v.bits)
        if t in ("externref", "funcref") and v.is_null:
            return None
        if t == "externref" and v.bits is not None and v.pattern is None:
            return self.externs.setdefault(v.bits, ExternRef(v.bits))
        raise Failure(f"unsupported argument {v}")

    def check(self, actual: Any, exp: WastValue) -> bool:
        t = exp.type
        if t in ("i32", "i64"):
            return isinstance(actual, int) and actual == exp.bits
        if t in ("f32", "f64"):
            if not isinstance(actual, float):
                return False
            bits = f32_to_bits(actual) if t == "f32" else f64_to_bits(actual)
            return _float_matches(bits, t, exp.pattern or exp.bits)
        if t == "v128":
            if not isinstance(actual, int) or not 0 <= actual < 1 << 128:
                return False
            if exp.lane_type is None:
                return actual == exp.bits
            w = _LANE_WIDTH[exp.lane_type]
            mask = (1 << w) - 1
            for k, want in enumerate(exp.lanes):
                lane = (actual >> (k * w)) & mask
                if exp.lane_type[0] == "f":
                    if not _float_matches(lane, exp.lane_type, want):
                        return False
                elif lane != want:
                    return False
            return True
        if t == "externref":
            if exp.is_null:
                return actual is None
            if exp.pattern == "ref.extern":
                return actual is not None
            assert exp.bits is not None
            ref = self.externs.get(exp.bits)
            return ref is not None and actual is ref
        if t == "funcref":
            if exp.is_null:
                return actual is None
            if exp.pattern == "ref.func":
                return isinstance(actual, FuncInstance)
            raise Failure(f"unsupported expected funcref {exp}")
        raise Failure(f"unsupported expected type {t}")

    # ------------------------------------------------------------ actions
    def action(self, a: Action) -> list[Any]:
        inst = self.named[a.module] if a.module is not None else self.current
        if inst is None:
            raise Failure("no current module")
        item = inst.exports[a.field]
        if a.kind == "get":
            if not isinstance(item, GlobalInstance):
                raise Failure(f"export {a.field!r} is not a global")
            return [item.value]
        if not isinstance(item, FuncInstance):
            raise Failure(f"export {a.field!r} is not a function")
        args = [self.arg(x) for x in a.args]
        res = self.store.call(item, args)
        n = len(item.type.results)
        if n == 0:
            return []
        if n == 1:
            return [res]
        return list(res)

    # ------------------------------------------------------------ commands
    def run(self, commands: list[Command]) -> Counts:
        for cmd in commands:
            try:
                self.command(cmd)
            except Failure as e:
                self.fail(cmd, str(e))
            except _COMMAND_ERRORS as e:
                self.fail(cmd, f"unexpected {type(e).__name__}: {e}")
        return self.counts

    def fail(self, cmd: Command, why: str) -> None:
        self.counts.failed += 1
        self.counts.failures.append(f"line {cmd.line}: {type(cmd).__name__}: {why}")

    def ok(self) -> None:
        self.counts.passed += 1

    def expect_trap(self, message: str, run: Any, exhaustion: bool = False) -> None:
        try:
            got = run()
        except Trap as e:
            if not trap_matches(e, message):
                raise Failure(f"expected trap {message!r}, got {e.reason!r}") from None
            if exhaustion and e.trap_code is not TrapCode.STACK_OVERFLOW:
                raise Failure(f"expected stack exhaustion, got {e.reason!r}") from None
            self.ok()
            return
        raise Failure(f"expected trap {message!r}, got {got!r}")

    def command(self, cmd: Command) -> None:  # noqa: C901, PLR0912 - one branch per command
        if isinstance(cmd, ModuleCommand):
            inst = self.instantiate(cmd.module)
            self.current = inst
            if cmd.module.name is not None:
                self.named[cmd.module.name] = inst
        elif isinstance(cmd, Register):
            target = self.named[cmd.module] if cmd.module is not None else self.current
            if target is None:
                raise Failure("register without a module")
            self.registry[cmd.name] = target.exports
        elif isinstance(cmd, ActionCommand):
            self.action(cmd.action)
        elif isinstance(cmd, AssertReturn):
            got = self.action(cmd.action)
            exp = cmd.expected
            if len(got) != len(exp) or not all(
                self.check(g, e) for g, e in zip(got, exp, strict=True)
            ):
                raise Failure(f"expected {list(exp)}, got {got!r}")
            self.ok()
        elif isinstance(cmd, AssertTrap):
            if cmd.action is not None:
                act = cmd.action
                self.expect_trap(cmd.message, lambda: self.action(act))
            else:
                wm = cmd.module
                assert wm is not None
                self.expect_trap(cmd.message, lambda: self.instantiate(wm))
        elif isinstance(cmd, AssertUninstantiable):
            wm2 = cmd.module
            self.expect_trap(cmd.message, lambda: self.instantiate(wm2))
        elif isinstance(cmd, AssertExhaustion):
            act2 = cmd.action
            self.expect_trap(cmd.message, lambda: self.action(act2), exhaustion=True)
        elif isinstance(cmd, AssertMalformed):
            try:
                self.load(cmd.module)
            except (MalformedError, WatParseError):
                self.ok()
                return
            except InvalidModuleError as e:
                raise Failure(f"expected malformed {cmd.message!r}, got invalid: {e}") from None
            raise Failure(f"module was accepted, expected malformed {cmd.message!r}")
        elif isinstance(cmd, AssertInvalid):
            try:
                self.load(cmd.module)
            except InvalidModuleError:
                self.ok()
                return
            except (MalformedError, WatParseError) as e:
                raise Failure(f"expected invalid {cmd.message!r}, got malformed: {e}") from None
            raise Failure(f"module was accepted, expected invalid {cmd.message!r}")
        elif isinstance(cmd, AssertUnlinkable):
            try:
                self.instantiate(cmd.module)
            except LinkError:
                self.ok()
                return
            raise Failure(f"module linked, expected {cmd.message!r}")
        else:
            raise Failure(f"unknown command {type(cmd).__name__}")
