"""The mlp model's --manual backprop may return its intermediates (dZ2, dA1, dZ1): a wrong
backprop is then located to its first wrong step; the model catalogue is otherwise unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from verifiers import Settings, UsageError, verify
from verifiers.data import load_csv
from verifiers.engines.manual import FormulaError
from verifiers.user_formula import load_function

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "docs" / "models" / "examples" / "mlp.py"
SETTINGS = dict(model="mlp", engines=("manual", "minigrad", "numeric"), iterations=0, points=4)


@pytest.fixture(scope="module")
def wave():
    return load_csv(REPO_ROOT / "data" / "wave.csv")


def run(wave, formula):
    return verify(wave, Settings(**SETTINGS), formula=formula)


def example(name: str):
    return load_function(f"{EXAMPLE}:{name}", "--manual")


def test_a_right_backprop_with_its_steps_agrees(wave):
    report = run(wave, example("steps"))
    assert report.ok
    assert report.diagnosis is None


def test_a_wrong_backprop_is_located_to_its_first_wrong_step(wave):
    report = run(wave, example("steps_slip"))
    assert not report.ok
    diagnosis = report.diagnosis
    assert diagnosis.pattern == "tanh-prime-of-z"  # the model's own slip catalogue
    assert diagnosis.first_wrong_step == "dZ1"
    assert "the first wrong step of the backprop is dZ1" in diagnosis.summary
    assert "dZ2 and dA1 are right" in diagnosis.summary
    assert "1 - Z1² where 1 - A1² belongs" in diagnosis.parameters["dZ1"]


def test_an_earlier_wrong_step_is_found_earlier(wave):
    steps = example("steps")

    def without_w2(params, X, y):
        result = steps(params, X, y)
        d_A1 = np.broadcast_to(result["dZ2"][:, None], result["dA1"].shape)  # W2 left out
        A1 = np.tanh(X @ params["W1"] + params["b1"])
        d_Z1 = d_A1 * (1 - A1**2)
        return {**result, "dA1": d_A1, "dZ1": d_Z1, "W1": X.T @ d_Z1, "b1": d_Z1.sum(axis=0)}

    diagnosis = run(wave, without_w2).diagnosis
    assert diagnosis.first_wrong_step == "dA1"
    assert "dZ2 is right" in diagnosis.summary


def test_without_steps_the_diagnosis_is_the_models_alone(wave):
    diagnosis = run(wave, example("slip")).diagnosis
    assert diagnosis.pattern == "missing-tanh-prime"
    assert diagnosis.first_wrong_step is None


def test_steps_of_a_wrong_shape_are_noted_not_judged(wave):
    steps = example("steps_slip")

    def misshapen(params, X, y):
        return {**steps(params, X, y), "dZ1": np.zeros(3)}

    report = run(wave, misshapen)
    assert report.diagnosis.first_wrong_step is None
    assert any("intermediates cannot be checked" in note for note in report.notes)


def test_an_undocumented_key_is_refused(wave):
    steps = example("steps")

    def extra(params, X, y):
        return {**steps(params, X, y), "dH": 0.0}

    with pytest.raises((FormulaError, UsageError), match="optionally dZ2, dA1, dZ1"):
        run(wave, extra)
