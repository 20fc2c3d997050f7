"""Tests for ``wasmrt.validate``: the whole spec testsuite plus focused IR cases.

Every ``assert_invalid`` module of every .wast file must be rejected with
``InvalidModuleError``; every other module the scripts define must validate.
Focused tests build ``ir.Module`` objects by hand for the subtle rules.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.testsuite import json_from_wast, wast_files
from wasmrt import ir
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.errors import InvalidModuleError, OutOfMemory
from wasmrt.ir import Instr as I
from wasmrt.validate import BlockInfo, FuncInfo, ModuleInfo, validate_module

# --------------------------------------------------------------------------
# Spec testsuite.

_NOT_MODULES = {"assert_malformed", "assert_invalid"}


def _suite_params() -> list:
    files = wast_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="Wasm spec testsuite absent"))]
    return [pytest.param(f, id=f.stem) for f in files]


def _binary(cmd: dict) -> str | None:
    name = cmd.get("filename")
    if not name or cmd.get("module_type", "binary") != "binary":
        return None
    return str(name)


@pytest.mark.parametrize("wast", _suite_params())
def test_spec_suite(wast: Path, tmp_path: Path) -> None:
    from wasmrt.binary import decode_module as decode

    script = json_from_wast(wast, tmp_path)
    rejected = accepted = 0
    elapsed = 0.0
    failures: list[str] = []
    for cmd in script["commands"]:
        kind = cmd["type"]
        name = _binary(cmd)
        if name is None or kind == "assert_malformed":
            continue
        module = decode((tmp_path / name).read_bytes())
        where = f"{wast.name}:{cmd['line']} {kind}"
        start = time.perf_counter()
        try:
            info = validate_module(module)
        except InvalidModuleError as exc:
            elapsed += time.perf_counter() - start
            if kind != "assert_invalid":
                failures.append(f"{where}: valid module rejected: {exc}")
            elif not exc.reason.startswith(cmd["text"]):
                failures.append(f"{where}: rejected as {exc.reason!r}, expected {cmd['text']!r}")
            else:
                rejected += 1
            continue
        elapsed += time.perf_counter() - start
        if kind == "assert_invalid":
            failures.append(f"{where}: accepted, expected {cmd.get('text')!r}")
            continue
        accepted += 1
        assert len(info.funcs) == len(module.funcs)
        for f, fi in zip(module.funcs, info.funcs, strict=True):
            for pos, b in fi.blocks.items():
                assert f.body[pos].op == b.kind and f.body[b.end_pos].op == "end"
                assert b.else_pos is None or f.body[b.else_pos].op == "else"
    print(f"{wast.stem}: rejected={rejected} accepted={accepted} validate={elapsed * 1000:.1f}ms")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------
# Hand-built IR helpers.


def _module(
    body: list[I],
    params: tuple[str, ...] = (),
    results: tuple[str, ...] = (),
    locals_: list[tuple[int, str]] | None = None,
    **fields: object,
) -> ir.Module:
    types = [ir.FuncType(params, results), *fields.pop("extra_types", [])]  # type: ignore[misc]
    m = ir.Module(types=types, funcs=[ir.Function(0, locals_ or [], [*body, I("end")])])
    for k, v in fields.items():
        setattr(m, k, v)
    return m


def _invalid(m: ir.Module, reason: str) -> InvalidModuleError:
    with pytest.raises(InvalidModuleError) as info:
        validate_module(m)
    assert info.value.reason == reason, info.value
    return info.value


# --------------------------------------------------------------------------
# Unreachable (polymorphic) stack with select.


def test_select_on_polymorphic_stack() -> None:
    # Both operands unknown: the result is unknown and can be any numeric type.
    validate_module(_module([I("unreachable"), I("select")], results=("i64",)))
    # One known operand fixes the type.
    validate_module(
        _module(
            [I("unreachable"), I("f32.const", (0,)), I("i32.const", (1,)), I("select")],
            results=("f32",),
        )
    )
    e = _invalid(
        _module(
            [I("unreachable"), I("f32.const", (0,)), I("i32.const", (1,)), I("select")],
            results=("i32",),
        ),
        "type mismatch",
    )
    assert e.func == 0 and e.instr == 4  # the final end


def test_untyped_select_rejects_references_even_when_unreachable() -> None:
    _invalid(
        _module(
            [
                I("unreachable"),
                I("ref.null", ("funcref",)),
                I("i32.const", (1,)),
                I("select"),
                I("drop"),
            ]
        ),
        "type mismatch",
    )
    _invalid(
        _module(
            [
                I("unreachable"),
                I("i32.const", (0,)),
                I("i64.const", (0,)),
                I("i32.const", (1,)),
                I("select"),
            ],
            results=("i32",),
        ),
        "type mismatch",
    )
    # A typed select takes references.
    validate_module(
        _module(
            [
                I("ref.null", ("externref",)),
                I("ref.null", ("externref",)),
                I("i32.const", (1,)),
                I("select", (("externref",),)),
            ],
            results=("externref",),
        )
    )
    _invalid(_module([I("unreachable"), I("select", (("i32", "i32"),))]), "invalid result arity")


# --------------------------------------------------------------------------
# br_table arity.


def test_br_table_labels_must_agree_on_arity() -> None:
    body = [
        I("block", ("i32",)),
        I("block", (None,)),
        I("i32.const", (0,)),
        I("i32.const", (0,)),
        I("br_table", ((0,), 1)),
        I("end"),
        I("i32.const", (1,)),
        I("end"),
        I("drop"),
    ]
    _invalid(_module(body), "type mismatch")


def test_br_table_meet_of_different_types_on_unknown_stack() -> None:
    body = [
        I("block", ("f64",)),
        I("block", ("f32",)),
        I("unreachable"),
        I("i32.const", (1,)),
        I("br_table", ((0, 1, 1), 1)),
        I("end"),
        I("drop"),
        I("f64.const", (0,)),
        I("end"),
        I("drop"),
    ]
    validate_module(_module(body))
    # With a known operand the two label types cannot both match.
    known = body[:3] + [I("f32.const", (0,))] + body[3:]
    _invalid(_module(known), "type mismatch")


def test_br_table_unknown_label() -> None:
    _invalid(_module([I("i32.const", (0,)), I("br_table", ((0, 7), 0))]), "unknown label 7")


# --------------------------------------------------------------------------
# ref.func declarations.


def _ref_func_module(**fields: object) -> ir.Module:
    return _module([I("ref.func", (0,))], results=("funcref",), **fields)


def test_ref_func_must_be_declared() -> None:
    _invalid(_ref_func_module(), "undeclared function reference")
    validate_module(_ref_func_module(exports=[ir.Export("f", "func", 0)]))
    validate_module(
        _ref_func_module(
            elems=[ir.Elem("declarative", "funcref", [[I("ref.func", (0,)), I("end")]])]
        )
    )
    validate_module(
        _ref_func_module(
            globals=[ir.Global(ir.GlobalType("funcref", False), [I("ref.func", (0,)), I("end")])]
        )
    )


def test_ref_func_in_another_body_does_not_declare() -> None:
    m = _ref_func_module()
    m.funcs.append(ir.Function(0, [], [I("ref.func", (0,)), I("end")]))
    _invalid(m, "undeclared function reference")


def test_ref_func_out_of_range() -> None:
    _invalid(_ref_func_module(exports=[ir.Export("f", "func", 3)]), "unknown function 3")


# --------------------------------------------------------------------------
# Constant expressions, module-level rules.


def _imported_global(mutable: bool) -> ir.Import:
    return ir.Import("m", "g", "global", ir.GlobalType("i32", mutable))


def test_const_expr_rules() -> None:
    get0 = [I("global.get", (0,)), I("end")]
    ok = _module(
        [],
        imports=[_imported_global(False)],
        globals=[ir.Global(ir.GlobalType("i32", False), get0)],
    )
    validate_module(ok)
    mut = _module(
        [], imports=[_imported_global(True)], globals=[ir.Global(ir.GlobalType("i32", False), get0)]
    )
    _invalid(mut, "constant expression required")
    # Wasm 2.0: a defined global is not visible in constant expressions.
    defined = _module(
        [],
        globals=[
            ir.Global(ir.GlobalType("i32", False), [I("i32.const", (0,)), I("end")]),
            ir.Global(ir.GlobalType("i32", False), get0),
        ],
    )
    _invalid(defined, "unknown global 0")
    add = [I("i32.const", (1,)), I("i32.const", (1,)), I("i32.add"), I("end")]
    _invalid(
        _module([], globals=[ir.Global(ir.GlobalType("i32", False), add)]),
        "constant expression required",
    )
    _invalid(
        _module(
            [], globals=[ir.Global(ir.GlobalType("i64", False), [I("i32.const", (0,)), I("end")])]
        ),
        "type mismatch",
    )


def test_module_level_rules() -> None:
    mem = ir.MemoryType(ir.Limits(1))
    _invalid(_module([], mems=[mem, mem]), "multiple memories")
    _invalid(
        _module([], mems=[ir.MemoryType(ir.Limits(65537))]),
        "memory size must be at most 65536 pages (4GiB)",
    )
    _invalid(
        _module([], mems=[ir.MemoryType(ir.Limits(2, 1))]),
        "size minimum must not be greater than maximum",
    )
    table = ir.TableType("funcref", ir.Limits(0, 0xFFFF_FFFF))
    validate_module(_module([], tables=[table, ir.TableType("externref", ir.Limits(1))]))
    _invalid(
        _module([], exports=[ir.Export("a", "func", 0), ir.Export("a", "func", 0)]),
        "duplicate export name",
    )
    _invalid(_module([], params=("i32",), start=0), "start function")
    _invalid(_module([], start=5), "unknown function 5")
    _invalid(_module([I("data.drop", (0,))]), "data count section required")


def test_elem_segment_type_must_match_table() -> None:
    seg = ir.Elem("active", "externref", [], table=0, offset=[I("i32.const", (0,)), I("end")])
    _invalid(
        _module([], tables=[ir.TableType("funcref", ir.Limits(1))], elems=[seg]), "type mismatch"
    )
    body = [I("i32.const", (0,))] * 3 + [I("table.init", (0, 0))]
    passive = ir.Elem("passive", "externref", [])
    _invalid(
        _module(body, tables=[ir.TableType("funcref", ir.Limits(1))], elems=[passive]),
        "type mismatch",
    )
    validate_module(
        _module(body, tables=[ir.TableType("externref", ir.Limits(1))], elems=[passive])
    )


# --------------------------------------------------------------------------
# Out-of-range indices, odd shapes and deep nesting never escape as other errors.


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([I("local.get", (9,)), I("drop")], "unknown local 9"),
        ([I("global.get", (0,)), I("drop")], "unknown global 0"),
        ([I("call", (4,))], "unknown function 4"),
        ([I("i32.const", (0,)), I("call_indirect", (0, 0))], "unknown table 0"),
        ([I("br", (1,))], "unknown label 1"),
        ([I("block", (99,)), I("end")], "unknown type 99"),
        ([I("i32.const", (0,)), I("i32.load", (0, 0)), I("drop")], "unknown memory 0"),
        ([I("elem.drop", (0,))], "unknown elem segment 0"),
        ([I("table.size", (0,)), I("drop")], "unknown table 0"),
        (
            [I("v128.const", (bytes(16),)), I("i64x2.extract_lane", (2,)), I("drop")],
            "invalid lane index",
        ),
        (
            [I("v128.const", (bytes(16),))] * 2
            + [I("i8x16.shuffle", (bytes([32] * 16),)), I("drop")],
            "invalid lane index",
        ),
        ([I("nop"), I("end")], "operators remaining after end of function"),
        ([I("else")], "else found outside of an `if` block"),
        (
            [I("v128.const", (bytes(16),)), I("i8x16.extract_lane_s", ())],
            "malformed immediate (tuple index out of range)",
        ),
    ],
)
def test_bad_indices_raise_invalid_module(body: list[I], reason: str) -> None:
    _invalid(_module(body), reason)


def test_memarg_alignment_and_lane_bounds() -> None:
    mem = [ir.MemoryType(ir.Limits(1))]
    _invalid(
        _module([I("i32.const", (0,)), I("i32.load16_u", (2, 0)), I("drop")], mems=mem),
        "alignment must not be larger than natural",
    )
    v = I("v128.const", (bytes(16),))
    ok = [I("i32.const", (0,)), v, I("v128.load16_lane", (1, 0, 7)), I("drop")]
    validate_module(_module(ok, mems=mem))
    bad = [I("i32.const", (0,)), v, I("v128.load16_lane", (1, 0, 8)), I("drop")]
    _invalid(_module(bad, mems=mem), "invalid lane index")


def test_deep_nesting_is_iterative() -> None:
    depth = 20_000
    body = [I("block", (None,))] * depth + [I("end")] * depth
    info = validate_module(_module(body))
    assert len(info.funcs[0].blocks) == depth


# --------------------------------------------------------------------------
# What the compiler gets.


def test_module_info_shape() -> None:
    body = [
        I("i32.const", (1,)),  # 0
        I("if", ("i32",)),  # 1
        I("i32.const", (2,)),  # 2
        I("else"),  # 3
        I("loop", (1,)),  # 4  type 1 is [] -> [i64]
        I("i64.const", (0,)),  # 5
        I("end"),  # 6
        I("drop"),  # 7
        I("local.get", (0,)),  # 8
        I("end"),  # 9
    ]
    m = _module(
        body,
        params=("i32",),
        results=("i32",),
        locals_=[(2, "f64"), (1, "v128")],
        extra_types=[ir.FuncType((), ("i64",))],
    )
    info = validate_module(m)
    assert isinstance(info, ModuleInfo)
    assert info.func_types == [m.types[0]]
    (f,) = info.funcs
    assert isinstance(f, FuncInfo)
    assert f.local_types == ("i32", "f64", "f64", "v128")
    assert f.max_stack_height == 1
    assert f.blocks == {
        1: BlockInfo("if", (), ("i32",), 3, 9),
        4: BlockInfo("loop", (), ("i64",), None, 6),
    }
    assert list(f.blocks) == [1, 4]


def test_max_stack_height_counts_pushes_on_unknown_stack() -> None:
    info = validate_module(_module([I("unreachable"), I("ref.is_null"), I("drop")]))
    assert info.funcs[0].max_stack_height == 1


def test_if_without_else_needs_matching_types() -> None:
    _invalid(
        _module(
            [I("i32.const", (1,)), I("if", ("i32",)), I("i32.const", (1,)), I("end"), I("drop")]
        ),
        "type mismatch",
    )


# --------------------------------------------------------------------------
# Allocation hook.


def test_allocations_go_through_the_hook() -> None:
    seen: list[tuple[int, AllocKind]] = []

    def record(size: int, kind: AllocKind, absorbing: bool) -> None:
        seen.append((size, kind))

    m = _module([I("nop")])
    m.funcs.append(ir.Function(0, [], [I("end")]))
    with install_hook(record):
        validate_module(m)
    assert [k for _, k in seen] == [AllocKind.MODULE] * 3  # module + one per function
    assert all(size > 0 for size, _ in seen)


@pytest.mark.parametrize("grant", [0, 1, 2])
def test_out_of_memory_propagates_unchanged(grant: int) -> None:
    left = [grant]

    def refuse(size: int, kind: AllocKind, absorbing: bool) -> None:
        if left[0] <= 0:
            raise OutOfMemory(size)
        left[0] -= 1

    m = _module([I("nop")])
    m.funcs.append(ir.Function(0, [], [I("end")]))
    with install_hook(refuse), pytest.raises(OutOfMemory):
        validate_module(m)
