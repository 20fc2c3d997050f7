"""The allocation hook oomfuzz installs through ``wasmrt.alloc.install_hook``.

An :class:`Injector` is one run's fault plan plus what the run did. It counts
allocations, refuses the ones its plan names by raising
``wasmrt.OutOfMemory(size)``, and records allocation sites.

Invariants:
- Allocations are numbered from 0 in the order ``try_alloc`` is called;
  "index N" always means the allocation that had N allocations before it
  (Wasmtime's ``OomOnAlloc{counter: N}``).
- With a ``target`` (:class:`oomfuzz.target.FaultTarget`) the plan applies
  to the selected allocation points only: they are numbered from 0 among
  themselves (``selected``; ``fail_at`` is such a number, and
  ``AllocRecord.point`` records it), every other allocation is granted and
  counted in ``count`` only. Without a target every allocation is a point
  and ``point == index``.
- Plans: ``count`` never refuses; ``transient`` refuses allocation N only;
  ``persistent`` refuses N and every later one; ``random`` refuses each
  allocation with probability ``probability`` drawn from ``random.Random(seed)``
  (so a seed reproduces the same refusals for the same allocation sequence).
- The run is *after OOM* from the first refused allocation at a
  non-absorbing site on (an absorbed refusal — ``memory.grow`` returning -1 —
  is handled by design, so later allocations are legitimate). Every
  allocation attempted after OOM is recorded in ``after_oom`` unless
  ``allow_alloc_after_oom``; with ``panic_on_alloc_after_oom`` it also raises
  :class:`AllocationAfterOom` (a ``BaseException``, like Wasmtime's panic, so
  ``except Exception`` in the code under test cannot swallow it).
  What such an allocation gets follows the plan (transient: granted,
  persistent: refused), or is granted when ``alloc_succeeds_after_oom``.
- Benign regions (:func:`cleanup`, SQLite's benign-malloc and SpiderMonkey's
  OOM-unsafe regions): an allocation after OOM made while a ``with
  cleanup():`` block runs (in the same thread or task, at any call depth) is
  granted and counted in ``benign``, never in ``after_oom``; allocations
  after OOM outside every such block stay findings. Before the OOM a region
  changes nothing (its allocations are counted and may be refused), so
  cleanup code on the fault-free path is still swept.
- Site capture is cheap: a walk over ``sys._getframe`` to the first frame
  outside ``wasmrt/alloc.py`` plus ``stack_depth`` caller frames as
  (file, line, function) triples. A full formatted traceback is built only
  for refused (injected) allocations.
- Records never hold frames or objects of the code under test, so keeping
  them cannot keep a store alive.
- Retry and continue (``retry``): the scenario calls :meth:`Injector.begin_retry`
  at the step boundary an injected ``OutOfMemory`` reached; from then on the
  injector refuses nothing (persistent and random plans too) and nothing is
  "after OOM": the run retries the failed step fault-free and continues,
  and the scenario runner records how the continuation went (``continued``,
  ``continued_error``) before it re-raises that ``OutOfMemory``
  (``retry_oom``, held only until then). ``in_guest`` says whether the first
  refusal happened with wasm code on the stack (the failed step may then
  have run guest code with side effects).
- ``reuse`` asks the scenario to run on the objects (engine, compiled
  modules) the previous run kept; the injector only carries the request.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from oomfuzz.tracetext import stack_text
from wasmrt.alloc import AllocKind, install_hook
from wasmrt.errors import OutOfMemory
from wasmrt.vm.backtrace import OWNER_KEY

if TYPE_CHECKING:
    from oomfuzz.target import FaultTarget

__all__ = [
    "AllocRecord",
    "AllocationAfterOom",
    "InjectMode",
    "Injector",
    "Site",
    "cleanup",
    "in_cleanup",
]

InjectMode = Literal["count", "transient", "persistent", "random"]
INJECT_MODES: tuple[str, ...] = ("count", "transient", "persistent", "random")

_ALLOC_SUFFIX = os.path.join("wasmrt", "alloc.py")
_SELF_FILE = os.path.normcase(os.path.abspath(__file__))


@dataclass(frozen=True, slots=True)
class Site:
    """Where an allocation was requested: the first frame outside ``wasmrt/alloc.py``."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "function": self.function}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Site:
        return cls(str(d["file"]), int(d["line"]), str(d["function"]))  # type: ignore[call-overload]


