"""The spec runner itself can fail: wrong results, traps, and module verdicts are counted."""

from __future__ import annotations

from spec_runner import Runner

from wasmrt.text.wast import parse_wast

GOOD = r"""
(module
  (func (export "v") (param v128) (result v128) (local.get 0))
  (func (export "nan4") (result v128) (v128.const f32x4 nan nan:0x400001 -nan nan:0x600000))
  (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0))))
(assert_return (invoke "v" (v128.const i16x8 1 2 3 4 5 6 7 -1))
               (v128.const i16x8 1 2 3 4 5 6 7 0xffff))
(assert_return (invoke "v" (v128.const i8x16 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15))
               (v128.const i32x4 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c))
(assert_return (invoke "nan4")
               (v128.const f32x4 nan:canonical nan:arithmetic nan:canonical nan:arithmetic))
(assert_trap (invoke "div" (i32.const 0)) "integer divide by zero")
(assert_malformed (module quote "(func (i32.const))") "unexpected token")
(assert_invalid (module (func (result i32))) "type mismatch")
"""

BAD = r"""
(module
  (func (export "v") (param v128) (result v128) (local.get 0))
  (func (export "nan") (result v128) (v128.const f32x4 nan:0x200000 0 0 0))
  (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0))))
(assert_return (invoke "v" (v128.const i32x4 1 2 3 4)) (v128.const i32x4 1 2 3 5))
(assert_return (invoke "nan") (v128.const f32x4 nan:canonical 0 0 0))
(assert_trap (invoke "div" (i32.const 1)) "integer divide by zero")
(assert_trap (invoke "div" (i32.const 0)) "unreachable")
(assert_malformed (module quote "(func)") "whatever")
(assert_invalid (module (func)) "type mismatch")
(assert_invalid (module quote "(func (i32.const))") "type mismatch")
(assert_return (invoke "missing"))
"""


def test_runner_passes_a_correct_script() -> None:
    counts = Runner().run(parse_wast(GOOD))
    assert counts.failures == []
    assert counts.passed == 6


def test_runner_counts_every_kind_of_failure() -> None:
    counts = Runner().run(parse_wast(BAD))
    assert counts.passed == 0
    assert counts.failed == 8, counts.failures
