"""Programs as scenarios: ``oomfuzz sweep prog.wasm``/``prog.wat`` and targeted fault plans.

Small WASI programs written here in WAT react to a refused ``memory.grow``
in each of the ways a guest can (report, abort, exit silently, fall back,
absorb); the real C programs of ``corpus/programs`` show the same verdicts
on real code, brotli's two builds side by side.
"""

from __future__ import annotations

import json
import shutil
import weakref
from pathlib import Path

import pytest

from oomfuzz.cli import main
from oomfuzz.guest import ProgramResult
from oomfuzz.program import ProgramOverrides, apply_overrides, load_program
from oomfuzz.scenario import ScenarioError, ScenarioRunner, find_scenarios, load_scenario
from oomfuzz.sweep import Unit, run_unit
from oomfuzz.target import TARGETS, parse_target
from wasmrt.errors import OutOfMemory
from wasmrt.vm.memory import LinearMemory
from wasmrt.wasi import preview1
from wasmrt.wasi.errno import Errno, WasiErrno

PROGRAMS = Path(__file__).resolve().parents[2] / "corpus" / "programs"


#: How the WAT program reacts when its memory.grow returns -1.
REACTIONS = {
    "report": "(call $write (i32.const 2) (i32.const 48) (i32.const 14)) (call $exit (i32.const 1))",
    "abort": "unreachable",
    "silent": "(call $exit (i32.const 1))",
    "fallback": "(call $write (i32.const 1) (i32.const 32) (i32.const 9))",
    "absorb": "(call $write (i32.const 1) (i32.const 16) (i32.const 3))",
}


def program(reaction: str, header: str = "") -> str:
    """A WASI command: print an argument count line, grow memory, print 'ok' or react."""
    return f"""{header}
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\\n")
  (data (i32.const 32) "fallback\\n")
  (data (i32.const 48) "out of memory\\n")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (drop (call $args (i32.const 64) (i32.const 68)))
    ;; one '#' per argument, then a newline
    (i32.store8 (i32.const 80) (i32.const 35))
    (block $done
      (loop $more
        (br_if $done (i32.eqz (i32.load (i32.const 64))))
        (call $write (i32.const 1) (i32.const 80) (i32.const 1))
        (i32.store (i32.const 64) (i32.sub (i32.load (i32.const 64)) (i32.const 1)))
        (br $more)))
    (call $write (i32.const 1) (i32.const 18) (i32.const 1))
    (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
      (then {REACTIONS[reaction]})
      (else (call $write (i32.const 1) (i32.const 16) (i32.const 3)))))
  (func (export "answer") (result i32) (i32.const 42)))
"""


def plain(reaction: str) -> str:
    """A program without imports: ``_start`` returns 7 if memory.grow works, else reacts."""
    then = {"abort": "unreachable", "corrupt": "(i32.const 8)", "absorb": "(i32.const 7)"}
    return f"""(module
  (memory (export "memory") 1)
  (func (export "_start") (result i32)
    (if (result i32) (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
      (then {then[reaction]})
      (else (i32.const 7))))
  (func (export "answer") (result i32) (i32.const 42)))
"""


def write(tmp_path: Path, name: str, text: str, sidecar: dict[str, object] | None = None) -> Path:
    path = tmp_path / name
    path.write_text(text)
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def sweep_unit(path: Path, mode: str = "persistent", **kw: object) -> dict[str, object]:
    rep = run_unit(Unit(str(path), mode, "ondemand", engine="replay", **kw))  # type: ignore[arg-type]
    assert rep.error is None, rep.error
    return rep.to_dict()


# -- loading ------------------------------------------------------------------------------


