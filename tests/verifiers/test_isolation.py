"""The user's code cannot end, hang or silently pass a run (issue 18: "user code isolated"), and
``--json -`` writes only JSON to standard output.

Through the command line, for each way in: ``--manual``, ``--loss``, ``--combine``, and the
import of their files. Whatever the code does (a ``BaseException`` of any kind, ``os._exit``, a
crash, a call that never returns, a process of its own left sleeping), the run ends with exactly
one ``error:`` line naming the code, exit status 2, nothing on standard output, no output file
and no process left. Then the module itself: :func:`verifiers.isolation.user_call` in-process
and the shared board the parent reads.
"""

from __future__ import annotations

import io
import json
import mmap
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from verifiers import Settings, UsageError, verify
from verifiers.compare import Tolerance
from verifiers.data import load_csv
from verifiers.distributed.combine import check_combination
from verifiers.distributed.shards import ShardPart
from verifiers.isolation import Board, UserCodeError, describe, user_call
from verifiers.report import print_report
from verifiers.user_formula import FormulaLoadError, load_function

from .helpers import DATA_CSV, REPO_ROOT, has

HAS_PROC = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="needs /proc for the process table")
FAST = ["--iterations", "5", "--quiet"]
# The cheapest engines each way in can use: no torch or jax where the point does not need them.
ENGINES = {
    "--manual": ["--engines", "loop,manual"],
    "--loss": ["--engines", "minigrad,numeric"],
    "--combine": ["--engines", "manual,jax", "--shards", "2"],
}
SIGNATURES = {
    "--manual": "gradient(b, w, X, y)",
    "--loss": "loss(b, w, X, y, xp)",
    "--combine": "combine(parts)",
}
# Whatever runs first in the file: it notes its session, where the run's processes live.
PROLOGUE = """\
import ctypes, os, resource, subprocess, sys, time
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash writes no core file
with open({marker!r}, "w") as note:
    note.write(str(os.getsid(0)))


class Surrender(BaseException):
    \"\"\"Not an Exception: only `except BaseException` catches it.\"\"\"


def grandchild():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open({marker!r} + ".grandchild", "w") as note:
        note.write(str(sleeper.pid))


def moved_grandchild():
    pid = os.fork()
    if pid == 0:  # in a process group of its own, out of reach of its group's signals
        os.setpgid(0, 0)
        time.sleep(600)
        os._exit(0)
    with open({marker!r} + ".grandchild", "w") as note:
        note.write(str(pid))
"""

# What the user code does, and what the one error line must then say (a regular expression).
MISDEEDS = {
    "base exception": ("raise Surrender('gave up')", "Surrender"),
    "GeneratorExit": ("raise GeneratorExit('closed')", "GeneratorExit"),
    "SystemExit(0)": ("raise SystemExit(0)", r"SystemExit|sys\.exit\(0\)"),
    "KeyboardInterrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "os._exit(0)": ("os._exit(0)", r"ended the process \(exit status 0\)"),
    "os._exit(1)": ("os._exit(1)", r"ended the process \(exit status 1\)"),
    "abort": ("os.abort()", r"ended the process \(killed by SIGABRT\)"),
    "segfault": ("ctypes.string_at(0)", r"ended the process \(killed by SIGSEGV\)"),
    "sleep": ("time.sleep(600)", "was still running after 1 s"),
    "grandchild": ("grandchild(); time.sleep(600)", "was still running after 1 s"),
}
CASES = [
    *[("--manual", "call", name) for name in MISDEEDS],
    *[("--loss", "call", name) for name in MISDEEDS if name not in ("os._exit(1)", "abort")],
    *[("--manual", "import", name) for name in ("base exception", "os._exit(0)", "sleep")],
    ("--loss", "import", "grandchild"),
    *[("--combine", "call", name) for name in ("base exception", "segfault", "sleep")],
    ("--combine", "import", "SystemExit(0)"),
]


def _environment() -> dict[str, str]:
    """This environment, with this checkout first on the import path and 80 columns."""
    env = dict(os.environ, COLUMNS="80")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "verifiers.run", str(DATA_CSV), *args]


def _run(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The command line, from `cwd` (where a crash could leave files)."""
    return subprocess.run(
        _command(*args), cwd=cwd, env=_environment(), capture_output=True, text=True,
        timeout=timeout,  # a guard against a hang, not a measurement
    )  # fmt: skip


def _write_code(folder: Path, option: str, where: str, act: str) -> tuple[str, Path]:
    """A file whose function (for `option`) does `act` when called, or at import."""
    marker = folder / "session"
    source = folder / "user_code.py"
    body = f"    {act}\n" if where == "call" else "    pass\n"
    text = PROLOGUE.format(marker=str(marker))
    if where == "import":
        text += f"\n{act}\n"
    text += f"\n\ndef {SIGNATURES[option]}:\n{body}"
    source.write_text(text)
    return f"{source}:{SIGNATURES[option].partition('(')[0]}", marker


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def _session(session: int) -> list[int]:
    """The processes of `session` that have not ended."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rpartition(b")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] not in (b"Z", b"X"):
            found.append(int(entry.name))
    return found


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


