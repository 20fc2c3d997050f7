;; A guest that never terminates: stop it with Ctrl-C (wasmrt run), fuel or an epoch deadline.
(module
  (func (export "spin") (loop $forever (br $forever))))
