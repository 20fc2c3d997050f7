;; Func::call with parameters and results, multi-value, recursion (func.rs).
(module
  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 1))
      (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))
  (func (export "swap") (param i32 f32) (result f32 i32)
    (local.get 1) (local.get 0))
  (func (export "sum3") (param i32 i32 i32) (result i32)
    (i32.add (local.get 0) (i32.add (local.get 1) (local.get 2))))
)
(assert_return (invoke "fac" (i64.const 5)) (i64.const 120))
(assert_return (invoke "swap" (i32.const 3) (f32.const 1.5)) (f32.const 1.5) (i32.const 3))
(assert_return (invoke "sum3" (i32.const 1) (i32.const 2) (i32.const 3)) (i32.const 6))
