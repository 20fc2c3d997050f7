"""A Dask ``distributed`` cluster as a sweep executor (``--cluster tcp://HOST:PORT``).

:class:`DaskCluster` is one more :class:`oomfuzz.sweep.Executor`: a client
of an existing scheduler; ``map`` submits one task per item and yields
``(position, result)`` as tasks finish, so a sweep's progress streams back
while the cluster works.

Invariants:
- ``distributed`` is optional (``pip install 'wasmrt-oomfuzz[cluster]'``) and
  imported only when a cluster is asked for. Its absence, a scheduler that
  cannot be reached, no worker within ``timeout``, or workers that cannot
  import oomfuzz or run other oomfuzz/wasmrt code than this machine, are a
  :class:`ClusterError` (one line) before any work is submitted.
- Each position is yielded exactly once. Dask re-runs the tasks of a worker
  that died (and recomputes a finished task whose result died with it); a
  result already taken is never taken again, and each task's future is
  released as soon as its result is taken.
- A task that keeps killing its workers (Dask's ``allowed-failures``) ends the
  map with a :class:`ClusterError` naming it; an exception raised by ``fn``
  propagates unchanged. Tasks still pending when the map ends early (an error,
  Ctrl-C, the caller stopping) are cancelled.
- Workers run with their statistical profiler off (:func:`quiet_profiler`):
  it holds task frames, which the leak check would see as leaked stores.
- ``jobs`` is the number of worker threads the cluster had when connected
  (run workers with ``--nthreads 1``: a unit is CPU-bound Python).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType, TracebackType
from typing import Any, TypeVar

from oomfuzz.context import ScenarioError
from oomfuzz.merge import code_digest

__all__ = ["ClusterError", "DaskCluster", "load_distributed"]

T = TypeVar("T")
R = TypeVar("R")

#: Seconds to reach the scheduler, and for a first worker to be there.
CONNECT_TIMEOUT = 10.0

INSTALL_HINT = "pip install 'wasmrt-oomfuzz[cluster]'"


class ClusterError(ScenarioError):
    """The cluster cannot be used (or lost a task for good); the message is one line."""


def load_distributed() -> ModuleType:
    """The ``distributed`` package, or ``ClusterError`` saying how to install it."""
    try:
        import distributed
    except ImportError as e:
        raise ClusterError(
            f"--cluster needs Dask's 'distributed' package ({e}); {INSTALL_HINT}"
        ) from None
    return distributed


def worker_code() -> str:
    """Run on each worker: the digest of the oomfuzz/wasmrt sources it imports."""
    return code_digest()


QUIET_PROFILER = "oomfuzz-quiet-profiler"


def quiet_profiler(dd: ModuleType) -> Any:
    """A worker plugin that turns off the worker's statistical profiler, on every worker
    (also those that join or restart later). The profiler holds a running task's frames
    while it samples them, and so the stores their locals reach: the leak check would
    report them as leaked."""

    class QuietProfiler(dd.WorkerPlugin):  # type: ignore[misc, name-defined]
        name = QUIET_PROFILER

        def setup(self, worker: Any) -> None:
            for key in ("profile", "profile-cycle"):
                callback = worker.periodic_callbacks.pop(key, None)
                if callback is not None:
                    callback.stop()

    return QuietProfiler()


class DaskCluster:
    """Run tasks on the Dask cluster whose scheduler listens at ``address``."""

    in_process = False

    def __init__(self, address: str, timeout: float | None = None) -> None:
        self.address = address
        timeout = CONNECT_TIMEOUT if timeout is None else timeout
        dd = load_distributed()
        self._dd = dd
        # The client logs a lost scheduler with tracebacks; the map says it in one line.
        self._client_log = logging.getLogger("distributed.client")
        self._client_level = self._client_log.level
        self._client_log.setLevel(logging.CRITICAL)
        try:
            self.client: Any = dd.Client(
                address, timeout=timeout, set_as_default=False, name="oomfuzz"
            )
        except (OSError, TimeoutError, ValueError) as e:
            self._client_log.setLevel(self._client_level)
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address}: {_line(e)}"
            ) from None
        try:
            self._check_workers(timeout)
        except BaseException:
            self.close()
            raise
        self.jobs = max(1, sum(self.client.nthreads().values()))

    def _check_workers(self, timeout: float) -> None:
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError) as e:
            raise ClusterError(
                f"no Dask worker joined the scheduler at {self.address} within {timeout:g}s "
                f"({_line(e)})"
            ) from None
        try:
            codes = self.client.run(worker_code)
        except ImportError as e:
            raise ClusterError(
                f"the workers of {self.address} cannot import oomfuzz ({_line(e)}); install "
                "wasmrt-oomfuzz on every worker"
            ) from None
        mine = code_digest()
        other = sorted(addr for addr, code in codes.items() if code != mine)
        if other:
            raise ClusterError(
                f"worker {other[0]} runs other oomfuzz/wasmrt code than this machine "
                f"({len(other)} of {len(codes)} workers): install the same version everywhere"
            )
        self.client.register_plugin(quiet_profiler(self._dd), name=QUIET_PROFILER)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        token = uuid.uuid4().hex[:12]
        futures = [
            self.client.submit(fn, item, key=f"oomfuzz-{token}-{i}", pure=False)
            for i, item in enumerate(items)
        ]
        position = {f.key: i for i, f in enumerate(futures)}
        taken: set[int] = set()
        try:
            for fut in self._dd.as_completed(futures, loop=self.client.loop):
                i = position[fut.key]
                if i in taken:
                    continue  # finished again after a worker loss: already counted
                result = self._result(fut, items[i])
                taken.add(i)
                fut.release()
                yield i, result
        finally:
            pending = [f for i, f in enumerate(futures) if i not in taken]
            if pending:
                self.client.cancel(pending)

    def _result(self, fut: Any, item: object) -> Any:
        try:
            return fut.result()
        except self._dd.KilledWorker as e:
            raise ClusterError(
                f"the cluster gave up on {_describe(item)}: it was running on every worker "
                f"that died ({_line(e)})"
            ) from None
        except (asyncio.CancelledError, cf.CancelledError, OSError) as e:
            # The scheduler went away (or cancelled the task): the sweep cannot finish.
            raise ClusterError(
                f"lost the task running {_describe(item)} on the Dask scheduler at "
                f"{self.address}: {_line(e)}"
            ) from None

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self._client_log.setLevel(self._client_level)

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _describe(item: object) -> str:
    """A task's item in a message: a unit by its names, anything else by its repr."""
    names = [getattr(item, a, None) for a in ("scenario", "mode", "allocator")]
    if all(isinstance(n, str) for n in names):
        return "{} [{}/{}]".format(*names)
    return repr(item)[:120]
