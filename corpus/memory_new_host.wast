;; Memory::new from the host, called from inside wasm (memory.rs new).
(module
  (import "oomhost" "new_memory" (func $newmem (param i32) (result i32)))
  (func (export "make") (param i32) (result i32) (call $newmem (local.get 0)))
)
(assert_return (invoke "make" (i32.const 0)) (i32.const 0))
(assert_return (invoke "make" (i32.const 2)) (i32.const 2))
