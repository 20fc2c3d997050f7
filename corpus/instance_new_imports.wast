;; oomfuzz: instantiate=instance
;; Instance(store, module, imports) with positional imports (instance.rs Instance::new),
;; then every export accessor.
(module $lib
  (memory (export "mem") 1)
  (global (export "g") i32 (i32.const 5))
  (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (table (export "tab") 1 funcref)
)
(register "lib" $lib)
(module $user
  (import "lib" "f" (func $f (param i32) (result i32)))
  (import "lib" "mem" (memory 1))
  (import "lib" "g" (global $g i32))
  (import "lib" "tab" (table 1 funcref))
  (func (export "run") (result i32) (call $f (global.get $g)))
)
(assert_return (invoke $user "run") (i32.const 6))
