;; Custom sections: a run of small custom sections (one-byte size and name
;; length) decodes on the fast path, a section with a longer name or payload on
;; the general path; each is a module allocation.
(module binary
  "\00asm" "\01\00\00\00"
  "\00\04\01a\01\02"                      ;; custom "a", 2-byte payload
  "\00\03\01b\07"                         ;; custom "b", 1-byte payload
  "\01\04\01\60\00\00"                    ;; type section: (func)
  "\00\05\02cc\03\04"                     ;; custom "cc" after the type section
  "\03\02\01\00"                          ;; function section: one function
  "\07\05\01\01f\00\00"                   ;; export "f" = func 0
  "\0a\04\01\02\00\0b"                    ;; code: empty body
  "\00\05\01d\01\02\03"                   ;; custom "d" at the end
)
(invoke "f")
(assert_return (invoke "f"))
