;; oomfuzz: limits.memory_size=131072
;; Store limits refuse memory growth: wasm memory.grow returns -1, a host grow
;; fails (-1 here via oomhost), a memory whose minimum is too big cannot be created.
(module
  (import "oomhost" "grow_memory" (func $hgrow (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "hgrow") (param i32) (result i32) (call $hgrow (local.get 0))))
(assert_return (invoke "grow" (i32.const 1)) (i32.const 1))
(assert_return (invoke "grow" (i32.const 1)) (i32.const -1))
(assert_return (invoke "hgrow" (i32.const 1)) (i32.const -1))
(assert_unlinkable (module (memory 3)) "memory minimum size")
