;; Linker: define_instance (register), definitions shadowed, imports resolved
;; through the linker, a missing import (linker.rs).
(module $m1 (func (export "v") (result i32) (i32.const 1)))
(register "m" $m1)
(module $m2 (func (export "v") (result i32) (i32.const 2)))
(register "m" $m2)
(module $user
  (import "m" "v" (func $v (result i32)))
  (func (export "get") (result i32) (call $v)))
(assert_return (invoke $user "get") (i32.const 2))
(assert_unlinkable
  (module (import "m" "missing" (func)))
  "unknown import")
(assert_unlinkable
  (module (import "m" "v" (func (param i32))))
  "incompatible import type")
