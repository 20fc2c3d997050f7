;; A module exporting one of each extern kind; reading them through the API
;; (Wasmtime's module_read.rs and instance.rs get_export/get_func/get_global).
(module $m
  (memory (export "memory") 1)
  (table (export "table") 2 funcref)
  (global (export "g32") i32 (i32.const 42))
  (global (export "g64") (mut i64) (i64.const -7))
  (func (export "f") (result i32) (i32.const 1))
)
(assert_return (get "g32") (i32.const 42))
(assert_return (get $m "g64") (i64.const -7))
(assert_return (invoke "f") (i32.const 1))
