;; oomfuzz: fuel=2000
;; Fuel running out in the middle of a call (a trap), then more calls with what is left.
(module
  (func (export "spin") (param i32) (result i32)
    (local i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get 0)))
        (local.set 1 (i32.add (local.get 1) (i32.const 1)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br $l)))
    (local.get 1)))
(assert_return (invoke "spin" (i32.const 10)) (i32.const 10))
(assert_trap (invoke "spin" (i32.const 100000)) "all fuel consumed")
(assert_trap (invoke "spin" (i32.const 1)) "all fuel consumed")
