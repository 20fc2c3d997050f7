;; Memory.grow from the host (not absorbing: an OOM must reach the caller).
(module
  (import "oomhost" "grow_memory" (func $hgrow (param i32) (result i32)))
  (memory (export "memory") 1 4)
  (func (export "grow") (param i32) (result i32) (call $hgrow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
)
(assert_return (invoke "grow" (i32.const 1)) (i32.const 1))
(assert_return (invoke "grow" (i32.const 0)) (i32.const 2))
(assert_return (invoke "size") (i32.const 2))
(assert_return (invoke "grow" (i32.const 5)) (i32.const -1))