def _case_id(case: tuple[str, str, str]) -> str:
    option, where, name = case
    return f"{option[2:]}-{where}-{name}"


def _case_param(case: tuple[str, str, str]) -> pytest.param:
    """A case in its tier: --combine's calls start sharded workers (10 s and more each), so they
    are slow; its import, and every misdeed through --manual and --loss, are in the fast tier."""
    slow = case[0] == "--combine" and case[1] == "call"
    return pytest.param(*case, id=_case_id(case), marks=[pytest.mark.slow] if slow else [])


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc for the process table")
@pytest.mark.parametrize(("option", "where", "name"), [_case_param(case) for case in CASES])
def test_user_code_cannot_end_or_hang_the_run(tmp_path, option, where, name):
    if option == "--combine" and not has("jax"):
        pytest.skip("--combine needs an engine with a distributed form (jax)")
    act, said = MISDEEDS[name]
    spec, marker = _write_code(tmp_path, option, where, act)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    limit = ["--time-limit", "1"] if "still running" in said else []
    result = _run(
        tmp_path, *ENGINES[option], *FAST, option, spec, *limit, "--json", str(outputs / "r.json")
    )
    line = _one_error_line(result)
    assert re.search(said, line), line
    assert spec in line  # the code is named: FILE.py:FUNCTION
    if where == "import":
        assert f"importing {spec.rpartition(':')[0]}" in line
    assert list(outputs.iterdir()) == []  # no output, whole or in part
    # Nothing left running: the child, anything it started, the grandchild.
    assert _session(int(marker.read_text())) == []
    grandchild = marker.with_name(marker.name + ".grandchild")
    if grandchild.exists():
        assert not _alive(int(grandchild.read_text()))


@needs_proc
def test_a_process_the_code_moved_to_a_group_of_its_own_is_stopped_too(tmp_path):
    spec, marker = _write_code(tmp_path, "--manual", "call", "moved_grandchild(); os._exit(0)")
    result = _run(tmp_path, *ENGINES["--manual"], *FAST, "--manual", spec)
    assert "ended the process (exit status 0)" in _one_error_line(result)
    assert _session(int(marker.read_text())) == []
    assert not _alive(int(marker.with_name(marker.name + ".grandchild").read_text()))


