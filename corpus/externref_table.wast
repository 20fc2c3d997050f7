;; externref values through calls, globals and tables (host object identity kept).
(module
  (table $t 2 externref)
  (global $g (mut externref) (ref.null extern))
  (func (export "id") (param externref) (result externref) (local.get 0))
  (func (export "stash") (param externref) (table.set $t (i32.const 1) (local.get 0)) (global.set $g (local.get 0)))
  (func (export "table_get") (param i32) (result externref) (table.get $t (local.get 0)))
  (func (export "global_get") (result externref) (global.get $g)))
(assert_return (invoke "id" (ref.extern 1)) (ref.extern 1))
(assert_return (invoke "id" (ref.null extern)) (ref.null extern))
(invoke "stash" (ref.extern 7))
(assert_return (invoke "table_get" (i32.const 1)) (ref.extern 7))
(assert_return (invoke "table_get" (i32.const 0)) (ref.null extern))
(assert_return (invoke "global_get") (ref.extern 7))