UNKNOWN_SITE = Site("<unknown>", 0, "<unknown>")


@dataclass(slots=True)
class AllocRecord:
    """One allocation request as the hook saw it."""

    index: int
    size: int
    kind: str
    absorbing: bool
    site: Site
    stack: tuple[Site, ...] = ()
    injected: bool = False
    after_oom: bool = False
    traceback: str = ""
    point: int = -1

    def describe(self) -> str:
        flag = " (absorbing)" if self.absorbing else ""
        point = f" (selected point {self.point})" if self.point not in (-1, self.index) else ""
        return f"#{self.index}{point} {self.kind} {self.size} bytes{flag} at {self.site}"

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "size": self.size,
            "kind": self.kind,
            "absorbing": self.absorbing,
            "site": self.site.to_dict(),
            "stack": [s.to_dict() for s in self.stack],
            "injected": self.injected,
            "after_oom": self.after_oom,
            "traceback": self.traceback,
            "point": self.point,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> AllocRecord:
        return cls(
            index=int(d["index"]),  # type: ignore[call-overload]
            size=int(d["size"]),  # type: ignore[call-overload]
            kind=str(d["kind"]),
            absorbing=bool(d["absorbing"]),
            site=Site.from_dict(d["site"]),  # type: ignore[arg-type]
            stack=tuple(Site.from_dict(s) for s in d.get("stack", ())),  # type: ignore[attr-defined]
            injected=bool(d.get("injected", False)),
            after_oom=bool(d.get("after_oom", False)),
            traceback=str(d.get("traceback", "")),
            point=int(d.get("point", -1)),  # type: ignore[call-overload]
        )


class AllocationAfterOom(BaseException):  # noqa: N818 - mirrors Wasmtime's panic text
    """Raised (in panic mode) when code allocates after an injected OOM.

    A ``BaseException`` on purpose: it models Wasmtime's panic, which the code
    under test must not be able to catch and continue from.
    """

    def __init__(self, record: AllocRecord) -> None:
        super().__init__(
            f"OOM test attempted to allocate after OOM: {record.describe()} "
            "(set allow_alloc_after_oom=True if this is expected)"
        )
        self.record = record


#: How many ``cleanup()`` blocks enclose the running code (per thread / asyncio task).
_CLEANUP_DEPTH: ContextVar[int] = ContextVar("oomfuzz_cleanup_depth", default=0)


@contextmanager
def cleanup() -> Iterator[None]:
    """Mark the block as cleanup/rollback code that may allocate after an OOM.

    Inside it, allocations made after the injected OOM are granted and not
    reported as ``alloc_after_oom`` (they are counted in ``Injector.benign``);
    everywhere else strict mode stays strict. Use it around a ``finally`` or
    ``except`` block that must release or roll back after a failure, not
    around a retry: a retry that allocates after an OOM is a real finding.
    Nested blocks and calls into wasm from the block are covered too.
    """
    token = _CLEANUP_DEPTH.set(_CLEANUP_DEPTH.get() + 1)
    try:
        yield
    finally:
        _CLEANUP_DEPTH.reset(token)


def in_cleanup() -> bool:
    """Is the running code inside a ``cleanup()`` block?"""
    return _CLEANUP_DEPTH.get() > 0


@functools.lru_cache(maxsize=4096)
def short_path(filename: str) -> str:
    """A stable, readable path: relative to ``src/``, site-packages or the cwd."""
    norm = filename.replace(os.sep, "/")
    for marker in ("/src/", "/site-packages/", "/lib/python3"):
        if marker in norm:
            tail = norm.rsplit(marker, 1)[1]
            if marker == "/lib/python3":
                tail = tail.split("/", 1)[-1]
            return tail
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return norm
    return norm if rel.startswith("..") else rel.replace(os.sep, "/")


@functools.lru_cache(maxsize=4096)
def _is_internal(filename: str) -> bool:
    if filename.endswith(_ALLOC_SUFFIX) or filename.endswith("wasmrt/alloc.py"):
        return True
    return os.path.normcase(os.path.abspath(filename)) == _SELF_FILE


def _site_of(frame: FrameType) -> Site:
    code = frame.f_code
    return Site(short_path(code.co_filename), frame.f_lineno, code.co_qualname)


