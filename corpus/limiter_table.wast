;; oomfuzz: limits.table_elements=5
;; Store limits refuse table growth (table.grow -1, host grow -1) and big tables.
(module
  (import "oomhost" "grow_table" (func $hgrow (param i32) (result i32)))
  (table (export "table") 2 funcref)
  (func (export "grow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0)))
  (func (export "hgrow") (param i32) (result i32) (call $hgrow (local.get 0))))
(assert_return (invoke "grow" (i32.const 3)) (i32.const 2))
(assert_return (invoke "grow" (i32.const 1)) (i32.const -1))
(assert_return (invoke "hgrow" (i32.const 1)) (i32.const -1))
(assert_unlinkable (module (table 6 funcref)) "table minimum size")
