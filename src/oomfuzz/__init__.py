"""oomfuzz: the out-of-memory fault-injection harness for wasmrt.

Public API: ``OomTest`` (Wasmtime's OomTest semantics with stricter checks),
``Injector`` (the ``try_alloc`` hook), ``FaultTarget``/``TARGETS`` (targeted
fault plans: ``OomTest(target=TARGETS["guest"])``), ``FailureClass``/``CheckPolicy``
(what an iteration must satisfy), ``ProgramResult`` (a guest program's run) and
the report types; for testing an embedding:
``state``/``track``/``operation`` (what a failed operation must leave
unchanged, what must not leak), ``cleanup`` (benign regions that may
allocate after an OOM), ``Lifecycle``/``Step`` (the long-lived form) and
``Probe`` (counters and weak references the checks compare). The ``oomfuzz`` command line
(``oomfuzz.cli``) sweeps scenarios (``oomfuzz.scenario``) through the
application layer (``oomfuzz.sweep``); ``docs/internals.md`` maps the modules.

Invariant: importing oomfuzz imports the user API (checks, plan, engines,
``OomTest``) and wasmrt, never the faces (cli, plugin, baseline, campaign).
"""

from oomfuzz.checks import CheckPolicy, FailureClass, Finding
from oomfuzz.guest import ProgramResult
from oomfuzz.inject import AllocationAfterOom, AllocRecord, Injector, Site, cleanup
from oomfuzz.lifecycle import Lifecycle, Step
from oomfuzz.oomtest import (
    DryRunError,
    Iteration,
    OomTest,
    OomTestFailure,
    OomTestResult,
    Probe,
)
from oomfuzz.runstate import Registration, operation, state, track
from oomfuzz.target import TARGETS, FaultTarget, parse_target

__all__ = [
    "AllocRecord",
    "AllocationAfterOom",
    "CheckPolicy",
    "DryRunError",
    "FailureClass",
    "Finding",
    "Injector",
    "Iteration",
    "Lifecycle",
    "OomTest",
    "OomTestFailure",
    "OomTestResult",
    "ProgramResult",
    "Site",
    "TARGETS",
    "FaultTarget",
    "parse_target",
    "Registration",
    "Probe",
    "Step",
    "cleanup",
    "operation",
    "state",
    "track",
]
