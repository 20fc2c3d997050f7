"""The plugins the examples load (WebAssembly text), and what they do.

``COUNTER``: ``bump()`` adds one to a global and logs it through ``host.log``;
``get()`` reads it; ``reset()`` sets it back to 0. ``KV``: ``put(k)`` stores
the 4-byte key ``k`` -> ``"v" + k`` through ``host.kv_put``; ``get(k)`` reads
it back into memory through ``host.kv_get`` and returns its length (-1 if
absent). Both export ``memory`` (one page) for the host's guest-memory I/O.
"""

COUNTER = """
(module
  (import "host" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (data (i32.const 0) "bump")
  (func (export "bump") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (call $log (i32.const 0) (i32.const 4))
    (global.get $n))
  (func (export "get") (result i32) (global.get $n))
  (func (export "reset") (global.set $n (i32.const 0))))
"""

KV = """
(module
  (import "host" "kv_put" (func $put (param i32 i32 i32 i32)))
  (import "host" "kv_get" (func $get (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "put") (param $k i32)
    (i32.store (i32.const 16) (local.get $k))
    (i32.store8 (i32.const 32) (i32.const 118))
    (i32.store (i32.const 33) (local.get $k))
    (call $put (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 5)))
  (func (export "get") (param $k i32) (result i32)
    (i32.store (i32.const 16) (local.get $k))
    (call $get (i32.const 16) (i32.const 4) (i32.const 64)))
  (func (export "reset")))
"""
