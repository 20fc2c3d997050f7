;; oomfuzz: allocator=pooling total_memories=1 total_core_instances=3
;; An exhausted pool: the second memory finds no free slot
;; (PoolConcurrencyLimitError, asserted with assert_unlinkable), and the
;; failed instantiation must give back its instance count.
(module $first (memory 1) (func (export "f") (result i32) (i32.const 1)))
(assert_unlinkable (module (memory 1)) "maximum concurrent limit")
(module $no_memory (func (export "g") (result i32) (i32.const 2)))
(assert_return (invoke $first "f") (i32.const 1))
(assert_return (invoke $no_memory "g") (i32.const 2))
