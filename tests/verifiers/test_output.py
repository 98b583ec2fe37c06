"""Outputs harm nothing: modes kept, links kept, devices and FIFOs written through, refusals early.

Every test works in its own tmp_path; the only shared nodes touched are /dev/null and /dev/full
(written through, never replaced: the tests check that they are still character devices).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from verifiers.output import (
    OutputError,
    atomic_path,
    check_output_path,
    check_outputs,
    write_atomically,
    write_output,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def names(folder: Path) -> list[str]:
    """What a folder holds, hidden temporaries included."""
    return sorted(p.name for p in folder.iterdir())


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# The four ways to hand data to an output, each writing b'{"ok": true}\n'.
CONTENT = b'{"ok": true}\n'
WRITERS = {
    "text": lambda path: write_output(path, CONTENT.decode()),
    "bytes": lambda path: write_output(path, CONTENT),
    "file object": lambda path: write_output(path, lambda f: f.write(CONTENT)),
    "path": lambda path: write_atomically(path, lambda temporary: temporary.write_bytes(CONTENT)),
}


# --- Regular files ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", WRITERS)
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_a_new_file_gets_0666_less_the_umask(tmp_path, mask, how):
    target = tmp_path / "report.json"
    with umask(mask):
        WRITERS[how](target)
    assert target.read_bytes() == CONTENT
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert names(tmp_path) == ["report.json"]


@pytest.mark.parametrize("how", WRITERS)
def test_a_replaced_file_keeps_its_mode(tmp_path, how):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with umask(0o077):
        WRITERS[how](target)
    assert target.read_bytes() == CONTENT
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert names(tmp_path) == ["report.json"]


@pytest.mark.skipif(not IS_ROOT, reason="only root may give a file to another user")
def test_root_keeps_the_owner_and_group_of_a_replaced_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    os.chown(target, 65534, 65534)
    write_output(target, CONTENT)
    status = target.stat()
    assert (status.st_uid, status.st_gid) == (65534, 65534)


def test_a_replacement_is_a_new_file_moved_into_place(tmp_path):
    # A reader holding the old file keeps reading the old content: nothing was rewritten in place.
    target = tmp_path / "report.json"
    target.write_bytes(b"old content")
    with open(target, "rb") as reader:
        write_output(target, CONTENT)
        assert reader.read() == b"old content"
    assert target.read_bytes() == CONTENT


def test_the_temporary_keeps_the_suffix_so_writers_can_pick_the_format(tmp_path):
    with atomic_path(tmp_path / "figure.png") as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".figure.")
        assert temporary.suffix == ".png"
        assert temporary.is_file()
        assert temporary.stat().st_size == 0
        temporary.write_bytes(b"png")
    assert names(tmp_path) == ["figure.png"]
    with atomic_path("-", suffix=".gif") as temporary:
        assert temporary.suffix == ".gif"


# --- Symbolic links ---------------------------------------------------------------------------


def test_a_symlink_stays_a_link_and_its_target_is_replaced(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    real = elsewhere / "real.json"
    real.write_bytes(b"old")
    real.chmod(0o600)
    link = tmp_path / "report.json"
    link.symlink_to(Path("elsewhere", "real.json"))  # relative, as ln -s makes them
    write_output(link, CONTENT)
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("elsewhere", "real.json"))
    assert real.read_bytes() == CONTENT
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert names(tmp_path) == ["elsewhere", "report.json"]
    assert names(elsewhere) == ["real.json"]


def test_a_chain_of_links_is_followed_to_the_end(tmp_path):
    (tmp_path / "real.json").write_bytes(b"old")
    (tmp_path / "middle").symlink_to("real.json")
    (tmp_path / "first").symlink_to(tmp_path / "middle")
    write_atomically(tmp_path / "first", lambda temporary: temporary.write_bytes(CONTENT))
    assert (tmp_path / "first").is_symlink()
    assert (tmp_path / "middle").is_symlink()
    assert (tmp_path / "real.json").read_bytes() == CONTENT


def test_a_dangling_symlink_gets_its_target_created(tmp_path):
    (tmp_path / "out").mkdir()
    link = tmp_path / "report.json"
    link.symlink_to(tmp_path / "out" / "new.json")
    check_outputs({"--json": link})
    with umask(0o022):
        write_output(link, CONTENT)
    assert link.is_symlink()
    created = tmp_path / "out" / "new.json"
    assert created.read_bytes() == CONTENT
    assert stat.S_IMODE(created.stat().st_mode) == 0o644


# --- Devices, FIFOs, standard output, descriptors ---------------------------------------------


def _device(tmp_path: Path, name: str) -> Path:
    """/dev/`name` for an ordinary user; for root, a private node of the same device.

    An ordinary user cannot replace anything in /dev, so a wrong implementation fails the test
    and harms nothing. Root could replace the real node (the bug this module fixes replaced
    /dev/stdout on a test machine), so root writes the same device under another name.
    """
    real = Path("/dev", name)
    if not real.exists() or not stat.S_ISCHR(real.stat().st_mode):
        pytest.skip(f"{real} is not a character device here")
    if not IS_ROOT:
        if not os.access(real, os.W_OK):
            pytest.skip(f"{real} is not writable here")
        return real
    folder = tmp_path / "dev"
    folder.mkdir()
    private = folder / name
    try:
        os.mknod(private, stat.S_IFCHR | 0o666, real.stat().st_rdev)
        private.chmod(0o666)
        private.open("wb").close()
    except OSError as error:
        pytest.skip(f"root, but cannot make and open a private copy of {real}: {error}")
    return private


def _temporaries(folder: Path) -> list[str]:
    return [name for name in names(folder) if ".tmp-" in name]


@pytest.mark.parametrize("how", WRITERS)
def test_dev_null_is_written_through_and_stays_a_device(tmp_path, how):
    null = _device(tmp_path, "null")
    before = null.stat()
    check_outputs({"--json": null})
    WRITERS[how](null)
    after = null.stat()
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev, after.st_mode) == (
        before.st_ino,
        before.st_rdev,
        before.st_mode,
    )
    assert _temporaries(null.parent) == []


def test_a_link_to_dev_null_stays_a_link(tmp_path):
    null = _device(tmp_path, "null")
    link = tmp_path / "discard"
    link.symlink_to(null)
    write_output(link, CONTENT)
    assert link.is_symlink()
    assert stat.S_ISCHR(null.stat().st_mode)
    assert _temporaries(tmp_path) == []
    assert _temporaries(null.parent) == []


def test_a_device_that_refuses_the_write_raises_output_error(tmp_path):
    full = _device(tmp_path, "full")  # every write fails with ENOSPC
    with pytest.raises(OutputError) as error:
        write_output(full, CONTENT, option="--json")
    assert one_line(error) == f"--json {full}: cannot write: {os.strerror(errno.ENOSPC)}"
    assert stat.S_ISCHR(full.stat().st_mode)


def _fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    return fifo


@pytest.mark.parametrize("how", WRITERS)
def test_a_fifo_is_written_through_and_stays_a_fifo(tmp_path, how):
    fifo = _fifo(tmp_path)
    check_outputs({"--json": fifo})  # no reader yet: accepted, and never opened
    # The reader's end is opened here, before the thread starts, and the test also holds the
    # FIFO open for writing (O_RDWR never waits, on Linux) until the write is done: the reader
    # sees the end of the data only then, whatever the threads' timing, and never hangs.
    hold = os.open(fifo, os.O_RDWR)
    reading = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(reading, True)
    received: list[bytes] = []

    def read() -> None:
        with open(reading, "rb") as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        WRITERS[how](fifo)
    finally:
        os.close(hold)
        reader.join()
    assert received == [CONTENT]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert names(tmp_path) == ["pipe"]


def test_dash_is_standard_output_after_what_was_printed(capsys):
    check_outputs({"--json": "-"})
    print("the report")
    write_output("-", "text\n")
    write_output("-", b"bytes\n")
    write_output("-", lambda f: f.write(b"file object\n"))
    write_atomically("-", lambda temporary: temporary.write_bytes(b"path\n"))
    assert capsys.readouterr().out == "the report\ntext\nbytes\nfile object\npath\n"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="no /proc/self/fd here")
def test_a_link_to_descriptor_1_is_written_where_it_stands(tmp_path, capfd):
    # /dev/stdout is such a link; a private one is written, so that a wrong implementation
    # cannot replace the real one. Under capfd descriptor 1 is a regular file: reopening the
    # link would truncate it, and replacing would swap it out; the output must follow what was
    # printed, in the same file.
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    print("the report", flush=True)
    check_outputs({"--json": "/dev/stdout"})
    check_outputs({"--json": stdout})
    write_output(stdout, CONTENT)
    assert capfd.readouterr().out == "the report\n" + CONTENT.decode()
    assert names(tmp_path) == ["stdout"]
    assert stdout.is_symlink()


def test_bytes_on_standard_output_come_after_the_text_still_held_by_the_text_layer(monkeypatch):
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # holds text until flushed
    monkeypatch.setattr(sys, "stdout", stdout)
    print("the report")
    write_output("-", b"\x89PNG")
    stdout.flush()
    assert stdout.buffer.getvalue() == b"the report\n\x89PNG"


def test_text_that_standard_output_cannot_encode_is_one_line(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    with pytest.raises(OutputError) as error:
        write_output("-", "déjà vu", option="--json")
    assert one_line(error) == "--json - (standard output): cannot write: ascii cannot encode 'é'"


@pytest.mark.parametrize("how", ["-", "link to descriptor 1"])
def test_standard_output_redirected_to_a_file_gets_the_output_after_the_text(tmp_path, how):
    # As `python -m verifiers.run --json /dev/stdout > run.txt` does: Python buffers what it
    # prints when standard output is a file, so the printed text must be flushed first, and the
    # file must be written where it stands, not truncated by a reopening or replaced.
    target = "-"
    if how != "-":
        if not Path("/proc/self/fd").is_dir():
            pytest.skip("no /proc/self/fd here")
        target = str(tmp_path / "stdout")  # a private /dev/stdout: the real one is not at risk
        Path(target).symlink_to("/proc/self/fd/1")
    code = (
        "import sys; from verifiers.output import write_output; "
        "print('the report'); write_output(sys.argv[1], sys.argv[2].encode())"
    )
    captured = tmp_path / "run.txt"
    with open(captured, "wb") as stdout:
        subprocess.run(
            [sys.executable, "-c", code, target, CONTENT.decode()],
            cwd=REPO_ROOT,
            stdout=stdout,
            check=True,
            timeout=120,  # a guard against a hang, not a measurement
        )
    assert captured.read_bytes() == b"the report\n" + CONTENT


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="no /dev/fd here")
def test_a_descriptor_path_is_written_to_that_descriptor():
    # What the shell's --json >(jq .) hands over: /dev/fd/N, the writing end of a pipe.
    read_end, write_end = os.pipe()
    try:
        check_outputs({"--json": f"/dev/fd/{write_end}"})
        write_output(f"/dev/fd/{write_end}", CONTENT)
        os.close(write_end)
        with open(read_end, "rb", closefd=False) as pipe:
            assert pipe.read() == CONTENT
    finally:
        os.close(read_end)
        with contextlib.suppress(OSError):
            os.close(write_end)


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="no /dev/fd here")
def test_a_failing_writer_sends_nothing_down_a_pipe():
    read_end, write_end = os.pipe()

    def half_then_fail(file):
        file.write(b"half of it")
        raise RuntimeError("renderer failed")

    try:
        with pytest.raises(RuntimeError, match="renderer failed"):
            write_output(f"/dev/fd/{write_end}", half_then_fail)
        os.close(write_end)
        with open(read_end, "rb", closefd=False) as pipe:
            assert pipe.read() == b""
    finally:
        os.close(read_end)
        with contextlib.suppress(OSError):
            os.close(write_end)


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="no /dev/fd here")
def test_a_descriptor_that_is_closed_or_read_only_is_refused():
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        with pytest.raises(OutputError) as error:
            check_outputs({"--json": f"/dev/fd/{read_end}"})
        assert "is not open for writing" in one_line(error)
        with pytest.raises(OutputError) as error:
            check_outputs({"--json": f"/dev/fd/{write_end}"})
        assert f"file descriptor {write_end} is not open" in one_line(error)
    finally:
        os.close(read_end)


# --- Pre-flight refusals ----------------------------------------------------------------------


def _refused(outputs, protected=None) -> str:
    with pytest.raises(OutputError) as error:
        check_outputs(outputs, protected)
    return one_line(error)


def test_valid_outputs_pass_and_the_check_leaves_nothing_behind(tmp_path):
    (tmp_path / "old.json").write_bytes(b"old")
    check_outputs(
        {"--json": tmp_path / "old.json", "--plot": str(tmp_path / "new.png"), "--gif": None},
        {"the input data file": tmp_path / "data.csv", "the --manual source": None},
    )
    assert names(tmp_path) == ["old.json"]
    assert (tmp_path / "old.json").read_bytes() == b"old"


def test_the_same_path_twice_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = _refused({"--json": "out", "--plot": tmp_path / "out"})
    assert message == f"--plot {tmp_path / 'out'}: the same output as --json out; give each " + (
        "output its own path"
    )


def test_two_names_of_one_file_are_refused(tmp_path):
    real = tmp_path / "real"
    real.write_bytes(b"")
    (tmp_path / "soft").symlink_to(real)
    os.link(real, tmp_path / "hard")
    assert "the same output as --json" in _refused({"--json": real, "--plot": tmp_path / "soft"})
    assert "the same output as --json" in _refused({"--json": real, "--plot": tmp_path / "hard"})
    assert "the same output as --json" in _refused(
        {"--json": tmp_path / "soft", "--plot": tmp_path / "hard"}
    )


@pytest.mark.parametrize("second", ["-", "/dev/stdout"])
def test_standard_output_twice_is_refused(second):
    if second != "-" and not Path(second).exists():
        pytest.skip(f"no {second} here")
    message = _refused({"--json": "-", "--plot": second})
    assert message.startswith(f"--plot {second}")
    assert "the same output as --json - (standard output)" in message


@pytest.mark.parametrize("how", ["same path", "relative path", "symlink", "hard link"])
def test_an_output_on_a_protected_file_is_refused(tmp_path, monkeypatch, how):
    data = tmp_path / "data.csv"
    data.write_bytes(b"x,y\n1,2\n")
    output = {
        "same path": data,
        "relative path": Path("sub", "..", "data.csv"),
        "symlink": tmp_path / "link.csv",
        "hard link": tmp_path / "hard.csv",
    }[how]
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(data)
    os.link(data, tmp_path / "hard.csv")
    monkeypatch.chdir(tmp_path)
    message = _refused({"--json": output}, {"the input data file": data})
    assert message == f"--json {output}: refusing to overwrite the input data file {data}"
    assert data.read_bytes() == b"x,y\n1,2\n"


def test_the_old_single_output_check_still_protects_the_input(tmp_path):
    data = tmp_path / "data.csv"
    data.write_bytes(b"x,y\n")
    with pytest.raises(OutputError, match="refusing to overwrite the input data file"):
        check_output_path(data, "--plot", [data])
    check_output_path(tmp_path / "plot.png", "--plot", [data])


def test_a_folder_is_refused(tmp_path):
    assert _refused({"--json": tmp_path}) == f"--json {tmp_path}: is a directory"
    (tmp_path / "link").symlink_to(tmp_path)
    message = _refused({"--json": tmp_path / "link"})
    assert message == f"--json {tmp_path / 'link'}: is a directory (where its symbolic link points)"


def test_a_missing_folder_is_refused(tmp_path):
    target = tmp_path / "no" / "report.json"
    assert _refused({"--json": target}) == (
        f"--json {target}: the folder {tmp_path / 'no'} does not exist"
    )


def test_a_symlink_into_a_missing_folder_is_refused(tmp_path):
    link = tmp_path / "report.json"
    link.symlink_to(tmp_path / "gone" / "report.json")
    assert _refused({"--json": link}) == (
        f"--json {link}: the folder {tmp_path / 'gone'} (where its symbolic link points) "
        "does not exist"
    )


def test_a_file_used_as_a_folder_is_refused(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    target = tmp_path / "file" / "report.json"
    assert _refused({"--json": target}) == f"--json {target}: {tmp_path / 'file'} is not a folder"


def test_a_symlink_loop_is_refused(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    assert "too many levels of symbolic links" in _refused({"--json": tmp_path / "a"})


def test_a_socket_is_refused():
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no Unix sockets here")
    with tempfile.TemporaryDirectory() as folder:  # short: socket paths are limited to ~100 bytes
        path = Path(folder, "s")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            assert "is a socket" in _refused({"--json": path})
            with pytest.raises(OutputError, match="is a socket"):
                write_output(path, CONTENT)


def test_a_path_with_a_newline_is_shown_on_one_line(tmp_path):
    target = tmp_path / "two\nlines" / "report.json"
    message = _refused({"--json": target})
    assert repr(str(target)) in message


# check_outputs run by user 65534 in a fresh interpreter, started as root: it imports what it
# needs first (the interpreter itself may sit where user 65534 cannot read), then drops to user
# 65534 and prints "accepted", or "refused:" and the message. A fresh process, not os.fork():
# this test process has loaded multithreaded libraries (jax) by then, and forking one of those
# is unsafe.
_AS_NOBODY = """
import json, os, sys
from pathlib import Path
from verifiers.output import OutputError, check_outputs
outputs = {option: Path(path) for option, path in json.loads(sys.argv[1]).items()}
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
try:
    check_outputs(outputs)
    print("accepted", end="")
