"""oomfuzz: the out-of-memory fault-injection harness for wasmrt.

Public API: ``OomTest`` (Wasmtime's OomTest semantics with stricter checks),
``Injector`` (the ``try_alloc`` hook), ``FailureClass``/``CheckPolicy`` (what
an iteration must satisfy) and the report types. The ``oomfuzz`` command line
(``oomfuzz.cli``) sweeps WAST/Python scenarios (``oomfuzz.scenario``).

Invariant: importing oomfuzz imports only ``wasmrt.alloc``, ``wasmrt.errors``
and ``wasmrt.trap`` from the runtime; scenarios import the public API lazily.
"""

from oomfuzz.checks import CheckPolicy, FailureClass, Finding
from oomfuzz.inject import AllocationAfterOom, AllocRecord, Injector, Site
from oomfuzz.oomtest import (
    DryRunError,
    Iteration,
    OomTest,
    OomTestFailure,
    OomTestResult,
)

__all__ = [
    "AllocRecord",
    "AllocationAfterOom",
    "CheckPolicy",
    "DryRunError",
    "FailureClass",
    "Finding",
    "Injector",
    "Iteration",
    "OomTest",
    "OomTestFailure",
    "OomTestResult",
    "Site",
]
