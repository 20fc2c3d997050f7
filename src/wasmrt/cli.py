"""The ``wasmrt`` command: validate, convert, print and run modules.

Invariants:
- Exit codes: 0 success; 1 the module is malformed or invalid, or the call
  trapped or failed; 2 usage or input error (unknown option, unreadable file).
- Errors print as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import wasmrt
from wasmrt.binary import decode_module
from wasmrt.errors import WasmtimeError
from wasmrt.text import wat2wasm
from wasmrt.text.printer import print_module
from wasmrt.trap import Trap
from wasmrt.validate import validate_module


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


def _cmd_run(args: argparse.Namespace) -> int:
    engine = wasmrt.Engine()
    store = wasmrt.Store(engine)
    module = wasmrt.Module(engine, _read_module_bytes(args.file))
    linker = wasmrt.Linker(engine)
    linker.define_unknown_imports_as_traps(module)
    instance = linker.instantiate(store, module)
    if args.invoke is None:
        return 0
    name, *params = args.invoke
    exports = instance.exports(store)
    if name not in exports:
        raise WasmtimeError(f"module has no export named `{name}`")
    func = exports[name]
    if not isinstance(func, wasmrt.Func):
        raise WasmtimeError(f"export `{name}` is not a function")
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
    p = sub.add_parser("run", help="instantiate a module and optionally call an export")
    p.add_argument("file")
    p.add_argument(
        "--invoke",
        nargs="+",
        metavar=("NAME", "ARG"),
        help="export to call, followed by its arguments (ints or floats)",
    )
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
