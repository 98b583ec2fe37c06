"""The worked examples ship with the package: ``python -m verifiers.examples DIR`` writes them out
(with their data), the same files as the repository's, and the README's commands run there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from verifiers.examples import EXAMPLE_FILES, example_files, write_examples
from verifiers.examples.__main__ import main

from .helpers import REPO_ROOT, has, install_wheel


def test_the_shipped_files_are_the_repository_s_byte_for_byte():
    shipped = example_files()
    assert set(shipped) == set(EXAMPLE_FILES)
    for target, content in shipped.items():
        assert (REPO_ROOT / target).read_bytes() == content, (
            f"{target} changed: copy it to verifiers/{EXAMPLE_FILES[target]}"
        )


def test_every_worked_example_and_data_set_is_shipped():
    examples = {
        f"docs/models/examples/{p.name}" for p in (REPO_ROOT / "docs/models/examples").glob("*.py")
    }
    data = {f"data/{p.name}" for p in (REPO_ROOT / "data").glob("*.csv")}
    assert examples | data <= set(EXAMPLE_FILES)


def test_the_command_writes_them_and_never_overwrites(tmp_path, capsys):
    folder = tmp_path / "examples"
    assert main([str(folder)]) == 0
    out = capsys.readouterr().out
    for target in EXAMPLE_FILES:
        assert (folder / target).read_bytes() == (REPO_ROOT / target).read_bytes()
        assert f"wrote {folder / target}" in out
    assert main([str(folder)]) == 0  # the same files: nothing to do
    assert "already" in capsys.readouterr().out
    mine = folder / "docs/models/examples/mse.py"
    mine.write_text("# my own work\n")
    (folder / "data/wave.csv").unlink()
    assert main([str(folder)]) == 2
    assert f"refusing to overwrite what is already there: {mine}" in capsys.readouterr().err
    assert mine.read_text() == "# my own work\n"
    assert not (folder / "data/wave.csv").exists()  # nothing written when one file is in the way


def test_writing_into_a_file_is_an_error(tmp_path):
    from verifiers.examples import ExamplesError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ExamplesError, match="cannot write the examples"):
        write_examples(blocker)


@pytest.mark.slow
@pytest.mark.skipif(not has("setuptools"), reason="building a wheel needs setuptools")
def test_an_installed_wheel_writes_the_examples_and_the_readme_commands_run(tmp_path):
    site = install_wheel(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))

    def run(*args: str, cwd=elsewhere) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip

    written = run("verifiers.examples", "my-examples")
    assert written.returncode == 0, written.stderr
    folder = elsewhere / "my-examples"
    for target in EXAMPLE_FILES:
        assert (folder / target).read_bytes() == (REPO_ROOT / target).read_bytes()
    numpy_engines = ["--engines", "manual,minigrad,numeric", "--iterations", "20", "--quiet"]
    slip = run("verifiers.run", "data/data.csv", "--manual", "docs/models/examples/mse.py:slip",
               *numpy_engines, cwd=folder)  # fmt: skip
    assert slip.returncode == 1, slip.stdout + slip.stderr
    assert "diagnosis: every derivative is half the true value" in slip.stdout
    logistic = run(
        "verifiers.run", "data/binary.csv", "--model", "logistic", "--manual",
        "docs/models/examples/logistic.py:gradient", *numpy_engines, cwd=folder,
    )  # fmt: skip
    assert logistic.returncode == 0, logistic.stdout + logistic.stderr
    loss = run("verifiers.run", "data/data.csv", "--loss", "docs/models/examples/log_cosh.py:loss",
               "--manual", "docs/models/examples/log_cosh.py:gradient", *numpy_engines,
               cwd=folder)  # fmt: skip
    assert loss.returncode == 0, loss.stdout + loss.stderr
    assert "OK: your formula (docs/models/examples/log_cosh.py:gradient) agrees" in loss.stdout
