;; table.grow from wasm: absorbing (-1 on refusal).
(module
  (table $t (export "table") 1 10 funcref)
  (func $f (export "callback") (param i32) (result i32) (local.get 0))
  (elem declare func $f)
  (func (export "grow") (param i32) (result i32) (table.grow $t (ref.func $f) (local.get 0)))
  (func (export "size") (result i32) (table.size $t))
)
(assert_return (invoke "grow" (i32.const 2)) (i32.const 1))
(assert_return (invoke "grow" (i32.const 3)) (i32.const 3))
(assert_return (invoke "size") (i32.const 6))
(assert_return (invoke "grow" (i32.const 10)) (i32.const -1))