def capture_site(
    stack_depth: int, skip: int = 1
) -> tuple[Site, tuple[Site, ...], FrameType | None]:
    """Return (site, caller stack, site frame) for the current allocation."""
    frame: FrameType | None = sys._getframe(skip + 1)
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return UNKNOWN_SITE, (), None
    site = _site_of(frame)
    stack: list[Site] = []
    up = frame.f_back
    while up is not None and len(stack) < stack_depth:
        stack.append(_site_of(up))
        up = up.f_back
    return site, tuple(stack), frame


def _guest_running(frame: FrameType | None) -> bool:
    """Is wasm code (a generated function, ``wasmrt.vm.backtrace``'s contract) on the stack?"""
    while frame is not None:
        if OWNER_KEY in frame.f_globals:
            return True
        frame = frame.f_back
    return False


@dataclass(eq=False)
class Injector:
    """A fault plan for one run, and the record of what the run allocated.

    Call it as the hook (it implements ``AllocHook``) or use :meth:`installed`.
    """

    mode: InjectMode = "count"
    fail_at: int = -1
    probability: float = 0.0
    seed: int = 0
    record_all: bool = False
    stack_depth: int = 6
    allow_alloc_after_oom: bool = False
    alloc_succeeds_after_oom: bool = False
    panic_on_alloc_after_oom: bool = False
    target: FaultTarget | None = None
    retry: bool = False
    reuse: bool = False
    #: Build every module for real (no ``oomfuzz.reuse`` renewal): the tracemalloc
    #: check measures the code under test as an embedder runs it.
    real_builds: bool = False

    count: int = field(default=0, init=False)
    #: Allocation points the plan applies to so far (== ``count`` without a target).
    selected: int = field(default=0, init=False)
    records: list[AllocRecord] = field(default_factory=list, init=False)
    injected: list[AllocRecord] = field(default_factory=list, init=False)
    after_oom: list[AllocRecord] = field(default_factory=list, init=False)
    oom_raised: AllocRecord | None = field(default=None, init=False)
    #: Allocations after OOM inside ``cleanup()`` blocks (granted, not findings).
    benign: int = field(default=0, init=False)
    #: Problems that code driving the run found on the run's behalf (the long-lived
    #: form's fault-free continuation, :mod:`oomfuzz.lifecycle`): (class, detail).
    reported: list[tuple[str, str]] = field(default_factory=list, init=False)
    #: The step retried fault-free after the OOM (``""``: no retry happened), the
    #: ``OutOfMemory`` it caught (until the run re-raises it) and the continuation:
    #: its results, and the error that ended it (``""``: none) and whether that
    #: error is a wasm-level outcome (a trap, a failed expectation).
    retried: str = field(default="", init=False)
    retry_oom: BaseException | None = field(default=None, init=False)
    continued: object = field(default=None, init=False)
    continued_error: str = field(default="", init=False)
    continued_wasm_level: bool = field(default=False, init=False)
    in_guest: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.mode not in INJECT_MODES:
            raise ValueError(
                f"unknown injection mode {self.mode!r}; expected one of {INJECT_MODES}"
            )
        if self.mode in ("transient", "persistent") and self.fail_at < 0:
            raise ValueError(f"mode {self.mode!r} needs fail_at >= 0")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        self._rng = random.Random(self.seed)
        #: The recorded allocation :meth:`replay` is counting (its site is the site).
        self._replaying: AllocRecord | None = None

    #: Whether ``__call__`` may decide the common case itself: false for a subclass
    #: that overrides how points are numbered or refused (the fork engine's injector).
    _decides_inline: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._decides_inline = (
            cls._planned_failure is Injector._planned_failure and cls._point is Injector._point
        )

    # -- the hook ---------------------------------------------------------

    def _planned_failure(self, index: int) -> bool:
        if self.retried:
            return False
        mode = self.mode
        if mode == "transient":
            return index == self.fail_at
        if mode == "persistent":
            return index >= self.fail_at
        if mode == "random":
            return self._rng.random() < self.probability
        return False

    def _point(self, kind_name: str, absorbing: bool, site: Site | None) -> int:
        """This allocation's number among the target's points, or -1 if not selected."""
        target = self.target
        if target is not None and not target.matches(kind_name, absorbing, site):
            return -1
        point = self.selected
        self.selected = point + 1
        return point

    def __call__(self, size: int, kind: AllocKind, absorbing: bool) -> None:
        index = self.count
        self.count = index + 1
        if self._decides_inline and self.target is None and not self.record_all:
            # The common case, decided without building anything: every allocation
            # is a point, nothing is recorded, and this one is neither refused nor
            # after the OOM (what _point, _planned_failure and the rest would find).
            point = self.selected
            if self.retried:
                self.selected = point + 1
                return
            mode = self.mode
            if self.oom_raised is None and (
                mode == "count"
                or (mode == "transient" and point != self.fail_at)
                or (mode == "persistent" and point < self.fail_at)
            ):
                self.selected = point + 1
                return
        self._judge_allocation(index, size, kind, absorbing)

    def _judge_allocation(self, index: int, size: int, kind: AllocKind, absorbing: bool) -> None:
        kind_name = kind.value if isinstance(kind, AllocKind) else str(kind)
        captured = None
        if self.target is not None and self.target.needs_site:
            captured = self._capture()
        point = self._point(kind_name, absorbing, captured[0] if captured else None)
        fail = point >= 0 and self._planned_failure(point)
        after = self.oom_raised is not None and not self.retried
        if after and _CLEANUP_DEPTH.get():
            self.benign += 1
            return
        if not (fail or after or self.record_all):
            return
        site, stack, frame = captured or self._capture()
        rec = AllocRecord(index, int(size), kind_name, bool(absorbing), site, stack, point=point)
        if self.record_all:
            self.records.append(rec)
        if after:
            rec.after_oom = True
            if not self.allow_alloc_after_oom:
                self.after_oom.append(rec)
                if self.panic_on_alloc_after_oom:
                    rec.traceback = stack_text(frame)
                    raise AllocationAfterOom(rec)
            if self.alloc_succeeds_after_oom:
                fail = False
        if not fail:
            return
        rec.injected = True
        rec.traceback = stack_text(frame)
        self.injected.append(rec)
        if not absorbing and self.oom_raised is None:
            self.oom_raised = rec
            if self.retry:
                self.in_guest = _guest_running(frame)
        raise OutOfMemory(size)

    def _capture(self) -> tuple[Site, tuple[Site, ...], FrameType | None]:
        rec = self._replaying
        if rec is not None:
            return rec.site, rec.stack, None
        return capture_site(self.stack_depth, skip=2)

    # -- replaying recorded allocations (oomfuzz.reuse) ------------------------

    def refuses_within(self, records: Sequence[AllocRecord]) -> bool:
        """Could the plan refuse (or report) any of ``records`` were they the next
        allocations? Conservative: a random plan, or a run already after OOM, says yes."""
        if self.mode == "count":
            return self.oom_raised is not None
        if self.mode == "random" or self.oom_raised is not None:
            return True
        target = self.target
        points = sum(1 for r in records if target is None or target.matches_record(r))
        last = self.selected + points
        if self.mode == "transient":
            return self.selected <= self.fail_at < last
        return self.fail_at < last

    def replay(self, records: Sequence[AllocRecord]) -> None:
        """Count ``records`` as this run's next allocations, as if the code that made
        them ran again (their recorded sites stand for the stack walk); only for
        records :meth:`refuses_within` clears, so nothing is refused."""
        for rec in records:
            self._replaying = rec
            try:
                self(rec.size, rec.kind, rec.absorbing)  # type: ignore[arg-type]
            finally:
                self._replaying = None

    # -- queries ------------------------------------------------------------

    def begin_retry(self, step: str, oom: BaseException) -> None:
        """``oom`` reached ``step``'s boundary: from now on refuse nothing (see the module doc)."""
        self.retried = step or "<step>"
        # Its traceback's frames (the failed attempt's, whose locals hold the run's
        # objects) must not outlive the attempt: the continuation may take long, and a
        # frame kept alive keeps its store alive for the leak check.
        if oom.__traceback__ is not None:
            traceback.clear_frames(oom.__traceback__)
        self.retry_oom = oom.with_traceback(None)

    @property
    def first_injection(self) -> AllocRecord | None:
        return self.injected[0] if self.injected else None

    @property
    def injected_non_absorbing(self) -> bool:
        return self.oom_raised is not None

    @contextmanager
    def installed(self) -> Iterator[Injector]:
        """Install this injector as the ``try_alloc`` hook for the current context."""
        with install_hook(self):
            yield self
