"""WASI programs as scenarios: a ``.wasm`` or ``.wat`` module run as a WASI command.

A program scenario is a ``.wasm``/``.wat`` file named on the command line
(directory walks do not pick modules up) plus how to run it (:class:`ProgramSpec`):
the function to invoke (``_start`` unless ``--invoke`` says otherwise), the
arguments, environment and preopened directories, from the CLI
(``--invoke``, ``--arg``, ``--env K=V``, ``--dir HOST::GUEST``) or from a
sidecar ``NAME.json`` next to ``NAME.wasm`` in the WASI testsuite's format
(``args``, ``env``, ``root`` -- preopened as ``/`` -- or the older ``dirs``,
and the expected ``exit_code``, ``stdout``, ``stderr``). The sidecar's
``"oomfuzz"`` object holds header directives (``{"allocator": "ondemand",
"accept": "exit:1"}``); a ``.wat`` file may also carry them as ``;; oomfuzz:``
comments.

Each run: the unit's engine (programs default to ``engine=shared``), the
module built through the unit's module reuse (:mod:`oomfuzz.reuse`: decoded
and validated once, its build's allocations still injection points of every
run), a store from the run context, a ``WasiConfig`` capturing
stdout and stderr in memory, ``Linker.define_wasi()``, instantiation and
the call. The run's result is one :class:`~oomfuzz.guest.ProgramResult`:
exit code, stdout, stderr, trap and results, compared by the post-OOM check
and judged by the guest checks.

Invariants:
- ``ExitTrap`` (``proc_exit``) and a wasm ``Trap`` are the guest's outcome,
  recorded in the result, never a runtime error; an ``OutOfMemory`` (a
  refused host allocation) propagates unchanged to the harness.
- A run in which nothing was refused must match the sidecar's expectations
  (when the sidecar also gave the arguments): otherwise it raises
  ``ExpectationFailed``, so a dry run that does not reproduce the expected
  output fails the sweep before any injection.
- Input problems (unreadable module, malformed sidecar, bad ``--env`` or
  ``--dir``, a missing export) raise ``ScenarioError`` with one line.
- Specs are frozen and picklable (they travel to worker processes in units).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import wasmrt
from oomfuzz.checks import ExpectationFailed
from oomfuzz.context import Scenario, ScenarioContext, ScenarioError, parse_directives
from oomfuzz.guest import ProgramResult
from oomfuzz.inject import Injector
from wasmrt.alloc import current_hook
from wasmrt.errors import OutOfMemory
from wasmrt.trap import Trap

__all__ = [
    "WASI_MODULE",
    "Expected",
    "ProgramFormat",
    "ProgramOverrides",
    "ProgramRun",
    "ProgramSpec",
    "apply_overrides",
    "load_program",
    "parse_dir",
    "parse_env",
]

#: The import module name of WASI preview 1.
WASI_MODULE = "wasi_snapshot_preview1"


@dataclass(frozen=True, slots=True)
class Expected:
    """What the sidecar says a fault-free run gives (``None``: not stated)."""

    exit_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None

    def mismatch(self, result: ProgramResult) -> str:
        if result.trap and (self.exit_code is not None or self.stdout is not None):
            return f"trapped ({result.trap})"
        if self.exit_code is not None and result.exit_code != self.exit_code:
            return f"exit code {result.exit_code}, expected {self.exit_code}"
        for name, want in (("stdout", self.stdout), ("stderr", self.stderr)):
            got = getattr(result, name)
            if want is not None and got != want.encode():
                return f"{name} {got[:200]!r}, expected {want.encode()[:200]!r}"
        return ""


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """How a program scenario is run."""

    invoke: str = "_start"
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    #: Preopened directories: (host path, guest path).
    dirs: tuple[tuple[str, str], ...] = ()
    expected: Expected = field(default_factory=Expected)


@dataclass(frozen=True, slots=True)
class ProgramOverrides:
    """Command-line settings that replace the sidecar's (``None``: keep the sidecar's)."""

    invoke: str | None = None
    args: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] | None = None
    dirs: tuple[tuple[str, str], ...] | None = None

    @property
    def empty(self) -> bool:
        return self.invoke is None and self.args is None and self.env is None and self.dirs is None

    def flags(self) -> list[str]:
        """The command-line flags that give these settings."""
        out = [] if self.invoke is None else ["--invoke", self.invoke]
        out += [f"--arg={a}" for a in self.args or ()]
        out += [f"--env={k}={v}" for k, v in self.env or ()]
        out += [f"--dir={h}::{g}" for h, g in self.dirs or ()]
        return out


def parse_env(item: str) -> tuple[str, str]:
    """``K=V`` (``ValueError`` otherwise)."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--env takes KEY=VALUE, not {item!r}")
    return key, value


