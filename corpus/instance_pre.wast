;; oomfuzz: instantiate=pre
;; Linker.instantiate_pre + InstancePre.instantiate (instance_pre.rs), several times.
(module $a (func (export "one") (result i32) (i32.const 1)))
(register "a" $a)
(module $b
  (import "a" "one" (func $one (result i32)))
  (memory 1)
  (func (export "two") (result i32) (i32.add (call $one) (call $one))))
(module $c
  (import "a" "one" (func $one (result i32)))
  (func (export "three") (result i32) (i32.add (call $one) (i32.const 2))))
(assert_return (invoke $b "two") (i32.const 2))
(assert_return (invoke $c "three") (i32.const 3))
