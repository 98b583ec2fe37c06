"""The command line through a subprocess: exit codes, output, JSON, plots, skipped engines."""

from __future__ import annotations

import json
import os
import struct
import sys

import pytest
from rich.cells import cell_len

from verifiers.engines import ENGINE_NAMES, optional_packages

from .helpers import (
    DATA_CSV,
    PUBLISHED,
    REPO_ROOT,
    has,
    refresh_output,
    run_cli,
    run_cli_without,
)

FAST = ["--engines", "loop,manual,minigrad,numeric", "--iterations", "20"]


def test_default_run_prints_the_tables_and_agrees():
    result = run_cli(str(DATA_CSV))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OK: all" in out
    for figure in (PUBLISHED["b"], PUBLISHED["w"], PUBLISHED["error"], PUBLISHED["start_error"]):
        assert repr(figure) in out
    for heading in ("Loss and gradient", "Hessian", "Gradient descent", "Least-squares optimum"):
        assert heading in out
    assert result.stderr == ""


def test_csv_defaults_to_the_bundled_data():
    result = run_cli(*FAST, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "OK: all 4 engines agree" in result.stdout


def test_help_explains_every_option():
    result = run_cli("--help")
    assert result.returncode == 0
    for option in (
        "--engines", "--manual", "--lr", "--iterations", "--start", "--points", "--seed",
        "--rtol", "--atol", "--device", "--dtype", "--json", "--plot", "--animate", "--quiet",
        "--full-descents",
        "Exit status",
    ):  # fmt: skip
        assert option in result.stdout, option


def test_json_report(tmp_path):
    target = tmp_path / "report.json"
    result = run_cli(str(DATA_CSV), *FAST, "--json", str(target), "--quiet")
    assert result.returncode == 0, result.stderr
    document = json.loads(target.read_text())
    assert document["ok"] is True
    assert document["data"]["rows"] == 100
    assert document["data"]["features"] == 1
    assert document["data"]["dtype"] == "float64"
    assert document["settings"]["iterations"] == 20
    assert document["settings"]["start"] == {"b": 0.0, "w": [0.0]}
    assert set(document["engines"]) == {"loop", "manual", "minigrad", "numeric"}
    for name, entry in document["engines"].items():
        assert entry["status"] == "ok", name
        assert set(entry["gradient"]) == {"loss", "b", "w", "params"}
        assert entry["gradient"]["params"] == {
            "b": entry["gradient"]["b"],
            "w": entry["gradient"]["w"],
        }
        assert {"b", "w", "loss", "seconds"} <= set(entry["descent"])
        assert isinstance(entry["reason"], str)
        assert isinstance(entry["device"], str)
    assert document["engines"]["loop"]["gradient"]["loss"] == PUBLISHED["start_error"]
    assert set(document["optimum"]) == {"b", "w"}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left


def test_two_runs_write_identical_json_apart_from_timing(tmp_path):
    documents = []
    for name in ("first.json", "second.json"):
        result = run_cli(str(DATA_CSV), *FAST, "--json", str(tmp_path / name), "--quiet")
        assert result.returncode == 0, result.stderr
        document = json.loads((tmp_path / name).read_text())
        for entry in document["engines"].values():
            assert entry.pop("setup_seconds") >= 0
            assert entry["descent"].pop("seconds") > 0
        documents.append(document)
    assert documents[0] == documents[1]


def _wrong_formula(tmp_path, body):
    path = tmp_path / "mine.py"
    path.write_text("def gradient(b, w, X, y):\n    r = y - (X @ w + b)\n" + body)
    return f"{path}:gradient"


@pytest.mark.parametrize(
    ("body", "parameter", "diagnosis"),
    [
        ("    return -(1/len(y))*r.sum(), -(1/len(y))*(X.T @ r)\n", "b", "is missing"),
        ("    return (2/len(y))*r.sum(), -(2/len(y))*(X.T @ r)\n", "b", "sign flipped"),
        ("    return -(2/len(y))*r.sum(), -2*(X.T @ r)\n", "w", "mean belongs"),
    ],
    ids=["factor-2-missing", "sign-flipped", "sum-instead-of-mean"],
)
def test_a_wrong_manual_formula_exits_1_naming_engine_and_parameter(
    tmp_path, body, parameter, diagnosis
):
    spec = _wrong_formula(tmp_path, body)
    result = run_cli(str(DATA_CSV), *FAST, "--manual", spec, "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("MISMATCH"))
    assert (
        lines[at]
        == f"MISMATCH: manual (your formula) disagrees: gradient: dL/d{parameter} at start"
    )
    assert lines[at + 1].startswith("  manual  = ")  # both values, then by how much
    assert lines[at + 2].startswith("  numeric = ")
    assert lines[at + 3].startswith("  difference ")
    flat = " ".join(result.stdout.split())
    # A path longer than a line is broken across lines: compare without the spaces.
    assert f"WRONG:yourformula({spec})disagrees" in "".join(flat.split())
    assert "diagnosis: every derivative is" in flat or f"diagnosis: dL/d{parameter}" in flat
    assert diagnosis in flat


def test_the_formula_under_test_is_named_first(tmp_path):
    body = "    return -(2/len(y))*r.sum(), -(2/len(y))*(X.T @ r)\n"
    spec = _wrong_formula(tmp_path, body)
    result = run_cli(str(DATA_CSV), *FAST, "--manual", spec)
    assert result.returncode == 0, result.stdout + result.stderr
    # A path longer than a line is broken across lines: compare without the spaces.
    first = "".join(result.stdout.split("\n\n")[0].split())
    assert first.startswith(f"Undertest:yourgradient,gradient()in{tmp_path / 'mine.py'}")
    assert "".join(result.stdout.split()).endswith(
        "".join(
            f"OK: your formula ({spec}) agrees with loop, minigrad and numeric: the gradient at "
            "26 check points, the Hessian (3 engines), the descent (20 iterations)".split()
        )
    )


@pytest.mark.parametrize("columns", [None, "60", "120"])
def test_the_output_fits_columns_or_80_when_piped(columns):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = columns
    result = run_cli(str(DATA_CSV), *FAST, env=env)
    assert result.returncode == 0, result.stderr
    width = int(columns or 80)
    lines = result.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= width
    assert all(line == line.rstrip() for line in lines)
    assert "…" not in result.stdout


def test_help_names_the_console_script(monkeypatch):
    from verifiers.run import build_parser

    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/verify-gradients", "--help"])
    assert build_parser().format_help().startswith("usage: verify-gradients ")
    monkeypatch.setattr(sys, "argv", ["/repo/verifiers/run.py"])
    assert build_parser().format_help().startswith("usage: python -m verifiers.run ")


def test_progress_only_for_long_runs_on_a_terminal(monkeypatch):
    from verifiers import run

    class Terminal:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    long = run.PROGRESS_THRESHOLD
    for out, err, quiet, steps, expected in [
        (True, True, False, long, True),
        (True, True, False, long - 1, False),  # short
        (True, True, True, long, False),  # --quiet
        (False, True, False, long, False),  # `> report.txt`, `| less`
        (True, False, False, long, False),  # stderr redirected
    ]:
        monkeypatch.setattr(sys, "stdout", Terminal(out))
        monkeypatch.setattr(sys, "stderr", Terminal(err))
        assert run.wants_progress(quiet, steps) is expected


def test_a_correct_manual_formula_passes(tmp_path):
    body = "    return -(2/len(y))*r.sum(), -(2/len(y))*(X.T @ r)\n"
    result = run_cli(str(DATA_CSV), *FAST, "--manual", _wrong_formula(tmp_path, body), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--lr", "0"], "--lr must be a positive finite number"),
        (["--lr=-1e-4"], "--lr must be a positive finite number"),
        (["--lr", "inf"], "--lr must be a positive finite number"),
        (["--iterations", "-5"], "--iterations must be between 0 and 10,000,000, not -5"),
        (["--engines", "manual,tensorflow"], "unknown engine 'tensorflow'"),
        (["--start", "1,2,3"], "--start needs 2 values (b,w) for 1 feature, got 3"),
        (["--start", "1,x"], "expected comma-separated numbers"),
        (["--manual", "nowhere.py:f"], "nowhere.py does not exist"),
        (["--manual", "verifiers/models/mse.py:nothing"], "has no function named 'nothing'"),
        (["--dtype", "float16"], "invalid choice: 'float16'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_2_with_one_line(arguments, message):
    result = run_cli(str(DATA_CSV), *arguments)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_manual_formula_that_raises_or_returns_the_wrong_shape_exits_2(tmp_path):
    raising = _wrong_formula(tmp_path, "    return 1 / 0\n")
    result = run_cli(str(DATA_CSV), *FAST, "--manual", raising)
    assert result.returncode == 2
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "mine.py").unlink()
    shaped = _wrong_formula(tmp_path, "    return 1.0, r[:3]\n")
    result = run_cli(str(DATA_CSV), *FAST, "--manual", shaped)
    assert result.returncode == 2
    assert "array of shape (1,)" in result.stderr
    assert "ndarray of shape (3,)" in result.stderr


def test_an_unstable_learning_rate_is_warned_about_before_the_descent():
    result = run_cli(str(DATA_CSV), *FAST, "--lr", "0.001", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr  # all engines diverge alike
    assert result.stderr.startswith(
        "warning: --lr 0.001 is above the largest stable learning rate 2/λ_max = 0.000401296"
    )
    assert "diverged" not in result.stderr


def test_values_whose_squares_overflow_are_refused(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("1e154,2e154\n3e154,1e154\n5e154,7e154\n")
    result = run_cli(str(path), *FAST)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {path}: values up to 7e+154 are too large: the sums of their squares overflow "
        "float64 "
        "(rescale the data)\n"
    )


@pytest.mark.slow  # the API's refusal is in the fast tier (test_engines.py)
def test_cuda_without_a_gpu_exits_2():
    if has("torch"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    result = run_cli(str(DATA_CSV), "--device", "cuda", "--iterations", "5")
    assert result.returncode == 2
    if has("torch"):
        assert "--device cuda was asked for, but torch sees no CUDA GPU" in result.stderr
    else:
        assert "--device cuda is for torch, but torch: the torch package is not installed" in (
            result.stderr
        )
    assert len(result.stderr.strip().splitlines()) == 1


def test_refuses_to_overwrite_the_input_csv(tmp_path):
    data = tmp_path / "data.csv"
    data.write_bytes(DATA_CSV.read_bytes())
    for option in ("--json", "--plot", "--animate"):
        result = run_cli(str(data), *FAST, option, str(data))
        assert result.returncode == 2
        assert "refusing to overwrite the input data file" in result.stderr
        assert data.read_bytes() == DATA_CSV.read_bytes()


def test_output_into_a_missing_folder_is_refused_before_the_run(tmp_path):
    result = run_cli(str(DATA_CSV), *FAST, "--json", str(tmp_path / "no" / "r.json"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_missing_packages_are_skipped_with_the_install_command(tmp_path):
    target = tmp_path / "r.json"
    optional = optional_packages()  # engine -> package, from the registry
    result = run_cli_without(
        sorted(set(optional.values())), str(DATA_CSV), "--iterations", "20", "--json", str(target)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(target.read_text())
    torch_entry = document["engines"]["torch"]
    assert torch_entry["status"] == "skipped"
    assert 'pip install "torch==2.13.0"' in torch_entry["reason"]
    assert document["engines"]["jax"]["status"] == "skipped"
    assert "pip install jax jaxlib" in document["engines"]["jax"]["reason"]
    for name in optional:
        assert document["engines"][name]["status"] == "skipped", name
    assert "skipped" in result.stdout
    assert f"OK: all {len(ENGINE_NAMES) - len(optional)} engines agree" in result.stdout


def test_a_missing_package_fails_when_its_engine_is_asked_for():
    result = run_cli_without(["torch"], str(DATA_CSV), "--engines", "manual,torch")
    assert result.returncode == 2
    assert (
        'torch: the torch package is not installed (install with: pip install "torch==2.13.0")'
        in (result.stderr)
    )


@pytest.mark.slow  # the plot itself is drawn in the fast tier (test_plot.py)
@pytest.mark.skipif(not has("matplotlib"), reason="matplotlib is not installed")
def test_plot_is_a_png_of_the_expected_size(tmp_path):
    target = tmp_path / "descent.png"
    result = run_cli(str(DATA_CSV), *FAST, "--plot", str(target), "--quiet")
    assert result.returncode == 0, result.stderr
    header = target.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1500, 600)
    assert [p.name for p in tmp_path.iterdir()] == ["descent.png"]


@pytest.mark.slow  # the animation itself is drawn in the fast tier (test_plot.py)
@pytest.mark.skipif(not has("matplotlib"), reason="matplotlib is not installed")
def test_animate_writes_a_gif_of_every_step_of_a_short_descent(tmp_path):
    from PIL import Image

    target = tmp_path / "descent.gif"
    result = run_cli(str(DATA_CSV), *FAST, "--animate", str(target), "--quiet")
    assert result.returncode == 0, result.stderr
    with Image.open(target) as image:
        assert (image.format, image.n_frames, image.size) == ("GIF", 21, (640, 480))
    assert [p.name for p in tmp_path.iterdir()] == ["descent.gif"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("option", ["--plot", "--animate"])
def test_pictures_without_matplotlib_exit_2_before_any_engine_runs(tmp_path, option):
    marker = tmp_path / "called"
    formula = tmp_path / "mine.py"
    formula.write_text(
        f"def gradient(b, w, X, y):\n    open({str(marker)!r}, 'w').close()\n"
        "    return 0.0, 0 * w\n"
    )
    target = tmp_path / "picture"
    result = run_cli_without(
        ["matplotlib"], str(DATA_CSV), *FAST, "--manual", f"{formula}:gradient", option,
        str(target),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {option} {target}: plotting needs matplotlib: pip install "
        '"minigrad-verifiers[plot]"\n'
    )
    assert result.stdout == ""
    assert not marker.exists()  # no engine ran the formula
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py"]


def test_animate_may_not_share_a_path_with_another_output(tmp_path):
    target = tmp_path / "out"
    result = run_cli(str(DATA_CSV), *FAST, "--json", str(target), "--animate", str(target))
    assert result.returncode == 2
    assert "the same output as --json" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _every_engine_on_the_cpu() -> bool:
    if not (has("torch") and has("jax")):
        return False
    import jax
    import torch

    return not torch.cuda.is_available() and jax.default_backend() == "cpu"


@pytest.mark.skipif(
    not _every_engine_on_the_cpu(), reason="the sample is every engine's run on the CPU"
)
def test_the_docs_sample_is_what_the_run_prints_today():
    refresh = refresh_output()
    docs = REPO_ROOT / "docs" / "gradient-descent.md"
    (block,) = refresh.blocks(docs)  # its one sample: one run, so the test stays fast
    fresh = refresh.sample(block.args, block.tail)
    assert block.text.rstrip("\n") == fresh, "run python docs/refresh_output.py"


# ---- a bug is never read as a verdict ---------------------------------------------------------
@pytest.mark.parametrize("program", ["run", "check", "examples"])
def test_an_internal_error_exits_3_with_one_line(program, monkeypatch, capsys, tmp_path):
    """Exit status 1 is "wrong derivative"; an uncaught exception would also give 1."""
    import verifiers.check
    import verifiers.run

    def broken(*args, **kwargs):
        raise RuntimeError("an invariant broke\nsecond line")

    if program == "run":
        monkeypatch.setattr(verifiers.run, "verify", broken)
        status = verifiers.run.main([str(DATA_CSV), "--engines", "manual", "--iterations", "1"])
    elif program == "examples":
        import verifiers.examples.__main__ as examples

        monkeypatch.setattr(examples, "write_examples", broken)
        status = examples.main([str(tmp_path / "out")])
    else:
        monkeypatch.setattr(verifiers.check, "_check", broken)
        monkeypatch.setattr(verifiers.check, "can_isolate", lambda: False)
        status = verifiers.check.main([str(REPO_ROOT / "docs" / "functions" / "layernorm.py")])
    assert status == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line
    assert f"internal error: python -m verifiers.{program} stopped on RuntimeError: an " in err
    assert "second line" not in err
    assert "Traceback" not in err
