"""The command line ``python -m verifiers.check FILE.py``: exit statuses, the report, the JSON, and
bad files (one line naming the file and line, exit 2, no traceback, no --json written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.verifiers.helpers import INSTALLED, OPTIONAL_INSTALLED, refresh_output
from verifiers.functions import CheckFileError, HandDerivativeError
from verifiers.functions.api import check_problem
from verifiers.functions.problem import problem_from_file

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST = ("--engines", "minigrad,numeric")
# where the layer norm example's vjp is defined (the report names it)
LAYERNORM_VJP = next(
    i + 1
    for i, line in enumerate((REPO_ROOT / "docs/functions/layernorm.py").read_text().splitlines())
    if line.startswith("def vjp(")
)


def run_check(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "verifiers.check", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write(tmp_path: Path, text: str, name: str = "check.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """\
import numpy as np

inputs = {"x": (3, 4), "b": (4,)}

def forward(x, b, *, xp):
    return xp.tanh(x + b)

def vjp(g, x, b):
    dz = g * (1 - np.tanh(x + b) ** 2)
    return {"x": dz, "b": dz.sum(axis=0)}
"""


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


# ---- the worked examples -------------------------------------------------------------------------
def test_a_right_vjp_exits_0_with_the_report_and_json(tmp_path):
    out = tmp_path / "report.json"
    result = run_check("docs/functions/layernorm.py", *FAST, "--json", str(out))
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # as one line: wherever the report wraps
    assert "docs/functions/layernorm.py: forward(x (4, 6), gamma (6,), beta (6,)) -> (4, 6)" in text
    where = f"docs/functions/layernorm.py:{LAYERNORM_VJP}"
    assert f"OK: your vjp ({where}) agrees with minigrad and numeric" in text
    assert "(h²: right;" in text
    document = json.loads(out.read_text())
    vjp = document["derivatives"]["vjp"]
    assert document["ok"]
    assert vjp["ok"]
    assert vjp["first_wrong_step"] is None
    assert set(vjp["inputs"]) == {"x", "gamma", "beta"}
    worst = vjp["inputs"]["x"]["worst"]
    assert vjp["inputs"]["x"]["ok"]
    assert len(worst["index"]) == 2
    assert abs(worst["yours"] - worst["expected"]) <= worst["allowed"]
    assert vjp["taylor"]["right"] is True
    assert document["settings"]["engines"] == ["minigrad", "numeric"]


def test_a_slip_exits_1_with_the_diagnosis_and_the_first_wrong_step(tmp_path):
    out = tmp_path / "report.json"
    result = run_check("docs/functions/backprop.py:gradient_slip", *FAST, "--json", str(out))
    assert result.returncode == 1, result.stderr
    text = " ".join(result.stdout.split())
    assert "first wrong step: dZ1 (dZ2 and dA1 are right)" in text
    assert "1 - Z1² where 1 - A1² belongs" in text
    gradient = json.loads(out.read_text())["derivatives"]["gradient"]
    assert not gradient["ok"]
    assert gradient["first_wrong_step"] == "Z1"
    assert gradient["taps"]["A1"]["ok"]
    assert not gradient["taps"]["Z1"]["ok"]
    assert not gradient["inputs"]["W1"]["ok"]
    assert gradient["inputs"]["W2"]["ok"]
    assert gradient["diagnosis"]["pattern"] == "input-for-output"
    worst = gradient["taps"]["Z1"]["worst"]
    assert abs(worst["yours"] - worst["expected"]) > worst["allowed"]


@pytest.mark.parametrize(
    ("spec", "status", "words"),
    [
        ("layernorm.py:vjp_slip", 1, "it is not summed back over the axis gamma is broadcast"),
        ("softmax_cross_entropy.py", 0, "OK: your hvp"),
        ("softmax_cross_entropy.py:gradient_slip", 1, "a sum where a mean belongs?"),
        ("normalize_jvp.py", 0, "OK: your jvp"),
        ("normalize_jvp.py:jvp_slip", 1, "the Jacobian is transposed"),
    ],
)
def test_the_worked_examples_in_process(spec, status, words):
    """Each example's right derivative agrees and its slip is caught and named (in process, on
    the numpy engines: the command line runs the same function)."""
    from verifiers.functions.report import text_lines

    report = check_problem(problem_from_file(f"docs/functions/{spec}"), engines=FAST[1].split(","))
    assert (0 if report.ok else 1) == status
    assert words in " ".join(" ".join(text_lines(report, 80)).split())


def test_every_engine_installed_on_a_worked_example():
    result = run_check("docs/functions/layernorm.py", "--quiet")
    assert result.returncode == 0, result.stderr
    names = [n for n in INSTALLED if n not in ("loop", "manual")]
    text = " ".join(result.stdout.split())
    assert text.startswith(f"OK: your vjp (docs/functions/layernorm.py:{LAYERNORM_VJP}) agrees")
    for name in names:
        assert name in text


def test_without_the_optional_packages_the_numpy_engines_decide(tmp_path):
    """As in the numpy-only install: torch, jax and autograd are skipped with the reason."""
    # The check runs in a fresh child interpreter: the packages are hidden from it by modules of
    # the same names, first on the path, that fail to import as a missing package does.
    hidden = tmp_path / "hidden"
    for package in ("torch", "jax", "autograd"):
        (hidden / package).mkdir(parents=True)
        (hidden / package / "__init__.py").write_text(
            f"raise ModuleNotFoundError('No module named {package}', name={package!r})\n"
        )
    path = write(tmp_path, GOOD)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hidden), str(REPO_ROOT)]))
    result = subprocess.run(
        [sys.executable, "-m", "verifiers.check", str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for package in ("torch", "jax", "autograd"):
        assert f"skipped: {package}: the {package} package is not installed" in result.stdout
    assert "agrees with minigrad and numeric at 8 points" in " ".join(result.stdout.split())


def test_json_on_standard_output_alone(tmp_path):
    result = run_check(str(write(tmp_path, GOOD)), *FAST, "--json", "-", "--quiet")
    assert result.returncode == 0
    assert json.loads(result.stdout)["derivatives"]["vjp"]["ok"] is True
    assert "OK: your vjp" in result.stderr


def test_float32_on_the_command_line(tmp_path):
    result = run_check(str(write(tmp_path, GOOD)), *FAST, "--dtype", "float32", "--points", "2")
    assert result.returncode == 0, result.stderr
    assert "-> (3, 4), float32" in result.stdout
    assert "at 2 points" in result.stdout


# ---- bad files: one line, exit 2 -----------------------------------------------------------------
BAD_FILES = [
    ("import numpy as np\ninputs = {'x': (3,)}\n", "no function forward(...)"),
    (
        "inputs = 3\ndef forward(x, *, xp):\n    return x\ndef vjp(g, x):\n    return {'x': g}\n",
        "inputs must be a dict of shapes by input name",
    ),
    (
        "inputs = {'x': 'big'}\ndef forward(x, *, xp):\n    return x\n"
        "def vjp(g, x):\n    return {'x': g}\n",
        "inputs['x'] is 'big', not a shape",
    ),
    (
        "inputs = {'x': (3,), 'b': (3,)}\ndef forward(x, b, *, xp):\n    return x * b\n"
        "def vjp(g, x, b):\n    return {'x': g * b}\n",
        "check.py:4: vjp returned no gradient for b",
    ),
    (
        "inputs = {'x': (3,), 'b': (3,)}\ndef forward(x, b, *, xp):\n    return x * b\n"
        "def vjp(g, x, b):\n    return {'x': g * b, 'b': g[:2]}\n",
        "check.py:4: vjp returned a gradient of shape (2,) for b, whose shape is (3,)",
    ),
    (
        "inputs = {'x': (3,)}\ndef forward(x, *, xp):\n    return x / 0 + undefined\n"
        "def vjp(g, x):\n    return {'x': g}\n",
        "check.py:3: forward raised NameError",
    ),
    (
        "inputs = {'x': (3,)}\ndef forward(x):\n    return x\n"
        "def vjp(g, x):\n    return {'x': g}\n",
        "forward must take the array namespace as the keyword xp",
    ),
    ("inputs = {'x': (3,)}\ndef forward(x, *, xp):\n    return x\n", "no hand derivative"),
    ("inputs = {'x': (3,)}\ndef forward(x, *, xp):\n    return x +\n", "check.py:3: importing"),
    (
        "import sys\ninputs = {'x': (3,)}\ndef forward(x, *, xp):\n    return x\n"
        "def vjp(g, x):\n    sys.exit(3)\n",
        "called sys.exit(3)",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_files_in_process(tmp_path, text, message):
    """Every bad file is a CheckFileError naming what is wrong (and where)."""
    path = write(tmp_path, text)
    with pytest.raises(CheckFileError) as caught:
        check_problem(problem_from_file(str(path)), engines=["minigrad"], points=1)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [BAD_FILES[0], BAD_FILES[4], BAD_FILES[5], BAD_FILES[9]],
    ids=["no-forward", "wrong-shape", "forward-raises", "sys-exit"],
)
def test_bad_files_on_the_command_line(tmp_path, text, message):
    out = tmp_path / "out.json"
    line = one_error_line(run_check(str(write(tmp_path, text)), *FAST, "--json", str(out)))
    assert message in line
    assert not out.exists()  # no half-written --json


def test_code_that_hangs_is_stopped_at_the_time_limit(tmp_path):
    text = (
        "import time\ninputs = {'x': (3,)}\ndef forward(x, *, xp):\n    return x\n"
        "def vjp(g, x):\n    time.sleep(60)\n"
    )
    line = one_error_line(run_check(str(write(tmp_path, text)), *FAST, "--time-limit", "1"))
    assert "was still running after 1 s" in line
    assert "vjp in" in line


def test_code_that_ends_the_process_is_one_line(tmp_path):
    text = "import os\ninputs = {'x': (3,)}\ndef forward(x, *, xp):\n    os._exit(0)\n"
    text += "def vjp(g, x):\n    return {'x': g}\n"
    line = one_error_line(run_check(str(write(tmp_path, text)), *FAST))
    assert "forward in" in line
    assert "ended the process" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--points", "0"), "--points must be between 1 and 100"),
        (("--engines", "loop"), "unknown engine 'loop' for a function"),
        (("--dtype", "float16"), "invalid choice"),
        (("--time-limit", "0"), "--time-limit must be a positive"),
    ],
)
def test_bad_usage(tmp_path, args, message):
    line = one_error_line(run_check(str(write(tmp_path, GOOD)), *args))
    assert message in line


def test_a_missing_file_and_json_over_the_check_file(tmp_path):
    assert "no such file" in one_error_line(run_check(str(tmp_path / "missing.py")))
    path = write(tmp_path, GOOD)
    line = one_error_line(run_check(str(path), "--json", str(path)))
    assert "--json" in line


def test_a_hand_derivative_that_raises_names_its_line(tmp_path):
    text = GOOD.replace("return {", "1 / 0\n    return {")
    with pytest.raises(HandDerivativeError, match=r"check\.py:10: vjp raised ZeroDivisionError"):
        check_problem(problem_from_file(str(write(tmp_path, text))), engines=["minigrad"])


@pytest.mark.skipif(not OPTIONAL_INSTALLED, reason="no optional engine is installed")
def test_an_optional_engine_named_is_required(tmp_path):
    result = run_check(str(write(tmp_path, GOOD)), "--engines", ",".join(OPTIONAL_INSTALLED))
    assert result.returncode == 0, result.stderr


# ---- the README's sample -------------------------------------------------------------------------
def _every_function_engine_installed() -> bool:
    return all(n in INSTALLED for n in ("torch", "jax", "autograd"))


@pytest.mark.skipif(
    not _every_function_engine_installed(), reason="the sample is every engine's check"
)
def test_the_readme_sample_is_what_the_check_prints_today():
    """docs/refresh_output.py reads the README's run-check sample and regenerates it: the same
    text as in the README (so the sample is real and up to date)."""
    refresh = refresh_output()
    samples = [b for b in refresh.blocks(REPO_ROOT / "README.md") if b.kind == "run-check"]
    assert [b.args for b in samples] == ["docs/functions/backprop.py:gradient_slip"]
    (block,) = samples
    fresh = refresh.sample(block.args, block.tail, kind=block.kind)
    assert fresh.startswith("```\n$ python -m verifiers.check docs/functions/backprop.py")
    assert block.text.rstrip("\n") == fresh, "run python docs/refresh_output.py"
