;; A module whose exported function loops forever, even fault-free: the dry run
;; never ends (a setup error naming the remedy, `;; oomfuzz: fuel=N`).
(module
  (func $spin (export "spin") (loop $l (br $l))))
(invoke "spin")