def parse_dir(item: str) -> tuple[str, str]:
    """``HOST::GUEST`` (or ``HOST``, seen by the guest under the same path)."""
    host, sep, guest = item.partition("::")
    if not host or (sep and not guest):
        raise ValueError(f"--dir takes HOST::GUEST or HOST, not {item!r}")
    if not os.path.isdir(host):
        raise ValueError(f"--dir {item}: no such directory {host!r}")
    return host, guest if sep else host


def apply_overrides(scenario: Scenario, over: ProgramOverrides) -> Scenario:
    """``scenario`` run with the command line's settings instead of its sidecar's.

    Changing what the program is given drops the sidecar's expectations (they
    describe the sidecar's run); ``--invoke`` alone keeps them.
    """
    run = scenario.func
    if not isinstance(run, ProgramRun) or over.empty:
        return scenario
    spec = run.spec
    same_input = over.args is None and over.env is None and over.dirs is None
    spec = ProgramSpec(
        over.invoke if over.invoke is not None else spec.invoke,
        over.args if over.args is not None else spec.args,
        over.env if over.env is not None else spec.env,
        over.dirs if over.dirs is not None else spec.dirs,
        spec.expected if same_input else Expected(),
    )
    return replace(scenario, func=ProgramRun(scenario.path, spec, run.binary, run.text))


# -- loading ---------------------------------------------------------------------------


