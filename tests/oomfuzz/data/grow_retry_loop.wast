;; oomfuzz: mode=persistent allocator=ondemand
;; A guest that retries memory.grow until it succeeds. Fault-free, the first grow
;; succeeds; once the grow's allocation is refused persistently (absorbed: -1),
;; every retry is refused too and the loop never ends. No fuel: nothing stops it
;; but the harness's deadline. (Test data, not corpus: it is meant to time out.)
(module
  (memory 1)
  (func $grow_until_ok (export "grow_until_ok") (result i32)
    (loop $again
      (br_if $again (i32.eq (memory.grow (i32.const 1)) (i32.const -1))))
    (memory.size)))
(assert_return (invoke "grow_until_ok") (i32.const 2))