def test_sidecar_in_the_wasi_testsuite_format(tmp_path: Path) -> None:
    (tmp_path / "fixture").mkdir()
    sidecar = {
        "args": ["a", "b"],
        "env": {"K": "V"},
        "root": "fixture",
        "exit_code": 0,
        "stdout": "###\nok\n",
        "oomfuzz": {"allocator": "ondemand", "accept": "guest_abort,exit:1"},
    }
    scn = load_program(write(tmp_path, "p.wat", program("report"), sidecar))
    run = scn.func
    assert run is not None
    spec = run.spec  # type: ignore[attr-defined]
    assert (spec.invoke, spec.args, spec.env) == ("_start", ("a", "b"), (("K", "V"),))
    assert spec.dirs == ((str(tmp_path / "fixture"), "/"),)
    assert scn.directives["allocator"] == "ondemand"
    assert scn.directives["engine"] == "shared"  # programs compile once per unit
    assert scn.allocators() == ("ondemand",)


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ("[1]", "a sidecar is a JSON object"),
        ('{"args": "x"}', "args must be a list of strings"),
        ('{"env": {"K": 1}}', "env must map strings to strings"),
        ('{"root": "missing"}', "no such directory"),
        ('{"exit_code": "0"}', "exit_code must be an integer"),
        ('{"oomfuzz": {"accept": "guest_crash"}}', "accept takes"),
        ('{"oomfuzz": {"colour": "red"}}', "unknown oomfuzz directive"),
        ("{", "not JSON"),
    ],
)
def test_bad_sidecars_are_input_errors(tmp_path: Path, sidecar: str, message: str) -> None:
    path = write(tmp_path, "p.wat", program("report"))
    path.with_suffix(".json").write_text(sidecar)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_not_a_module_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\x7fELF....")
    with pytest.raises(ScenarioError, match="not a WebAssembly binary"):
        load_scenario(bad)
    assert main(["sweep", str(bad), "-q"]) == 2


def test_programs_are_swept_when_named_not_found_by_walks(tmp_path: Path) -> None:
    write(tmp_path, "a.wat", plain("absorb"))
    (tmp_path / "b.wasm").write_bytes((PROGRAMS / "xxhash.wasm").read_bytes())
    (tmp_path / "c.wast").write_text('(module (func (export "f")))\n(invoke "f")\n')
    assert [p.name for p in find_scenarios([str(tmp_path)])] == ["c.wast"]
    named = find_scenarios([str(tmp_path / "a.wat"), str(tmp_path / "b.wasm")])
    assert [p.name for p in named] == ["a.wat", "b.wasm"]
    assert main(["sweep", str(tmp_path / "a.wat"), "-q", "--allocator", "ondemand"]) == 0


# -- one run -------------------------------------------------------------------------------


def run_once(path: Path, overrides: ProgramOverrides | None = None) -> ProgramResult:
    scn = load_scenario(path)
    if overrides is not None:
        scn = apply_overrides(scn, overrides)
    (result,) = ScenarioRunner(scn, "ondemand").run()
    assert isinstance(result, ProgramResult)
    return result


def test_a_run_records_results_and_traps_without_wasi(tmp_path: Path) -> None:
    path = write(tmp_path, "p.wat", plain("abort"))
    assert run_once(path) == ProgramResult(results=(7,))
    assert run_once(path, ProgramOverrides(invoke="answer")) == ProgramResult(results=(42,))
    traps = write(tmp_path, "trap.wat", '(module (func (export "_start") unreachable))')
    result = run_once(traps)
    assert result.exit_code == 0
    assert result.trap == "unreachable: wasm `unreachable` instruction executed"
    argv = ["sweep", str(path), "-q", "--allocator", "ondemand"]
    assert main([*argv, "--invoke", "nope"]) == 2  # a missing export is an input error


@pytest.mark.parametrize(
    ("reaction", "verdict"),
    [("absorb", "handled"), ("abort", "guest_abort"), ("corrupt", "guest_corrupt")],
)
def test_guest_verdicts_without_wasi(tmp_path: Path, reaction: str, verdict: str) -> None:
    path = write(tmp_path, f"{reaction}.wat", plain(reaction))
    rep = sweep_unit(path, target=TARGETS["guest"])
    assert rep["total"] == 1
    assert rep["counts"] == {verdict: 1}
    # Untargeted: the host's refusals reach the caller; the guest's is judged as above.
    full = sweep_unit(path, "transient")
    assert full["total"] > 5
    counts = full["counts"]
    assert sum(counts.values()) == full["total"]  # type: ignore[attr-defined]
    if verdict != "handled":
        assert counts == {"handled": full["total"] - 1, verdict: 1}  # type: ignore[operator]


def test_a_run_records_exit_code_and_output(tmp_path: Path) -> None:
    path = write(tmp_path, "p.wat", program("report"), {"args": ["x"]})
    # One '#' per argv entry: the program's name and its arguments.
    assert run_once(path) == ProgramResult(0, b"##\nok\n")
    three = ProgramOverrides(args=("1", "2", "3"))
    assert run_once(path, three).stdout == b"####\nok\n"
    answer = run_once(path, ProgramOverrides(invoke="answer"))
    assert answer == ProgramResult(0, b"", b"", "", (42,))


def test_exit_is_the_guests_outcome(tmp_path: Path) -> None:
    exits = write(
        tmp_path,
        "exit.wat",
        '(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))'
        ' (memory (export "memory") 1) (func (export "_start") (call $e (i32.const 7))))',
    )
    assert run_once(exits) == ProgramResult(7)


