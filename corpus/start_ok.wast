;; A start function that writes memory and a global before exports are used.
(module
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (func $start (i32.store (i32.const 0) (i32.const 55)) (global.set $g (i32.const 9)))
  (start $start)
  (func (export "mem") (result i32) (i32.load (i32.const 0)))
  (func (export "g") (result i32) (global.get $g)))
(assert_return (invoke "mem") (i32.const 55))
(assert_return (invoke "g") (i32.const 9))
