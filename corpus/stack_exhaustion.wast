;; oomfuzz: max_wasm_stack=65536
;; Unbounded recursion is a stack-overflow trap (never a RecursionError), and the
;; store stays usable afterwards.
(module
  (func $r (export "recurse") (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))
  (func (export "ok") (result i32) (i32.const 5)))
(assert_exhaustion (invoke "recurse" (i32.const 0)) "call stack exhausted")
(assert_return (invoke "ok") (i32.const 5))
