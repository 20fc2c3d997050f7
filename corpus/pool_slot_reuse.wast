;; oomfuzz: allocator=pooling engine=shared total_memories=1 total_tables=1 total_core_instances=1
;; Wasmtime's pooling_allocator_memory_slot_leak_on_oom: one memory slot, one
;; table slot and one instance for the whole sweep (the engine is shared across
;; runs), so a slot leaked by any failed run makes every later run fail.
(module
  (memory 1)
  (table 2 funcref)
  (data (i32.const 0) "\2a")
  (func (export "first") (result i32) (i32.load8_u (i32.const 0))))
(assert_return (invoke "first") (i32.const 42))
