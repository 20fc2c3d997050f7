;; Store, Engine and Module creation, and instantiating an empty module.
;; Covers Wasmtime's store.rs / engine.rs / module.rs OOM tests.
(module)
(module $named)
(module (func (export "nop")))
(assert_return (invoke "nop"))