def _strings(value: object, what: str, source: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioError(f"{source}: {what} must be a list of strings")
    return list(value)


def _env(data: dict[str, Any], path: Path) -> tuple[tuple[str, str], ...]:
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ScenarioError(f"{path}: env must map strings to strings")
    return tuple(env.items())


def _dirs(data: dict[str, Any], path: Path) -> tuple[tuple[str, str], ...]:
    """``root`` preopened as ``/``, each of the older ``dirs`` under its own name."""
    dirs: list[tuple[str, str]] = []
    root = data.get("root")
    if root is not None:
        if not isinstance(root, str):
            raise ScenarioError(f"{path}: root must be a string")
        dirs.append((str(path.parent / root), "/"))
    for d in _strings(data.get("dirs", []), "dirs", path):
        dirs.append((str(path.parent / d), d))
    for host, _ in dirs:
        if not os.path.isdir(host):
            raise ScenarioError(f"{path}: no such directory {host}")
    return tuple(dirs)


def _expected(data: dict[str, Any], path: Path) -> Expected:
    exit_code = data.get("exit_code")
    if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
        raise ScenarioError(f"{path}: exit_code must be an integer")
    outputs = {k: data.get(k) for k in ("stdout", "stderr")}
    for k, v in outputs.items():
        if v is not None and not isinstance(v, str):
            raise ScenarioError(f"{path}: {k} must be a string")
    return Expected(exit_code, outputs["stdout"], outputs["stderr"])


def _options(data: dict[str, Any], path: Path) -> tuple[str, dict[str, str]]:
    """The ``"oomfuzz"`` object: the function to invoke and the header directives."""
    options = data.get("oomfuzz", {})
    if not isinstance(options, dict):
        raise ScenarioError(f'{path}: "oomfuzz" must be an object of directives')
    invoke = str(options.get("invoke", "_start"))
    items = [
        f"{k}={str(v).lower() if isinstance(v, bool) else v}"
        for k, v in options.items()
        if k != "invoke"
    ]
    line = f";; oomfuzz: {' '.join(items)}" if items else ""
    return invoke, parse_directives(line, str(path))


def _sidecar(path: Path, text: str) -> tuple[ProgramSpec, dict[str, str]]:
    """A sidecar's run settings and directives (``ScenarioError`` when malformed)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{path}: not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a sidecar is a JSON object")
    args = _strings(data.get("args", []), "args", path)
    invoke, directives = _options(data, path)
    spec = ProgramSpec(
        invoke, tuple(args), _env(data, path), _dirs(data, path), _expected(data, path)
    )
    return spec, directives


def load_program(path: Path) -> Scenario:
    """A ``.wasm``/``.wat`` program and its sidecar (if any) as a scenario."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"no such scenario: {path}") from None
    except OSError as e:
        raise ScenarioError(f"cannot read {path}: {e}") from None
    text = ""
    directives: dict[str, str] = {}
    if path.suffix == ".wat":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScenarioError(f"{path}: not UTF-8 text: {e}") from None
        directives = parse_directives(text, str(path))
    elif not data.startswith(b"\0asm"):
        raise ScenarioError(f"{path}: not a WebAssembly binary (no \\0asm header)")
    spec = ProgramSpec()
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            side_text = sidecar.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ScenarioError(f"cannot read {sidecar}: {e}") from None
        spec, side_directives = _sidecar(sidecar, side_text)
        directives = {**side_directives, **directives}
    directives.setdefault("engine", "shared")
    run = ProgramRun(path, spec, b"" if text else data, text)
    return Scenario(path, directives, text, func=run, format=path.suffix)


# -- running -----------------------------------------------------------------------------


def _fault_free() -> bool:
    """Has nothing been refused in this run (so the sidecar's expectations apply)?"""
    hook = current_hook()
    return not isinstance(hook, Injector) or not hook.injected


def _trap_text(trap: Trap) -> str:
    """``code: reason`` (``unreachable: wasm `unreachable` instruction executed``)."""
    lines = [ln.strip() for ln in str(trap).splitlines() if ln.strip()]
    reason = getattr(trap, "reason", None) or (lines[-1] if lines else "")
    code = getattr(trap, "trap_code", None)
    name = getattr(code, "name", None)
    return f"{name.lower()}: {reason}" if isinstance(name, str) else str(reason)


def _results(value: object) -> tuple[object, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


class ProgramRun:
    """A program scenario's run function: its spec and module (``Scenario.func``).

    Every run builds its module (on the shared engine by default), so the
    build's allocations are injection points of every run; the unit's module
    reuse (:mod:`oomfuzz.reuse`) serves the runs whose injection is not inside
    the build from the module decoded and validated once.
    """

    def __init__(self, path: Path, spec: ProgramSpec, binary: bytes, text: str) -> None:
        self.path = path
        self.spec = spec
        self.binary = binary
        self.text = text

    def module(self, ctx: ScenarioContext, engine: Any) -> Any:
        return ctx.module(engine, self.source, self)

    def source(self) -> bytes | str:
        return self.text or self.binary

    def __call__(self, ctx: ScenarioContext) -> ProgramResult:
        spec = self.spec
        engine = ctx.engine()
        module = self.module(ctx, engine)
        store = ctx.store(engine)
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        linker = wasmrt.Linker(engine)
        if any(i.module == WASI_MODULE for i in module.imports):
            config = self.wasi_config(stdout, stderr)
            store.set_wasi(config)
            linker.define_wasi()
        instance = linker.instantiate(store, module)
        func = instance.exports(store).get(spec.invoke)
        if not isinstance(func, wasmrt.Func):
            raise ScenarioError(f"{self.path}: exports no function {spec.invoke!r}")
        exit_code, trap = 0, ""
        results: tuple[object, ...] = ()
        try:
            results = _results(func(store))
        except OutOfMemory:
            raise
        except wasmrt.ExitTrap as e:
            exit_code = e.code
        except Trap as e:
            trap = _trap_text(e)
        return ProgramResult(exit_code, b"".join(stdout), b"".join(stderr), trap, results)

    def wasi_config(self, stdout: list[bytes], stderr: list[bytes]) -> wasmrt.WasiConfig:
        """The run's ``WasiConfig``: argv, env, preopens; stdout/stderr into the lists."""
        spec = self.spec
        config = wasmrt.WasiConfig()
        config.argv = [self.path.name, *spec.args]
        config.env = [list(pair) for pair in spec.env]
        config.stdout_custom = stdout.append
        config.stderr_custom = stderr.append
        for host, guest in spec.dirs:
            config.preopen_dir(host, guest)
        return config


class ProgramFormat:
    """``.wasm`` binaries and ``.wat`` texts run as WASI programs."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.pattern = f"*{suffix} named on the command line"

    def discover(self, path: Path) -> bool:
        # Swept when named, never picked up by a directory walk: a directory's
        # modules are as often build outputs or fixtures, and a whole program per
        # injection would multiply the cost of sweeping a corpus of scripts.
        return False

    def load(self, path: Path) -> Scenario:
        return load_program(path)

    def run(self, scenario: Scenario, ctx: ScenarioContext) -> None:
        run = scenario.func
        assert isinstance(run, ProgramRun)
        result = run(ctx)
        ctx.outcomes.append(result)  # type: ignore[arg-type]
        if _fault_free():
            problem = run.spec.expected.mismatch(result)
            if problem:
                raise ExpectationFailed(f"{scenario.path}: fault-free run gave {problem}")
