;; memory.grow from wasm: an absorbing site (a refusal returns -1, which is
;; correct handling; the following assertions may then legitimately differ).
(module
  (memory (export "memory") 1 8)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
)
(assert_return (invoke "grow" (i32.const 1)) (i32.const 1))
(assert_return (invoke "grow" (i32.const 2)) (i32.const 2))
(assert_return (invoke "size") (i32.const 4))
(invoke "poke" (i32.const 200000) (i32.const 77))
(assert_return (invoke "peek" (i32.const 200000)) (i32.const 77))
(assert_return (invoke "grow" (i32.const 10)) (i32.const -1))
