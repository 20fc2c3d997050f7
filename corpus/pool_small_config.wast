;; oomfuzz: allocator=pooling max_memory_size=131072 table_elements=4
;; Pool limits clamp growth: memory.grow/table.grow past them return -1, and a
;; module whose minimum does not fit is rejected at Module creation.
(module
  (memory 1)
  (table 2 funcref)
  (func (export "mgrow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "tgrow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0))))
(assert_return (invoke "mgrow" (i32.const 1)) (i32.const 1))
(assert_return (invoke "mgrow" (i32.const 1)) (i32.const -1))
(assert_return (invoke "tgrow" (i32.const 2)) (i32.const 2))
(assert_return (invoke "tgrow" (i32.const 1)) (i32.const -1))
(assert_invalid (module (memory 3)) "exceeds the limit")
