;; A start function that traps: instantiation fails with a Trap and must release
;; the instance's memory, table and count (cleanup check).
(module $ok (memory (export "m") 1) (func (export "f") (result i32) (i32.const 1)))
(assert_trap
  (module (memory 1) (table 2 funcref) (func $s unreachable) (start $s))
  "unreachable")
(assert_trap
  (module (memory 1) (func $s (drop (i32.load (i32.const 70000)))) (start $s))
  "out of bounds memory access")
(assert_return (invoke $ok "f") (i32.const 1))
