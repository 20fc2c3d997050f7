;; Active element and data segments copied at instantiation (instance.rs table
;; element-segment initialisation), plus an out-of-bounds segment that traps.
(module
  (memory (export "memory") 1)
  (table 3 funcref)
  (type $t (func (result i32)))
  (func $a (result i32) (i32.const 10))
  (func $b (result i32) (i32.const 20))
  (elem (i32.const 0) $a $b)
  (elem (i32.const 2) func $a)
  (data (i32.const 0) "hello")
  (data (i32.const 65530) "world!")
  (func (export "byte") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0))))
(assert_return (invoke "byte" (i32.const 4)) (i32.const 111))
(assert_return (invoke "byte" (i32.const 65535)) (i32.const 33))
(assert_return (invoke "call" (i32.const 1)) (i32.const 20))
(assert_trap (module (memory 1) (data (i32.const 65535) "xx")) "out of bounds memory access")
(assert_trap (module (table 1 funcref) (func) (elem (i32.const 1) 0)) "out of bounds table access")