def test_the_dry_run_must_match_the_sidecar(tmp_path: Path) -> None:
    path = write(tmp_path, "p.wat", program("report"), {"stdout": "something else\n"})
    rep = run_unit(Unit(str(path), "transient", "ondemand"))
    assert rep.error is not None and "fault-free run gave stdout" in rep.error
    assert main(["sweep", str(path), "-q", "--allocator", "ondemand"]) == 1
    # Other arguments than the sidecar's: its expectations do not apply.
    argv = ["sweep", str(path), "-q", "--allocator", "ondemand", "--target", "guest"]
    assert main([*argv, "--arg", "y"]) == 0


def test_missing_export_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "p.wat", program("report"))
    assert main(["sweep", str(path), "-q", "--allocator", "ondemand", "--invoke", "nope"]) == 2


def test_bad_program_options_are_usage_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "p.wat", program("report"))
    assert main(["sweep", str(path), "-q", "--env", "NOEQUALS"]) == 2
    assert main(["sweep", str(path), "-q", "--dir", str(tmp_path / "nowhere")]) == 2
    assert main(["sweep", str(path), "-q", "--target", "guests"]) == 2
    assert main(["sweep", str(path), "-q", "--kinds", "heap"]) == 2


# -- guest verdicts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reaction", "verdict"),
    [
        ("report", "handled"),
        ("absorb", "handled"),
        ("abort", "guest_abort"),
        ("silent", "guest_abort"),
        ("fallback", "guest_corrupt"),
    ],
)
def test_guest_verdicts(tmp_path: Path, reaction: str, verdict: str) -> None:
    path = write(tmp_path, f"{reaction}.wat", program(reaction))
    rep = sweep_unit(path, target=TARGETS["guest"])
    assert rep["total"] == 1  # one guest memory.grow among all the run's allocations
    assert rep["counts"] == {verdict: 1}
    if verdict != "handled":
        (failure,) = rep["failures"]  # type: ignore[misc]
        assert failure["reproducer"].endswith("--index 0 --target guest")


def test_a_scenario_accepts_guest_verdicts(tmp_path: Path) -> None:
    header = ";; oomfuzz: accept=guest_abort"
    path = write(tmp_path, "abort.wat", program("abort", header))
    assert sweep_unit(path, target=TARGETS["guest"])["counts"] == {"allowed": 1}
    silent = write(tmp_path, "silent.wat", program("silent"), {"oomfuzz": {"accept": "exit:1"}})
    assert sweep_unit(silent, target=TARGETS["guest"])["counts"] == {"handled": 1}
    argv = ["sweep", str(path), "-q", "--allocator", "ondemand", "--target", "guest"]
    assert main([*argv, "--mode", "both"]) == 0


def test_untargeted_sweep_of_a_program_is_handled(tmp_path: Path) -> None:
    # Every host allocation (WASI config, instance, the fd_write buffers) and the
    # guest's grow: host refusals surface as OutOfMemory, the guest's is absorbed.
    path = write(tmp_path, "p.wat", program("report"), {"args": ["x"]})
    for mode in ("transient", "persistent"):
        rep = sweep_unit(path, mode)
        assert rep["total"] > 20
        assert set(rep["counts"]) == {"handled"}, rep["failures"]  # type: ignore[index]


def test_host_target_never_refuses_the_guest(tmp_path: Path) -> None:
    path = write(tmp_path, "silent.wat", program("silent"))
    full = sweep_unit(path, "persistent")
    host = sweep_unit(path, "persistent", target=TARGETS["host"])
    assert host["total"] == full["total"] - 1  # all but the guest's memory.grow
    assert set(host["counts"]) == {"handled"}


TWO_GROWS = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\\n")
  (func (export "_start")
    (drop (memory.grow (i32.const 1)))
    ;; a host call between the grows: WASI allocates for it
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (memory.grow (i32.const 1)))))
"""


def seed_second_refusal_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded runtime bug: a memory's second refused grow from wasm raises instead of -1."""
    refusals: weakref.WeakKeyDictionary[LinearMemory, int] = weakref.WeakKeyDictionary()
    original = LinearMemory.grow

    def grow(self: LinearMemory, delta: int, *, from_wasm: bool = False) -> int:
        old = original(self, delta, from_wasm=from_wasm)
        if from_wasm and old == -1:
            refusals[self] = refusals.get(self, 0) + 1
            if refusals[self] >= 2:
                raise OutOfMemory(delta * 65536)
        return old

    monkeypatch.setattr(LinearMemory, "grow", grow)


