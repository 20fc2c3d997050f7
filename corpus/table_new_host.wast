;; Table::new, Global::new and Func::new from the host, called from wasm.
(module
  (import "oomhost" "new_table" (func $nt (param i32) (result i32)))
  (import "oomhost" "new_global" (func $ng (param i32) (result i32)))
  (import "oomhost" "new_func" (func $nf (param i32) (result i32)))
  (func (export "table") (param i32) (result i32) (call $nt (local.get 0)))
  (func (export "global") (param i32) (result i32) (call $ng (local.get 0)))
  (func (export "func") (param i32) (result i32) (call $nf (local.get 0)))
)
(assert_return (invoke "table" (i32.const 3)) (i32.const 3))
(assert_return (invoke "global" (i32.const 9)) (i32.const 9))
(assert_return (invoke "func" (i32.const 9)) (i32.const 10))
