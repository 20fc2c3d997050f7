"""The long-lived form: state built fresh for each injection, failed inside a step, then kept.

A :class:`Lifecycle` is a function under test made of three parts::

    oomfuzz.Lifecycle(setup, steps, teardown)
    # setup() -> state          builds what the test uses (a host, its stores...)
    # steps: [step(state), ...]  operations on that state; each returns comparable data
    # teardown(state)            releases it

Called (by any ``OomTest``, the ``oom`` marker or a ``.py`` scenario), it
runs ``setup``, every step and ``teardown`` on one fresh state and returns
the steps' results. Because the whole life of the state is inside the run,
the sweep injects at every allocation of it: one-time setup that a
long-lived object does lazily on first use is failed too, not only run in a
dry run. When a step fails after an injected refusal, the run goes on with
the *same* state, fault-free (a fresh count-only hook is installed on top of
the sweep's): the failed step is retried, the later steps run, then
``teardown``; if any of them raises, or their results differ from the
fault-free run's, the run reports a ``post_oom_failure`` ("long-lived form:
..."), which the :class:`~oomfuzz.checks.LongLivedState` check turns into a
finding. Left-over state (a registry entry, a quota counter, a cache entry,
a pooled store with a dead instance) and broken one-time setup (a shared
linker saved before its functions were defined) both show there. Then the
step's original exception is re-raised, so the outcome checks classify the
injected run as usual (an ``OutOfMemory`` reaching the caller is handled).

Invariants:
- A step is an operation whose failure by OOM must leave the state as it
  was (what a host promises its callers: a plugin load, a call, a request):
  each step runs inside ``oomfuzz.operation(name)`` (so the state snapshots
  registered with ``oomfuzz.state``/``oomfuzz.track`` are compared around a
  failed step: ``not_atomic``), and retrying it after the failure must give
  the fault-free result. ``atomic_steps=False`` keeps the retry and drops the
  snapshot comparison (the ``oom`` marker's test body, which may make several
  operations).
- ``setup`` failing (injected) propagates unchanged: there is no state to
  keep. ``teardown`` failing after an injection is retried fault-free (a
  second failure is a finding). After a failure that was not injected in
  that step, ``teardown`` still runs, inside ``oomfuzz.cleanup()`` (it may
  allocate after an OOM), and the failure propagates.
- The continuation's results are compared only when every fault-free run of
  this lifecycle gave the same results (like the post-OOM check); its
  exceptions are always findings.
- ``check_rerun`` (the ``oom`` marker's test body): the first fault-free run
  re-runs its steps once more on the same state, under an uncounted
  fault-free hook; if that raises or differs, the steps are not re-runnable,
  so retrying a failed one proves nothing: the continuation then only tears
  down, and ``no_retry`` says why (the plugin warns).
- The continuation's exceptions are formatted and their frames cleared: a
  traceback must not keep the state alive and fake a leak.
- Outside a sweep (no injector installed) a ``Lifecycle`` just runs.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from oomfuzz.checks import FailureClass, describe_exc, exception_chain
from oomfuzz.inject import Injector, cleanup
from oomfuzz.runstate import operation
from wasmrt.alloc import current_hook

__all__ = ["FORM_FRESH", "FORM_LONG_LIVED", "Lifecycle", "Step", "as_step"]

S = TypeVar("S")

FORM_LONG_LIVED = "long-lived"
FORM_FRESH = "fresh"


@dataclass(frozen=True, slots=True)
class Step(Generic[S]):
    """One named operation on the lifecycle's state."""

    name: str
    fn: Callable[[S], object]

    def __call__(self, state: S) -> object:
        return self.fn(state)


def as_step(s: Step[S] | Callable[[S], object]) -> Step[S]:
    """``s`` as a :class:`Step` (a plain function is named by its ``__name__``)."""
    if isinstance(s, Step):
        return s
    return Step(getattr(s, "__name__", None) or repr(s), s)


def _injector() -> Injector | None:
    hook = current_hook()
    return hook if isinstance(hook, Injector) else None


def _refused(inj: Injector | None) -> int:
    return 0 if inj is None else len(inj.injected)


def _forget(exc: BaseException) -> str:
    """Describe ``exc`` and clear its frames (they may hold the state)."""
    text = describe_exc(exc)
    for e in exception_chain(exc):
        tb = e.__traceback__
        if tb is not None:
            traceback.clear_frames(tb)
            e.__traceback__ = None
    return text


