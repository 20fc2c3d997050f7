;; A memory exported by one instance and imported by two others through register.
(module $owner
  (memory (export "memory") 1 3)
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))
(register "owner" $owner)
(module $writer
  (import "owner" "memory" (memory 1 3))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
(module $reader
  (import "owner" "memory" (memory 1 3))
  (func (export "size") (result i32) (memory.size)))
(invoke $writer "store" (i32.const 8) (i32.const 1234))
(assert_return (invoke $owner "load" (i32.const 8)) (i32.const 1234))
(assert_return (invoke $writer "grow" (i32.const 1)) (i32.const 1))
(assert_return (invoke $reader "size") (i32.const 2))
