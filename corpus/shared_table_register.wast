;; A table shared through register: one instance writes elements, another calls them.
(module $owner
  (table (export "table") 4 funcref)
  (type $t (func (result i32)))
  (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0))))
(register "owner" $owner)
(module $filler
  (import "owner" "table" (table 4 funcref))
  (func $seven (result i32) (i32.const 7))
  (func $eight (result i32) (i32.const 8))
  (elem (i32.const 1) func $seven $eight))
(assert_return (invoke $owner "call" (i32.const 1)) (i32.const 7))
(assert_return (invoke $owner "call" (i32.const 2)) (i32.const 8))
(assert_trap (invoke $owner "call" (i32.const 0)) "uninitialized element")
