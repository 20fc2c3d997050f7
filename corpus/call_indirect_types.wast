;; call_indirect with signature checks and traps; funcref tables of imported functions.
(module
  (import "spectest" "print_i32" (func $p (param i32)))
  (type $ii (func (param i32) (result i32)))
  (type $v (func))
  (table funcref (elem $inc $dbl $p))
  (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (param i32) (result i32) (i32.shl (local.get 0) (i32.const 1)))
  (func (export "call") (param i32 i32) (result i32) (call_indirect (type $ii) (local.get 1) (local.get 0))))
(assert_return (invoke "call" (i32.const 0) (i32.const 4)) (i32.const 5))
(assert_return (invoke "call" (i32.const 1) (i32.const 4)) (i32.const 8))
(assert_trap (invoke "call" (i32.const 2) (i32.const 4)) "indirect call type mismatch")
(assert_trap (invoke "call" (i32.const 3) (i32.const 4)) "undefined element")
