;; Module creation failures that are not OOM (decode/validate errors) must stay
;; ordinary WasmtimeErrors under injection; a valid module after them still works.
(assert_invalid (module (func (result i32) (i64.const 0))) "type mismatch")
(assert_malformed (module quote "(func (i32.const))") "unexpected token")
(assert_malformed (module binary "\00asm\02\00\00\00") "unknown binary version")
(module (func (export "ok") (result i32) (i32.const 1)))
(assert_return (invoke "ok") (i32.const 1))
