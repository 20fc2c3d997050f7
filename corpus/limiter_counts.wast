;; oomfuzz: limits.instances=2 limits.memories=2
;; Store instance/memory count limits: the third instantiation is refused with
;; "resource limit exceeded", and the refusal must leave no allocator state behind.
(module $a (memory 1))
(module $b (memory 1) (func (export "f") (result i32) (i32.const 2)))
(assert_unlinkable (module (func)) "instance count too high")
(assert_return (invoke $b "f") (i32.const 2))
