"""The ``wasmrt`` command: validate, convert, print and run modules.

Invariants:
- Exit codes: 0 success; 1 the module is malformed or invalid, or the call
  trapped or failed; 2 usage or input error (unknown option, unreadable file).
  ``run`` of a WASI program exits with the code the program passed to
  ``proc_exit`` (0 when ``_start`` returns).
- ``run`` follows ``wasmtime run``: options first, then the module, then the
  program's arguments; ``--dir HOST::GUEST`` preopens, ``--env K=V`` sets
  the environment (only what is given), stdio is inherited.
- Errors print as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wasmrt.binary import decode_module
from wasmrt.errors import WasmtimeError
from wasmrt.runtime import Engine, ExitTrap, Func, Linker, Module, Store
from wasmrt.text import wat2wasm
from wasmrt.text.printer import print_module
from wasmrt.trap import Trap
from wasmrt.validate import validate_module
from wasmrt.wasi import WasiConfig


def _read_module_bytes(path: str) -> bytes:
    data = Path(path).read_bytes()
    if data[:4] == b"\0asm":
        return data
    return wat2wasm(data.decode("utf-8"))


def _cmd_validate(args: argparse.Namespace) -> int:
    module = decode_module(_read_module_bytes(args.file))
    validate_module(module)
    print(f"{args.file}: valid")
    return 0


def _cmd_wat2wasm(args: argparse.Namespace) -> int:
    data = _read_module_bytes(args.file)
    out = args.output or str(Path(args.file).with_suffix(".wasm"))
    Path(out).write_bytes(data)
    print(f"wrote {len(data)} bytes to {out}")
    return 0


def _cmd_print(args: argparse.Namespace) -> int:
    print(print_module(decode_module(_read_module_bytes(args.file)), folded=args.folded))
    return 0


def _parse_arg(text: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise WasmtimeError(f"argument `{text}` is neither an integer nor a float") from None


def _wasi_config(args: argparse.Namespace) -> WasiConfig:
    """The WASI configuration of a ``run``: argv, ``--env``, ``--dir`` and inherited stdio."""
    config = WasiConfig()
    config.argv = [args.file, *args.args]
    env: list[tuple[str, str]] = []
    for item in args.env:
        name, eq, value = item.partition("=")
        if not eq:
            value = os.environ.get(name, "")
        env.append((name, value))
    config.env = env
    for item in args.dir:
        host, sep, guest = item.partition("::")
        config.preopen_dir(host, guest if sep else host)
    config.inherit_stdin()
    config.inherit_stdout()
    config.inherit_stderr()
    return config


def _split_invoke(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The export to call and its arguments (``--invoke`` may also follow the file)."""
    rest = list(args.args)
    if args.invoke is None and rest[:1] == ["--invoke"]:
        if len(rest) < 2:
            raise WasmtimeError("`--invoke` needs an export name")
        return rest[1], rest[2:]
    return args.invoke, rest


def _cmd_run(args: argparse.Namespace) -> int:
    invoke, params = _split_invoke(args)
    engine = Engine()
    module = Module(engine, _read_module_bytes(args.file))
    linker = Linker(engine)
    linker.define_wasi()
    linker.define_unknown_imports_as_traps(module)
    with Store(engine) as store:
        if invoke is None:
            args.args = params
        store.set_wasi(_wasi_config(args))
        try:
            return _run_instance(linker, store, module, invoke, params)
        except ExitTrap as e:
            sys.stdout.flush()
            return e.code


def _run_instance(
    linker: Linker, store: Store, module: Module, invoke: str | None, params: list[str]
) -> int:
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    if invoke is None:
        start = exports.get("_start")
        if isinstance(start, Func):
            start(store)
        return 0
    if invoke not in exports:
        raise WasmtimeError(f"module has no export named `{invoke}`")
    func = exports[invoke]
    if not isinstance(func, Func):
        raise WasmtimeError(f"export `{invoke}` is not a function")
    result = func(store, *[_parse_arg(a) for a in params])
    if result is not None:
        print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wasmrt", description="A pure-Python WebAssembly runtime."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="decode and validate a .wasm or .wat file")
    p.add_argument("file")
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("wat2wasm", help="convert WAT text to a binary module")
    p.add_argument("file")
    p.add_argument("-o", "--output")
    p.set_defaults(func=_cmd_wat2wasm)
    p = sub.add_parser("print", help="print a module as WAT")
    p.add_argument("file")
    p.add_argument("--folded", action="store_true")
    p.set_defaults(func=_cmd_print)
    p = sub.add_parser(
        "run",
        help="run a WASI program (its `_start`) or call an export, like `wasmtime run`",
        description="Options go before the module; everything after it is passed to the "
        "program (or, with --invoke, to the export).",
    )
    p.add_argument(
        "--invoke", metavar="NAME", help="call this export with the arguments after the module"
    )
    p.add_argument(
        "--dir",
        action="append",
        default=[],
        metavar="HOST[::GUEST]",
        help="preopen the host directory HOST as GUEST (default: the same path)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VAL]",
        help="set an environment variable for the program (without `=`: inherit it)",
    )
    p.add_argument("file")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the program")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (OSError, UnicodeDecodeError) as e:
        print(f"wasmrt: error: {e}", file=sys.stderr)
        return 2
    except Trap as e:
        print(f"wasmrt: trap: {e.reason}", file=sys.stderr)
        return 1
    except WasmtimeError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"wasmrt: error: {first}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
