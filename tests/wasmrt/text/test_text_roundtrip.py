"""Property: random small valid IR modules survive print -> parse unchanged, and
``wasm-tools`` accepts every printed text (one ``wasm-tools wast`` run over all of them).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.testsuite import wasm_tools
from wasmrt import ir
from wasmrt.text import parse_wat
from wasmrt.text.printer import print_module

NUM = ("i32", "i64", "f32", "f64")
_BIN = {"i32": "i32.add", "i64": "i64.mul", "f32": "f32.sub", "f64": "f64.div"}
_LOAD = {
    "i32": ("i32.load", 2),
    "i64": ("i64.load", 3),
    "f32": ("f32.load", 2),
    "f64": ("f64.load", 3),
}
_EXTRACT = {
    "i32": "i32x4.extract_lane",
    "i64": "i64x2.extract_lane",
    "f32": "f32x4.extract_lane",
    "f64": "f64x2.extract_lane",
}
_LANES = {"i32": 4, "i64": 2, "f32": 4, "f64": 2}
_NAMES = st.text("abcxyz_.$0123456789", min_size=1, max_size=6)


def _const(draw: st.DrawFn, t: str) -> ir.Instr:
    if t == "i32":
        return ir.Instr("i32.const", (draw(st.integers(-(2**31), 2**31 - 1)),))
    if t == "i64":
        return ir.Instr("i64.const", (draw(st.integers(-(2**63), 2**63 - 1)),))
    bits = 32 if t == "f32" else 64
    special = st.sampled_from(
        [0, 1, (1 << (bits - 1)), (0x7F800001 if bits == 32 else 0x7FF0000000000001)]
    )
    return ir.Instr(f"{t}.const", (draw(st.integers(0, 2**bits - 1) | special),))


class _Gen:
    def __init__(self, draw: st.DrawFn, m: ir.Module, locals_: list[str], has_mem: bool) -> None:
        self.draw = draw
        self.m = m
        self.locals = locals_
        self.has_mem = has_mem
        self.out: list[ir.Instr] = []

    def expr(self, t: str, depth: int) -> None:
        draw, out = self.draw, self.out
        choices = ["const", "const"]
        if any(x == t for x in self.locals):
            choices.append("local")
        if depth < 3:
            choices += ["bin", "block", "if", "simd"]
            if self.has_mem:
                choices.append("load")
            if any(ft == ir.FuncType((), (t,)) for ft in self.m.types):
                choices.append("typed_block")
        kind = draw(st.sampled_from(choices))
        if kind == "const":
            out.append(_const(draw, t))
        elif kind == "local":
            idxs = [i for i, x in enumerate(self.locals) if x == t]
            out.append(ir.Instr("local.get", (draw(st.sampled_from(idxs)),)))
        elif kind == "bin":
            self.expr(t, depth + 1)
            self.expr(t, depth + 1)
            out.append(ir.Instr(_BIN[t]))
        elif kind in ("block", "typed_block"):
            op = draw(st.sampled_from(["block", "loop"]))
            bt: ir.BlockType = t
            if kind == "typed_block":
                bt = self.m.types.index(ir.FuncType((), (t,)))
            out.append(ir.Instr(op, (bt,)))
            self.stmt(depth + 1)
            self.expr(t, depth + 1)
            if op == "block" and draw(st.booleans()):
                self.expr(t, depth + 1)
                self.expr("i32", depth + 1)
                out.append(ir.Instr("br_if", (0,)))
                out.append(ir.Instr("drop"))
            out.append(ir.Instr("end"))
        elif kind == "if":
            self.expr("i32", depth + 1)
            out.append(ir.Instr("if", (t,)))
            self.expr(t, depth + 1)
            out.append(ir.Instr("else"))
            self.expr(t, depth + 1)
            out.append(ir.Instr("end"))
        elif kind == "load":
            op, natural = _LOAD[t]
            self.expr("i32", depth + 1)
            align = draw(st.integers(0, natural))
            out.append(ir.Instr(op, (align, draw(st.integers(0, 2**32 - 1)))))
        else:
            out.append(ir.Instr("v128.const", (draw(st.binary(min_size=16, max_size=16)),)))
            out.append(ir.Instr(_EXTRACT[t], (draw(st.integers(0, _LANES[t] - 1)),)))

    def stmt(self, depth: int) -> None:
        draw, out = self.draw, self.out
        kind = draw(st.sampled_from(["nop", "drop", "set", "datadrop"]))
        if kind == "nop":
            out.append(ir.Instr("nop"))
        elif kind == "drop" or (kind == "set" and not self.locals):
            self.expr(draw(st.sampled_from(NUM)), depth + 1)
            out.append(ir.Instr("drop"))
        elif kind == "set":
            i = draw(st.integers(0, len(self.locals) - 1))
            self.expr(self.locals[i], depth + 1)
            out.append(ir.Instr("local.set", (i,)))
        elif self.m.datas:
            out.append(ir.Instr("data.drop", (draw(st.integers(0, len(self.m.datas) - 1)),)))


@st.composite
def modules(draw: st.DrawFn) -> ir.Module:
    m = ir.Module()
    valtypes = st.sampled_from(NUM)
    m.types = draw(
        st.lists(
            st.builds(
                ir.FuncType,
                st.lists(valtypes, max_size=3).map(tuple),
                st.lists(valtypes, max_size=2).map(tuple),
            ),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    ntypes = len(m.types)
    for k in range(draw(st.integers(0, 2))):
        m.imports.append(ir.Import("env", f"f{k}", "func", draw(st.integers(0, ntypes - 1))))
    if draw(st.booleans()):
        m.imports.append(ir.Import("env", "g", "global", ir.GlobalType(draw(valtypes), False)))
    has_mem = draw(st.booleans())
    if has_mem:
        lo = draw(st.integers(0, 3))
        lim = ir.Limits(lo, draw(st.none() | st.integers(lo, 10)))
        if draw(st.booleans()):
            m.imports.append(ir.Import("env", "mem", "memory", ir.MemoryType(lim)))
        else:
            m.mems.append(ir.MemoryType(lim))
    m.tables = [
        ir.TableType(draw(st.sampled_from(ir.REFTYPES)), ir.Limits(draw(st.integers(0, 5))))
        for _ in range(draw(st.integers(0, 2)))
    ]
    for _ in range(draw(st.integers(0, 2))):
        gt = ir.GlobalType(draw(valtypes), draw(st.booleans()))
        m.globals.append(ir.Global(gt, [_const(draw, gt.valtype), ir.Instr("end")]))
    if has_mem:
        for _ in range(draw(st.integers(0, 2))):
            data = draw(st.binary(max_size=8))
            if draw(st.booleans()):
                m.datas.append(ir.Data("passive", data))
            else:
                off = [ir.Instr("i32.const", (draw(st.integers(0, 100)),)), ir.Instr("end")]
                m.datas.append(ir.Data("active", data, 0, off))
    nimp = len(m.imported("func"))
    nfuncs = draw(st.integers(0, 3))
    uses_dc = False
    for _ in range(nfuncs):
        tidx = draw(st.integers(0, ntypes - 1))
        ft = m.types[tidx]
        local_types = draw(st.lists(valtypes, max_size=4))
        runs: list[tuple[int, str]] = []
        for t in local_types:
            if runs and runs[-1][1] == t:
                runs[-1] = (runs[-1][0] + 1, t)
            else:
                runs.append((1, t))
        g = _Gen(draw, m, list(ft.params) + local_types, has_mem)
        for _ in range(draw(st.integers(0, 2))):
            g.stmt(0)
        for t in ft.results:
            g.expr(t, 0)
        g.out.append(ir.Instr("end"))
        uses_dc = uses_dc or any(i.op == "data.drop" for i in g.out)
        m.funcs.append(ir.Function(tidx, runs, g.out))
    nall = nimp + nfuncs
    if uses_dc:
        m.data_count = len(m.datas)
    export_names = draw(st.lists(_NAMES, max_size=3, unique=True))
    for name in export_names:
        if nall and draw(st.booleans()):
            m.exports.append(ir.Export(name, "func", draw(st.integers(0, nall - 1))))
        elif m.globals:
            m.exports.append(ir.Export(name, "global", 0))
    if nall:
        for _ in range(draw(st.integers(0, 2))):
            mode = draw(st.sampled_from(["passive", "declarative", "active"]))
            items = [
                [ir.Instr("ref.func", (draw(st.integers(0, nall - 1)),)), ir.Instr("end")]
                if draw(st.booleans())
                else [ir.Instr("ref.null", ("funcref",)), ir.Instr("end")]
                for _ in range(draw(st.integers(0, 3)))
            ]
            funcref_tables = [i for i, t in enumerate(m.tables) if t.elem == "funcref"]
            if mode == "active" and funcref_tables:
                off = [ir.Instr("i32.const", (0,)), ir.Instr("end")]
                m.elems.append(
                    ir.Elem("active", "funcref", items, draw(st.sampled_from(funcref_tables)), off)
                )
            elif mode != "active":
                m.elems.append(ir.Elem(mode, "funcref", items))  # type: ignore[arg-type]
    starts = [i for i in range(nall) if m.types[m.all_func_type_idxs()[i]] == ir.FuncType((), ())]
    if starts and draw(st.booleans()):
        m.start = draw(st.sampled_from(starts))
    if draw(st.booleans()):
        fnames = {i: f"fn{i}" for i in range(nall) if draw(st.booleans())}
        lnames: dict[int, dict[int, str]] = {}
        for k, fn in enumerate(m.funcs):
            n = len(m.types[fn.type_idx].params) + sum(c for c, _ in fn.locals)
            named = {i: f"l{i}" for i in range(n) if draw(st.booleans())}
            if named:
                lnames[nimp + k] = named
        m.names = ir.NameMap(draw(st.none() | st.just("mod")), fnames, lnames)
        if m.names == ir.NameMap():
            m.names = None
    return m


def test_print_parse_roundtrip_and_wasm_tools_accepts(tmp_path: Path) -> None:
    texts: list[str] = []

    @settings(
        max_examples=1000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(modules(), st.booleans())
    def roundtrip(m: ir.Module, folded: bool) -> None:
        text = print_module(m, folded=folded)
        assert parse_wat(text) == m, text
        texts.append(text)

    roundtrip()
    assert len(texts) >= 1000
    script = tmp_path / "printed.wast"
    script.write_text("\n".join(texts))
    proc = subprocess.run([wasm_tools(), "wast", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_printed_suite_like_module_is_accepted_by_wasm_tools_parse(tmp_path: Path) -> None:
    m = parse_wat(
        """(module $m (type $t (func (param i32) (result i32)))
        (func $f (export "f") (type $t) (param $x i32) (result i32)
          (if (result i32) (local.get $x) (then (i32.const 1)) (else (f32.const nan:0x1) drop (i32.const 2)))))"""
    )
    for folded in (False, True):
        path = tmp_path / f"m{folded}.wat"
        path.write_text(print_module(m, folded=folded))
        proc = subprocess.run(
            [wasm_tools(), "parse", str(path), "-o", str(tmp_path / "m.wasm")],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    with pytest.raises(ValueError):
        print_module(
            ir.Module(funcs=[ir.Function(0, [], [ir.Instr("bogus")])], types=[ir.FuncType((), ())])
        )
