;; The decoder's less travelled paths: a name section with module, function and
;; local names (subsections 0, 1 and 2), element segments in the expression
;; encoding (active with ref.func/ref.null items, passive, declarative), and
;; table.init/elem.drop from those segments.
(module $named
  (type $t (func (param i32) (result i32)))
  (table $tab 4 funcref)
  (func $double (type $t) (param $x i32) (result i32)
    (local $tmp i32)
    (local.set $tmp (i32.add (local.get $x) (local.get $x)))
    (local.get $tmp))
  (func $inc (type $t) (param $y i32) (result i32) (i32.add (local.get $y) (i32.const 1)))
  (elem (i32.const 0) funcref (ref.func $double) (ref.null func))
  (elem $pass funcref (ref.func $inc) (ref.func $double))
  (elem declare funcref (ref.func $inc))
  (func (export "call") (param $i i32) (param $v i32) (result i32)
    (call_indirect $tab (type $t) (local.get $v) (local.get $i)))
  (func (export "init") (table.init $tab $pass (i32.const 2) (i32.const 0) (i32.const 2)))
  (func (export "drop") (elem.drop $pass))
  (func (export "is_null") (param $i i32) (result i32) (ref.is_null (table.get $tab (local.get $i)))))

(assert_return (invoke "call" (i32.const 0) (i32.const 21)) (i32.const 42))
(assert_return (invoke "is_null" (i32.const 1)) (i32.const 1))
(assert_trap (invoke "call" (i32.const 1) (i32.const 0)) "uninitialized element")
(invoke "init")
(assert_return (invoke "call" (i32.const 2) (i32.const 41)) (i32.const 42))
(assert_return (invoke "call" (i32.const 3) (i32.const 4)) (i32.const 8))
(invoke "drop")
(assert_trap (invoke "init") "out of bounds table access")
