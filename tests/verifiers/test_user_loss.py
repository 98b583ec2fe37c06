"""``--loss FILE.py:FUNCTION``: a loss written once against the array API, run on every engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verifiers import Settings, verify
from verifiers.data import Dataset

from .helpers import DATA_CSV, OPTIONAL_INSTALLED, has, run_cli

OPTIONAL = OPTIONAL_INSTALLED

LOSSES = """
import numpy as np

def huber(b, w, X, y, xp):
    r = y - (X @ w + b)
    a = xp.abs(r)
    return xp.mean(xp.where(a <= 10.0, 0.5 * r**2, 10.0 * (a - 5.0)))

def huber_gradient(b, w, X, y):
    r = y - (X @ w + b)
    g = np.where(np.abs(r) <= 10.0, r, 10.0 * np.sign(r))
    return -g.mean(), -(X.T @ g) / len(y)

def huber_gradient_unsigned(b, w, X, y):  # forgets the sign outside the quadratic zone
    r = y - (X @ w + b)
    g = np.where(np.abs(r) <= 10.0, r, 10.0)
    return -g.mean(), -(X.T @ g) / len(y)

def quartic(b, w, X, y, xp):
    r = y - (X @ w + b)
    return xp.mean(r**4)

def quartic_half(b, w, X, y):  # the 4 of the fourth power, halved
    r = y - (X @ w + b)
    return -2 * np.mean(r**3), -2 * (X.T @ r**3) / len(y)

def not_standard(b, w, X, y, xp):
    r = y - (X @ w + b)
    return xp.mean(xp.erf(r))

def words(b, w, X, y, xp):
    return "hello"

def log_of_negative(b, w, X, y, xp):
    return xp.mean(xp.log(y - y - 1.0)) + b

def constant(b, w, X, y, xp):  # does not depend on b or w: every derivative is 0
    return xp.mean(y * 0.0) + 1.0

def not_traceable(b, w, X, y, xp):
    r = y - (X @ w + b)
    return xp.mean(r**2) if float(xp.sum(r)) > 0 else xp.mean(r**4)
"""


@pytest.fixture(scope="module")
def losses(tmp_path_factory):
    path = tmp_path_factory.mktemp("losses") / "losses.py"
    path.write_text(LOSSES)
    return path


FAST = ["--iterations", "30", "--quiet"]


def test_a_huber_loss_agrees_across_every_engine(losses, tmp_path):
    target = tmp_path / "report.json"
    result = run_cli(str(DATA_CSV), "--loss", f"{losses}:huber", *FAST, "--json", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(target.read_text())
    engines = document["engines"]
    assert engines["loop"]["status"] == "skipped"
    assert "per-point MSE loop" in engines["loop"]["reason"]
    assert engines["manual"]["status"] == "skipped"
    assert "give yours with --manual" in engines["manual"]["reason"]
    ran = [name for name, entry in engines.items() if entry["status"] == "ok"]
    assert {"minigrad", "numeric"} <= set(ran)
    # |r| and where() decide by the real part: the complex step still applies
    assert engines["numeric"]["device"] == "cpu (complex step)"


@pytest.mark.slow  # --loss with a wrong --manual, fast: test_a_halved_fourth_power_is_diagnosed
def test_the_users_hand_gradient_of_their_loss_is_checked(losses):
    right = run_cli(str(DATA_CSV), "--loss", f"{losses}:huber",
                    "--manual", f"{losses}:huber_gradient", *FAST)  # fmt: skip
    assert right.returncode == 0, right.stdout + right.stderr
    assert f"OK: your formula ({losses}:huber_gradient) agrees with" in " ".join(
        right.stdout.split()
    )
    wrong = run_cli(str(DATA_CSV), "--loss", f"{losses}:huber",
                    "--manual", f"{losses}:huber_gradient_unsigned", *FAST)  # fmt: skip
    assert wrong.returncode == 1
    assert "MISMATCH: manual (your formula) disagrees" in wrong.stdout


def test_a_halved_fourth_power_is_diagnosed(losses):
    result = run_cli(str(DATA_CSV), "--loss", f"{losses}:quartic",
                     "--manual", f"{losses}:quartic_half", "--lr", "1e-9", *FAST)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "diagnosis: every derivative is half the true value" in result.stdout


@pytest.mark.skipif(not has("jax"), reason="jax traces the loss: needs jax")
def test_a_loss_one_engine_cannot_trace_leaves_that_engine_out(losses, tmp_path):
    """A Python branch on a traced value runs on numpy but not under jax's tracing: jax is
    skipped, with what it raised, and the other engines still decide."""
    target = tmp_path / "r.json"
    result = run_cli(str(DATA_CSV), "--loss", f"{losses}:not_traceable", *FAST,
                     "--json", str(target))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    jax = json.loads(target.read_text())["engines"]["jax"]
    assert jax["status"] == "skipped"
    assert "the loss raised" in jax["reason"]
    assert "only this engine is left out" in jax["reason"]


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("not_standard", "has no function 'erf' (the loss may use only functions of the array"),
        ("words", "the loss must be one number, but it returned str 'hello'"),
        ("log_of_negative", "the loss is nan at b = 0, w = 0; the engines can be compared only"),
    ],
)
def test_a_loss_that_cannot_run_exits_2_with_one_line(losses, function, message):
    result = run_cli(str(DATA_CSV), "--loss", f"{losses}:{function}", *FAST)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_a_loss_that_does_not_depend_on_the_parameters_has_gradient_zero_everywhere(losses):
    report = verify(DATA_CSV, Settings(iterations=3), loss=_load(losses, "constant"))
    assert report.ok, report.failures
    for name in report.compared["gradient"]:
        start = report.engines[name].evaluations[0]
        assert start.loss == 1.0, name
        assert not np.any(start.gradient), name


def _load(path, name):
    from verifiers.user_formula import load_function

    return load_function(f"{path}:{name}", "--loss")


def test_loss_and_model_together_is_a_usage_error(losses):
    result = run_cli(str(DATA_CSV), "--loss", f"{losses}:huber", "--model", "ridge", *FAST)
    assert result.returncode == 2
    assert "--loss replaces the model" in result.stderr


def test_the_python_api_takes_a_loss_function():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    data = Dataset.from_arrays(X, X @ [1.0, -2.0, 0.5] + 3 + rng.normal(size=40))

    def log_cosh(b, w, X, y, xp):
        r = y - (X @ w + b)
        return xp.mean(xp.log((xp.exp(r) + xp.exp(-r)) / 2))

    report = verify(
        data,
        Settings(engines=("minigrad", "numeric", *OPTIONAL), iterations=10, lr=0.1),
        loss=log_cosh,
    )
    assert report.ok, report.failures
    assert report.model.name == "loss"
    assert report.optimum.theta is None  # nothing is known about the user's loss's optimum
