"""What a guest program did, and how its reaction to a refused allocation is judged.

A :class:`ProgramResult` is one run of a WASI program (``oomfuzz.program``):
its exit code (0 when the invoked function returned), stdout, stderr, the
trap that ended it (if any) and the invoked function's results. It is the
run's result, so the post-OOM check compares it with the fault-free run's.

:func:`judge` classifies a run in which only the guest's side was refused
(an absorbing site: its ``memory.grow`` returned -1, so ``malloc`` may
have returned NULL) against the fault-free result:

- ``handled``: the same result as the fault-free run (the refusal was
  absorbed: dlmalloc retried, the library fell back), or a non-zero exit
  with a message on stderr (the guest reported the failure), or a non-zero
  exit the scenario accepts (``accept=exit:N``);
- ``guest_abort``: it trapped (``abort()`` is ``unreachable`` in wasi-libc),
  or exited non-zero with nothing on stderr (it gave up without a word);
- ``guest_corrupt``: it exited 0 but its output differs from the
  fault-free run's.

Invariants:
- Results are plain frozen values (bytes, ints, strings): comparable,
  hashable, picklable, and holding nothing of the store that produced them.
- :func:`judge` is a pure function of the two results and the accepted
  exit codes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

__all__ = [
    "GUEST_VERDICTS",
    "Acceptance",
    "ProgramResult",
    "judge",
    "parse_accept",
    "program_result",
]

#: The guest verdicts a scenario may accept (besides ``exit:N``).
GUEST_VERDICTS = ("guest_abort", "guest_corrupt")


def _clip(data: bytes, limit: int = 120) -> str:
    text = data.decode("utf-8", "replace").strip()
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@dataclass(frozen=True, slots=True)
class ProgramResult:
    """One run of a guest program: how it ended and what it wrote."""

    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    trap: str = ""
    results: tuple[object, ...] = ()

    @property
    def succeeded(self) -> bool:
        return not self.trap and self.exit_code == 0

    def __str__(self) -> str:
        end = f"trap: {self.trap}" if self.trap else f"exit {self.exit_code}"
        digest = hashlib.sha256(self.stdout).hexdigest()[:12]
        parts = [end, f"stdout {len(self.stdout)} bytes sha256:{digest}"]
        if self.stderr:
            parts.append(f"stderr {_clip(self.stderr)}")
        if self.results:
            parts.append(f"results {list(self.results)!r}")
        return "; ".join(parts)

    def difference(self, other: ProgramResult) -> str:
        """The first way ``self`` differs from ``other`` (``""`` when equal)."""
        if self.stdout != other.stdout:
            mine, theirs = self.stdout.splitlines(), other.stdout.splitlines()
            line = next(
                (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
                min(len(mine), len(theirs)),
            )
            got = mine[line] if line < len(mine) else b"<end of output>"
            return f"stdout differs at line {line + 1}: {_clip(got)}"
        if self.stderr != other.stderr:
            return f"stderr {_clip(self.stderr)}, fault-free {_clip(other.stderr)}"
        if self.results != other.results:
            return f"results {list(self.results)!r}, fault-free {list(other.results)!r}"
        if (self.exit_code, self.trap) != (other.exit_code, other.trap):
            return f"{self.end()}, fault-free {other.end()}"
        return ""

    def end(self) -> str:
        return f"trapped ({self.trap})" if self.trap else f"exit {self.exit_code}"


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What a scenario accepts from its guest after a refusal (directive ``accept=``)."""

    guest_abort: bool = False
    guest_corrupt: bool = False
    exit_codes: tuple[int, ...] = ()


def parse_accept(value: str) -> Acceptance:
    """``guest_abort``, ``guest_corrupt`` and ``exit:N`` items, comma-separated.

    Raises ``ValueError`` (one line) for anything else.
    """
    verdicts: set[str] = set()
    exits: list[int] = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        if item in GUEST_VERDICTS:
            verdicts.add(item)
        elif item.startswith("exit:") and item[5:].isdigit():
            exits.append(int(item[5:]))
        else:
            raise ValueError(
                f"accept takes {', '.join(GUEST_VERDICTS)} or exit:N (comma-separated), "
                f"not {item!r}"
            )
    return Acceptance("guest_abort" in verdicts, "guest_corrupt" in verdicts, tuple(sorted(exits)))


def program_result(value: object) -> ProgramResult | None:
    """The program result a run's value holds (a format records it as its only outcome)."""
    if isinstance(value, ProgramResult):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], ProgramResult):
        return value[0]
    return None


def judge(
    result: ProgramResult, fault_free: ProgramResult, accept_exit: Collection[int] = ()
) -> tuple[str, str]:
    """(verdict, detail) for a run whose refusals were all on the guest's side."""
    if result == fault_free:
        return "handled", "absorbed: the same exit code and output as the fault-free run"
    if result.trap:
        return "guest_abort", f"the guest trapped: {result.trap}"
    if result.exit_code != 0:
        if result.exit_code in accept_exit:
            return "handled", f"exit {result.exit_code} (accepted by the scenario)"
        if result.stderr.strip():
            return "handled", f"reported: exit {result.exit_code}, stderr {_clip(result.stderr)}"
        return (
            "guest_abort",
            f"exit {result.exit_code} with nothing on stderr (gave up without reporting)",
        )
    return "guest_corrupt", f"exit 0 but {result.difference(fault_free)}"