@needs_proc
def test_ctrl_c_stops_the_child_and_everything_it_started_and_exits_130(tmp_path):
    spec, marker = _write_code(tmp_path, "--manual", "call", "grandchild(); time.sleep(600)")
    process = subprocess.Popen(
        _command(*ENGINES["--manual"], *FAST, "--manual", spec), cwd=tmp_path,
        env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    grandchild = marker.with_name(marker.name + ".grandchild")
    try:
        _wait_for(grandchild.exists, "the formula to start its grandchild")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert (process.returncode, out, err) == (130, "", "interrupted\n")
    assert _session(int(marker.read_text())) == []
    assert not _alive(int(grandchild.read_text()))


@needs_proc
def test_a_killed_parent_takes_the_child_with_it(tmp_path):
    spec, marker = _write_code(tmp_path, "--manual", "call", "grandchild(); time.sleep(600)")
    process = subprocess.Popen(
        _command(*ENGINES["--manual"], *FAST, "--manual", spec), cwd=tmp_path,
        env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    grandchild = marker.with_name(marker.name + ".grandchild")
    try:
        _wait_for(grandchild.exists, "the formula to start its grandchild")
    finally:
        process.kill()  # no chance to clean up: the child notices on its own
        process.wait()
    session = int(marker.read_text())
    _wait_for(lambda: not _session(session), "the child's session to end")
    assert not _alive(int(grandchild.read_text()))


def _wait_for(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds  # generous: a guard against a hang only
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


# ---- a correct formula is unaffected ------------------------------------------------------------
GOOD = """\
import verifiers

with open(__file__ + ".package", "w") as note:
    note.write(verifiers.__file__)


def gradient(b, w, X, y):
    r = y - (X @ w + b)
    return -2 * r.mean(), -2 * X.T @ r / len(y)


def slip(b, w, X, y):
    r = y - (X @ w + b)
    return -r.mean(), -X.T @ r / len(y)
"""


def test_a_correct_formula_gives_exit_0_and_the_report_it_gives_in_process(tmp_path):
    source = tmp_path / "mine.py"
    source.write_text(GOOD)
    options = ["--engines", "loop,manual,minigrad", "--iterations", "5"]
    result = _run(tmp_path, *options, "--manual", f"{source}:gradient")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    # The child imported this checkout, as its parent did.
    assert Path(Path(f"{source}.package").read_text()).parent == REPO_ROOT / "verifiers"
    spec = f"{source}:gradient"
    settings = Settings(engines=("loop", "manual", "minigrad"), iterations=5, manual=spec)
    report = verify(load_csv(DATA_CSV), settings, formula=load_function(spec, "--manual"))
    text = io.StringIO()
    print_report(report, Console(file=text, width=80, highlight=False))
    assert result.stdout == text.getvalue()


def test_a_wrong_formula_still_gives_exit_1(tmp_path):
    source = tmp_path / "mine.py"
    source.write_text(GOOD)
    result = _run(tmp_path, *ENGINES["--manual"], *FAST, "--manual", f"{source}:slip")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MISMATCH: manual (your formula) disagrees" in result.stdout


def test_a_correct_loss_and_combination_give_exit_0(tmp_path):
    source = tmp_path / "mine.py"
    source.write_text(
        "def loss(b, w, X, y, xp):\n    r = y - (X @ w + b)\n    return xp.mean(r * r)\n"
    )
    result = _run(tmp_path, *ENGINES["--loss"], *FAST, "--loss", f"{source}:loss")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: all 2 engines agree" in result.stdout


# ---- --json - and --time-limit ------------------------------------------------------------------
@pytest.mark.parametrize("with_code", [False, True], ids=["in-process", "user code"])
def test_json_to_standard_output_is_json_alone(tmp_path, with_code):
    source = tmp_path / "mine.py"
    source.write_text(GOOD)
    code = ["--manual", f"{source}:gradient"] if with_code else []
    result = _run(tmp_path, *ENGINES["--manual"], "--iterations", "5", *code, "--json", "-")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert "OK: " in result.stderr  # the report went to standard error
    assert "Loss and gradient" in result.stderr


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="no /dev/fd here")
def test_an_output_named_by_a_descriptor_is_written_there_through_the_child(tmp_path):
    # What the shell's --json >(jq .) or 3>file hands over: a descriptor the child must share.
    source = tmp_path / "mine.py"
    source.write_text(GOOD)
    target = tmp_path / "r.json"
    with open(target, "wb") as handle:
        descriptor = handle.fileno()
        result = subprocess.run(
            _command(*ENGINES["--manual"], *FAST, "--manual", f"{source}:gradient", "--json",
                     f"/dev/fd/{descriptor}"),
            cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=300,
            pass_fds=(descriptor,),
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(target.read_text())["ok"] is True


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--time-limit must be a positive finite number of seconds, not 0.0"),
        ("-1", "--time-limit must be a positive finite number of seconds, not -1.0"),
        ("nan", "--time-limit must be a positive finite number of seconds, not nan"),
        ("inf", "--time-limit must be a positive finite number of seconds, not inf"),
        ("soon", "argument --time-limit: invalid float value: 'soon'"),
    ],
)
def test_a_bad_time_limit_is_a_usage_error(tmp_path, value, message):
    result = _run(tmp_path, *ENGINES["--manual"], *FAST, "--time-limit", value)
    assert message in _one_error_line(result)


def test_help_names_the_time_limit_and_its_default(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "verifiers.run", "--help"], cwd=tmp_path, env=_environment(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    text = " ".join(result.stdout.split())
    assert "--time-limit SECONDS" in text
    assert "(default: 60.0)" in text.partition("--time-limit SECONDS")[2]


# ---- in-process: user_call ----------------------------------------------------------------------
class _Surrender(BaseException):
    pass


def _raiser(error: BaseException):
    def function(*args, **kwargs):
        raise error

    return function


def test_user_call_passes_arguments_and_the_result_through():
    assert user_call("f", lambda a, b=0: (a, b), 1, b=2) == (1, 2)


def test_user_call_leaves_an_exception_to_its_caller():
    error = ValueError("oops")
    with pytest.raises(ValueError, match="oops") as raised:
        user_call("f", _raiser(error))
    assert raised.value is error


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (_Surrender("gave up"), "--manual f.py:g: raised _Surrender: gave up"),
        (GeneratorExit(), "--manual f.py:g: raised GeneratorExit"),
        (SystemExit(0), "--manual f.py:g: called sys.exit(0)"),
        (SystemExit("bye\nnow"), "--manual f.py:g: called sys.exit('bye\\nnow')"),
    ],
)
def test_user_call_makes_any_other_base_exception_a_usage_error(error, message):
    with pytest.raises(UserCodeError) as raised:
        user_call("--manual f.py:g", _raiser(error))
    assert str(raised.value) == message
    assert isinstance(raised.value, UsageError)
    assert (raised.value.label, raised.value.error) == ("--manual f.py:g", error)


