;; oomfuzz: limits.memory_size=65536 limits.trap_on_grow_failure=true
;; StoreLimitsBuilder.trap_on_grow_failure: a refused memory.grow aborts the
;; call with an error instead of returning -1.
(module
  (memory 1)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "zero") (result i32) (memory.grow (i32.const 0))))
(assert_return (invoke "zero") (i32.const 1))