def test_targeted_persistent_plan_finds_what_an_untargeted_one_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_second_refusal_escapes(monkeypatch)
    path = write(tmp_path, "two_grows.wat", TWO_GROWS)
    # Untargeted: once the first grow is refused, fd_write's host allocation is
    # refused too and ends the run before the second grow. Transient: one refusal.
    for mode in ("transient", "persistent"):
        assert set(sweep_unit(path, mode)["counts"]) == {"handled"}  # type: ignore[arg-type]
    assert sweep_unit(path, "transient", target=TARGETS["guest"])["counts"] == {"handled": 2}
    found = sweep_unit(path, "persistent", target=TARGETS["guest"])
    assert found["counts"] == {"wrong_error": 1, "handled": 1}
    (failure,) = found["failures"]  # type: ignore[misc]
    assert failure["index"] == 0
    assert "OutOfMemory escaped from an absorbing site" in str(failure["iteration"]["findings"])


def test_an_oom_turned_into_an_errno_is_a_missed_oom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seeded WASI bug: fd_write answers a refused buffer with ENOMEM to the guest
    # instead of raising OutOfMemory to the embedder; the guest ignores the errno
    # and returns normally, which the program's result alone would not show.
    original = preview1._gather

    def gather(mem: object, iovs: int, count: int) -> bytes:
        try:
            return original(mem, iovs, count)  # type: ignore[arg-type]
        except OutOfMemory:
            raise WasiErrno(Errno.NOMEM) from None

    monkeypatch.setattr(preview1, "_gather", gather)
    path = write(tmp_path, "p.wat", program("absorb"))
    rep = sweep_unit(path, "transient", target=parse_target("host", kinds=["wasi"]))
    failures = rep["failures"]
    assert failures and {f["class"] for f in failures} == {"missed_oom"}  # type: ignore[attr-defined]
    assert all(f["site"].startswith("wasmrt/wasi/") for f in failures)  # type: ignore[attr-defined]
    monkeypatch.undo()
    clean = sweep_unit(path, "transient", target=parse_target("host", kinds=["wasi"]))
    assert set(clean["counts"]) == {"handled"}  # type: ignore[arg-type]


# -- the real C programs -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lz4", "xxhash", "brotli", "brotli_cleanup"])
def test_corpus_programs_run_under_wasmrt_as_their_sidecars_say(name: str) -> None:
    # The same bytes on stdout and the same exit code as wasmtime-py recorded.
    spec = json.loads((PROGRAMS / f"{name}.json").read_text())
    result = run_once(PROGRAMS / f"{name}.wasm")
    assert result == ProgramResult(
        spec["exit_code"], spec["stdout"].encode(), spec["stderr"].encode()
    )


def test_brotli_exits_on_oom_by_default_and_falls_back_when_built_to(tmp_path: Path) -> None:
    for name in ("brotli", "brotli_cleanup"):
        shutil.copy(PROGRAMS / f"{name}.wasm", tmp_path)
        shutil.copy(PROGRAMS / f"{name}.json", tmp_path)
    guest = TARGETS["guest"]
    default = sweep_unit(tmp_path / "brotli.wasm", target=guest)
    cleanup = sweep_unit(tmp_path / "brotli_cleanup.wasm", target=guest)
    assert default["total"] == cleanup["total"] >= 2
    abort = default["counts"].get("guest_abort", 0)  # type: ignore[attr-defined]
    assert abort >= 1
    details = [f["iteration"]["findings"] for f in default["failures"]]  # type: ignore[attr-defined]
    assert all(
        any("exit 1 with nothing on stderr" in x["detail"] for x in found) for found in details
    )
    # The same points in the cleanup build: the encoder falls back, stdout unchanged.
    assert set(cleanup["counts"]) == {"handled"}  # type: ignore[arg-type]
    # ... and with -v (which prints the compressed size) the fallback shows.
    verbose = run_unit(
        Unit(
            str(tmp_path / "brotli_cleanup.wasm"),
            "persistent",
            "ondemand",
            target=guest,
            program=ProgramOverrides(args=("-v",)),
        )
    ).to_dict()
    assert verbose["counts"].get("guest_corrupt", 0) == abort  # type: ignore[attr-defined]


def test_lz4_reports_every_refusal_of_its_memory(tmp_path: Path) -> None:
    rep = sweep_unit(PROGRAMS / "lz4.wasm", target=TARGETS["guest"])
    assert rep["total"] >= 2
    assert set(rep["counts"]) == {"handled"}  # type: ignore[arg-type]
