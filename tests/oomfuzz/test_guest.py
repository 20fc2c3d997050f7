"""Guest verdicts: how a program's reaction to a refused guest allocation is judged."""

from __future__ import annotations

import pickle

from oomfuzz.guest import Acceptance, ProgramResult, judge, parse_accept, program_result

FAULT_FREE = ProgramResult(0, b"input: 10 bytes\nroundtrip ok\n")


def test_same_result_is_handled() -> None:
    assert judge(ProgramResult(0, FAULT_FREE.stdout), FAULT_FREE)[0] == "handled"


def test_nonzero_exit_with_a_message_is_handled() -> None:
    got = ProgramResult(1, b"input: 10 bytes\n", b"lz4: LZ4F_compress: ERROR_allocation_failed\n")
    verdict, detail = judge(got, FAULT_FREE)
    assert verdict == "handled"
    assert "ERROR_allocation_failed" in detail


def test_silent_nonzero_exit_is_an_abort_unless_accepted() -> None:
    got = ProgramResult(1, b"input: 10 bytes\n")
    assert judge(got, FAULT_FREE) == (
        "guest_abort",
        "exit 1 with nothing on stderr (gave up without reporting)",
    )
    assert judge(got, FAULT_FREE, accept_exit={1})[0] == "handled"
    assert judge(ProgramResult(2, b""), FAULT_FREE, accept_exit={1})[0] == "guest_abort"


def test_trap_is_an_abort() -> None:
    got = ProgramResult(0, b"", trap="unreachable")
    assert judge(got, FAULT_FREE) == ("guest_abort", "the guest trapped: unreachable")


def test_success_with_different_output_is_corrupt() -> None:
    got = ProgramResult(0, b"input: 10 bytes\nroundtrip MISMATCH\n")
    verdict, detail = judge(got, FAULT_FREE)
    assert verdict == "guest_corrupt"
    assert detail == "exit 0 but stdout differs at line 2: 'roundtrip MISMATCH'"
    short = judge(ProgramResult(0, b"input: 10 bytes\n"), FAULT_FREE)[1]
    assert short == "exit 0 but stdout differs at line 2: '<end of output>'"
    assert "stderr" in judge(ProgramResult(0, FAULT_FREE.stdout, b"warning\n"), FAULT_FREE)[1]


def test_results_are_values() -> None:
    r = ProgramResult(3, b"out", b"err", "", (1, 2))
    assert pickle.loads(pickle.dumps(r)) == r
    assert hash(r) == hash(ProgramResult(3, b"out", b"err", "", (1, 2)))
    assert str(r).startswith("exit 3; stdout 3 bytes sha256:")
    assert "stderr 'err'" in str(r) and "results [1, 2]" in str(r)
    assert program_result([r]) is r and program_result(r) is r
    assert program_result(["line"]) is None and program_result([r, r]) is None


def test_parse_accept() -> None:
    assert parse_accept("guest_abort, exit:1,exit:3") == Acceptance(True, False, (1, 3))
    assert parse_accept("guest_corrupt") == Acceptance(False, True, ())
    assert parse_accept("") == Acceptance()
    for bad in ("guest_crash", "exit:", "exit:-1", "exit:x"):
        try:
            parse_accept(bad)
        except ValueError as e:
            assert "accept takes" in str(e)
        else:
            raise AssertionError(bad)
