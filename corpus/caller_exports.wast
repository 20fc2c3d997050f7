;; A host function looks up the calling instance's exports through Caller.get
;; (caller.rs): memory, table, global, callback.
(module
  (import "oomhost" "exports_count" (func $count (result i32)))
  (import "oomhost" "global_get" (func $gget (result i64)))
  (memory (export "memory") 1)
  (table (export "table") 1 funcref)
  (global (export "global") (mut i64) (i64.const 99))
  (func (export "callback") (param i32) (result i32) (local.get 0))
  (func (export "run") (result i32) (call $count))
  (func (export "read_global") (result i64) (call $gget))
)
(assert_return (invoke "run") (i32.const 4))
(assert_return (invoke "read_global") (i64.const 99))