except OutputError as error:
    print("refused:" + str(error), end="")
"""


def _refused_as_nobody(outputs) -> str | None:
    """check_outputs run by user 65534 in a child process: the message, or None if accepted."""
    import json

    result = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY, json.dumps({k: str(v) for k, v in outputs.items()})],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout, f"the child process failed before answering: {result.stderr}"
    return None if result.stdout == "accepted" else result.stdout.removeprefix("refused:")


def test_a_folder_without_write_permission_is_refused(tmp_path):
    if IS_ROOT:
        # chmod does not stop root: check as an ordinary user, in a folder it can reach.
        outer = Path(tempfile.mkdtemp(dir="/tmp"))
        outer.chmod(0o755)
    else:
        outer = tmp_path
    folder = outer / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        outputs = {"--json": folder / "report.json"}
        message = _refused_as_nobody(outputs) if IS_ROOT else _refused(outputs)
        assert message == (
            f"--json {folder / 'report.json'}: cannot create files in the folder {folder}: "
            f"{os.strerror(errno.EACCES)}"
        )
        assert names(folder) == []
    finally:
        folder.chmod(0o755)
        if IS_ROOT:
            folder.rmdir()
            outer.rmdir()


def test_a_folder_that_refuses_new_files_even_to_root_is_refused():
    # sysfs refuses to create files for everyone, root included, while os.access says yes.
    folder = Path("/sys")
    if not folder.is_dir():
        pytest.skip("no /sys here")
    try:
        handle, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        pass
    else:
        os.close(handle)
        os.unlink(probe)
        pytest.skip("/sys accepts new files here")
    message = _refused({"--plot": folder / "plot.png"})
    assert message.startswith(f"--plot {folder / 'plot.png'}: cannot create files in the folder")


@pytest.mark.skipif(IS_ROOT, reason="root may write read-only files and FIFOs")
@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_a_read_only_file_or_fifo_is_refused(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_bytes(b"keep me")
    else:
        _fifo(tmp_path).rename(target)
    target.chmod(0o444)
    assert "permission denied" in _refused({"--json": target})


# --- Failures while writing -------------------------------------------------------------------


def _half_then(exception: BaseException):
    def writer(file) -> None:
        file.write(b"half of the ")
        raise exception

    return writer


def _half_path_then(exception: BaseException):
    def writer(temporary: Path) -> None:
        temporary.write_bytes(b"half of the ")
        raise exception

    return writer


# Write half an output, then raise: through a file object, or through a temporary's name.
FAILING_WRITES = {
    "file object": lambda target, error: write_output(target, _half_then(error), option="--json"),
    "path": lambda target, error: write_atomically(target, _half_path_then(error), option="--json"),
}


@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "new"])
@pytest.mark.parametrize("form", FAILING_WRITES)
def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary(tmp_path, existing, form):
    target = tmp_path / "report.json"
    if existing:
        target.write_bytes(b"old content")
    bug = RuntimeError("renderer failed")
    with pytest.raises(RuntimeError, match="renderer failed"):  # not disguised as OutputError
        FAILING_WRITES[form](target, bug)
    assert names(tmp_path) == (["report.json"] if existing else [])
    if existing:
        assert target.read_bytes() == b"old content"


@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "new"])
@pytest.mark.parametrize("form", FAILING_WRITES)
def test_an_os_error_while_writing_is_one_line_naming_the_output(tmp_path, existing, form):
    target = tmp_path / "report.json"
    if existing:
        target.write_bytes(b"old content")
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(OutputError) as error:
        FAILING_WRITES[form](target, full)
    assert one_line(error) == f"--json {target}: cannot write: {os.strerror(errno.ENOSPC)}"
    assert names(tmp_path) == (["report.json"] if existing else [])
    if existing:
        assert target.read_bytes() == b"old content"


def test_an_interrupt_while_writing_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b"old content")
    with pytest.raises(KeyboardInterrupt):
        write_output(target, _half_then(KeyboardInterrupt()))
    assert names(tmp_path) == ["report.json"]
    assert target.read_bytes() == b"old content"


def test_a_folder_that_vanished_since_the_check_gives_output_error(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    check_outputs({"--json": folder / "report.json"})
    folder.rmdir()
    with pytest.raises(OutputError) as error:
        write_output(folder / "report.json", CONTENT, option="--json")
    assert "does not exist" in one_line(error)


def test_binary_output_to_standard_output_goes_through_the_buffer(capfdbinary):
    print("the report")
    write_output("-", b"\x89PNG\r\n\x1a\n")
    assert capfdbinary.readouterr().out == b"the report\n\x89PNG\r\n\x1a\n"