def test_in_process_ctrl_c_goes_through():
    with pytest.raises(KeyboardInterrupt):
        user_call("f", _raiser(KeyboardInterrupt()))


def test_describe_gives_the_first_line():
    assert describe(ValueError("first\nsecond")) == "raised ValueError: first"


def test_verify_makes_a_formula_or_loss_that_raises_a_base_exception_a_usage_error():
    data = load_csv(DATA_CSV)
    settings = Settings(engines=("loop", "manual"), iterations=2)
    with pytest.raises(UsageError, match="the function raised _Surrender: gave up"):
        verify(data, settings, formula=_raiser(_Surrender("gave up")))
    with pytest.raises(UsageError, match="the loss raised GeneratorExit"):
        verify(data, Settings(engines=("minigrad", "numeric")), loss=_raiser(GeneratorExit()))


def test_a_combination_that_raises_a_base_exception_is_a_usage_error():
    parts = [ShardPart(rows=n, loss_sum=1.0, gradient_sum=np.ones(2) * n) for n in (3, 2)]
    with pytest.raises(UserCodeError, match=r"^--combine c\.py:f: raised _Surrender"):
        check_combination(
            _raiser(_Surrender()), parts, tolerance=Tolerance.for_dtype("float64", 5),
            name="c.py:f", label="--combine c.py:f",
        )  # fmt: skip


def test_a_file_that_raises_a_base_exception_at_import_is_a_load_error(tmp_path):
    source = tmp_path / "mine.py"
    source.write_text("class Stop(BaseException):\n    pass\n\nraise Stop('at import')\n")
    with pytest.raises(FormulaLoadError) as raised:
        load_function(f"{source}:gradient", "--manual")
    assert str(raised.value) == (
        f"--manual {source}:gradient: importing {source}:4 raised Stop: at import"
    )


# ---- the board the parent reads -----------------------------------------------------------------
def _boards() -> tuple[Board, Board]:
    """A writer's board and a reader's view of the same shared memory, as child and parent."""
    from verifiers.isolation import _BOARD_BYTES, _shared_file

    descriptor = _shared_file(_BOARD_BYTES)
    reader = Board(mmap.mmap(descriptor, _BOARD_BYTES))
    return Board.attach(descriptor), reader


def test_the_board_shows_each_call_in_progress_with_its_start():
    writer, reader = _boards()
    before = time.monotonic()
    first = writer.enter("--manual f.py:g")
    second = writer.enter("--loss f.py:l")
    running = dict(reader.running())
    assert set(running) == {"--manual f.py:g", "--loss f.py:l"}
    assert all(before <= since <= time.monotonic() for since in running.values())
    writer.leave(first)
    assert [label for label, _ in reader.running()] == ["--loss f.py:l"]
    writer.leave(second)
    assert reader.running() == []


def test_the_board_cuts_a_long_label_and_runs_out_of_slots_gracefully():
    writer, reader = _boards()
    label = "é" * 500
    slots = [writer.enter(label) for _ in range(64)]
    assert None not in slots
    assert writer.enter("one too many") is None  # not recorded, still run
    (shown, _), *_ = reader.running()
    assert label.startswith(shown.rstrip("\ufffd"))
    for slot in slots:
        writer.leave(slot)
    assert reader.running() == []


def test_the_board_keeps_calls_on_several_threads_apart():
    writer, reader = _boards()
    started, release = threading.Barrier(5), threading.Event()

    def call(k: int) -> None:
        slot = writer.enter(f"call {k}")
        started.wait()
        release.wait()
        writer.leave(slot)

    threads = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    assert sorted(label for label, _ in reader.running()) == [f"call {k}" for k in range(4)]
    release.set()
    for thread in threads:
        thread.join()
    assert reader.running() == []


def test_the_parent_takes_the_status_only_from_the_child_itself():
    from verifiers.isolation import _status

    assert _status(b"exit 1 42\n", 42) == 1
    assert _status(b"exit 0 43\nexit 1 42\n", 42) == 1  # a fork of the child spoke first
    assert _status(b"exit 0 43\n", 42) is None
    assert _status(b"exit 0 42", 42) is None  # cut short
    assert _status(b"exit 300 42\n", 42) is None