class Lifecycle(Generic[S]):
    """``setup`` → ``steps`` → ``teardown`` on one fresh state per run (see the module doc)."""

    form = FORM_LONG_LIVED

    def __init__(
        self,
        setup: Callable[[], S],
        steps: Sequence[Step[S] | Callable[[S], object]],
        teardown: Callable[[S], object] | None = None,
        *,
        label: str | None = None,
        atomic_steps: bool = True,
        check_rerun: bool = False,
    ) -> None:
        if not steps:
            raise ValueError("a Lifecycle needs at least one step")
        self.setup = setup
        self.steps: list[Step[S]] = [as_step(s) for s in steps]
        self.teardown = teardown
        self.atomic_steps = atomic_steps
        name = label or getattr(setup, "__qualname__", None) or "lifecycle"
        #: ``OomTest`` labels the sweep with this: every finding names the form.
        self.__qualname__ = f"{name} [{self.form} form]"
        #: The steps' results in the first fault-free run (``None`` until one completed).
        self.baseline: list[object] | None = None
        self.deterministic = True
        self.check_rerun = check_rerun
        #: Why retrying a failed step is not judged ("" while it is).
        self.no_retry = ""

    # -- one run -------------------------------------------------------------------

    def __call__(self) -> list[object]:
        inj = _injector()
        state = self.setup()
        results: list[object] = []
        for i, step in enumerate(self.steps):
            refused = _refused(inj)
            try:
                with self._operation(step):
                    results.append(step(state))
            except BaseException:
                if inj is not None and _refused(inj) > refused:
                    self._continue(inj, state, i)
                else:
                    self._teardown_after_failure(state)
                raise
        first_clean = inj is not None and inj.mode == "count" and not inj.injected
        if first_clean and self.check_rerun and self.baseline is None:
            assert inj is not None
            self._calibrate(inj, state, results)
        self._finish(inj, state)
        if first_clean:
            self._learn(results)
        return results

    def _calibrate(self, inj: Injector, state: S, results: list[object]) -> None:
        """Re-run the steps once on the same state, fault-free and uncounted: if that
        fails or differs, the steps are not re-runnable and a retry proves nothing."""
        with self._fault_free(inj):
            for step, expected in zip(self.steps, results, strict=True):
                try:
                    again = step(state)
                except KeyboardInterrupt:
                    raise
                except BaseException as e:  # noqa: BLE001 - recorded: the retry check goes off
                    self.no_retry = f"re-running step {step.name!r} raised {_forget(e)}"
                    return
                if again != expected:
                    self.no_retry = (
                        f"re-running step {step.name!r} gave {_short(again)}, "
                        f"not {_short(expected)}"
                    )
                    return

    def _operation(self, step: Step[S]) -> contextlib.AbstractContextManager[None]:
        return operation(f"step {step.name!r}") if self.atomic_steps else contextlib.nullcontext()

    def _finish(self, inj: Injector | None, state: S) -> None:
        if self.teardown is None:
            return
        refused = _refused(inj)
        try:
            self.teardown(state)
        except BaseException:
            if inj is not None and _refused(inj) > refused:
                self._retry_teardown(inj, state)
            raise

    def _teardown_after_failure(self, state: S) -> None:
        if self.teardown is not None:
            with cleanup():
                self.teardown(state)

    def _learn(self, results: list[object]) -> None:
        if self.baseline is None:
            self.baseline = list(results)
        elif results != self.baseline:
            self.deterministic = False

    # -- the fault-free continuation ----------------------------------------------

    @contextlib.contextmanager
    def _fault_free(self, inj: Injector) -> Iterator[None]:
        with Injector(mode="count", stack_depth=inj.stack_depth).installed():
            yield

    def _report(self, inj: Injector, detail: str) -> None:
        inj.reported.append((FailureClass.POST_OOM_FAILURE.value, f"{self.form} form: {detail}"))

    def _continue(self, inj: Injector, state: S, failed: int) -> None:
        """After step ``failed`` failed on an injection: retry it, run the rest, tear down."""
        what = f"after the OOM in step {failed + 1} {self.steps[failed].name!r}"
        got: list[object] = []
        problem = ""
        rest = [] if self.no_retry else self.steps[failed:]
        with self._fault_free(inj):
            for step in rest:
                try:
                    got.append(step(state))
                except KeyboardInterrupt:
                    raise
                except BaseException as e:  # noqa: BLE001 - reported as a finding below
                    again = "retrying it" if step is self.steps[failed] else f"step {step.name!r}"
                    problem = f"{what}, the same state fault-free: {again} raised {_forget(e)}"
                    break
            if self.teardown is not None:
                try:
                    self.teardown(state)
                except KeyboardInterrupt:
                    raise
                except BaseException as e:  # noqa: BLE001 - reported as a finding below
                    problem = problem or f"{what}, teardown of the same state raised {_forget(e)}"
        if problem:
            self._report(inj, problem)
            return
        expected = self.baseline[failed:] if self.baseline is not None else None
        if expected is not None and rest and self.deterministic and got != expected:
            names = [s.name for s in self.steps[failed:]]
            diffs = [
                f"step {n!r} gave {_short(g)}, fault-free run gave {_short(x)}"
                for n, g, x in zip(names, got, expected, strict=True)
                if g != x
            ]
            self._report(inj, f"{what}, the same state fault-free: {'; '.join(diffs)}")

    def _retry_teardown(self, inj: Injector, state: S) -> None:
        assert self.teardown is not None
        with self._fault_free(inj):
            try:
                self.teardown(state)
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001 - reported as a finding
                self._report(
                    inj, f"teardown failed on the OOM, and retrying it raised {_forget(e)}"
                )


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
