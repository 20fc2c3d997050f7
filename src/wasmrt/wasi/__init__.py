"""``wasmrt.wasi``: WASI preview 1 (``wasi_snapshot_preview1``) for wasmrt.

wasmtime-py's API: ``WasiConfig`` (with ``DirPerms``/``FilePerms``),
``Store.set_wasi(config)``, ``Linker.define_wasi()``; ``proc_exit`` raises
``ExitTrap`` with ``.code``.

Invariants:
- Importing this package registers its provider with the runtime
  (``wasmrt.runtime.wasi_hook``): the runtime never imports it.
- Every allocation made for the guest (descriptor table entries, read
  buffers, directory listings, path strings, iovec lists) asks
  ``wasmrt.alloc.try_alloc(…, AllocKind.WASI)`` first. A refusal raises
  ``OutOfMemory`` out of the WASI call to the embedder — never an errno to
  the guest — and leaves the descriptor table as it was: the policy is the
  same as for every other runtime allocation, so a harness sees one
  outcome for every site.
- Guest paths are confined to the preopened directory they start from
  (``sandbox``).
"""

from wasmrt.runtime.wasi_hook import register
from wasmrt.wasi.config import DirPerms, FilePerms, WasiConfig
from wasmrt.wasi.context import WasiCtx
from wasmrt.wasi.errno import Errno
from wasmrt.wasi.linking import Provider, define_wasi
from wasmrt.wasi.preview1 import FUNCTIONS, MODULE

__all__ = [
    "FUNCTIONS",
    "MODULE",
    "DirPerms",
    "Errno",
    "FilePerms",
    "WasiConfig",
    "WasiCtx",
    "define_wasi",
]

register(Provider())
