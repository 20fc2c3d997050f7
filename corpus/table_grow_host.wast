;; Table.grow from the host (not absorbing).
(module
  (import "oomhost" "grow_table" (func $g (param i32) (result i32)))
  (table (export "table") 2 8 funcref)
  (func (export "grow") (param i32) (result i32) (call $g (local.get 0)))
  (func (export "size") (result i32) (table.size 0))
)
(assert_return (invoke "grow" (i32.const 3)) (i32.const 2))
(assert_return (invoke "size") (i32.const 5))
(assert_return (invoke "grow" (i32.const 4)) (i32.const -1))
