;; A host function that calls back into wasm (host -> wasm re-entry), nested twice.
(module
  (import "oomhost" "call_back" (func $cb (param i32) (result i32)))
  (import "spectest" "print_i32" (func $print (param i32)))
  (func (export "callback") (param i32) (result i32)
    (call $print (local.get 0))
    (if (result i32) (i32.gt_u (local.get 0) (i32.const 2))
      (then (call $cb (i32.sub (local.get 0) (i32.const 1))))
      (else (i32.mul (local.get 0) (i32.const 10)))))
  (func (export "run") (param i32) (result i32) (call $cb (local.get 0))))
(assert_return (invoke "run" (i32.const 1)) (i32.const 10))
(assert_return (invoke "run" (i32.const 5)) (i32.const 20))
