"""verifiers.testing: the assertion a learner's test suite calls, its message, the hypothesis
strategies, and the documented examples (the README section's pytest example, each model page's
formula and slip) run as written."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings

from verifiers import Settings, UsageError, verify
from verifiers.data import Dataset, load_csv
from verifiers.models import MODELS
from verifiers.testing import FAST_ENGINES, assert_gradient_correct, datasets

from .helpers import REPO_ROOT, has

DOCS = REPO_ROOT / "docs" / "models"
X4 = np.array([[0.5, 1.0], [-1.0, 2.0], [2.0, -0.5], [0.0, 0.0]])
Y4 = np.array([1.0, 0.0, 1.0, 0.0])


def _logistic(sign: float = 1.0):
    def gradient(b, w, X, y):
        r = sign * (1 / (1 + np.exp(-(X @ w + b))) - y)
        return r.mean(), X.T @ r / len(y)

    return gradient


def test_a_correct_formula_passes_and_returns_the_report():
    report = assert_gradient_correct(_logistic(), X4, Y4, model="logistic")
    assert report.ok
    assert report.compared["gradient"] == list(FAST_ENGINES)
    assert report.settings.iterations == 0  # no descent unless asked for


def test_a_wrong_formula_fails_with_the_worst_element_and_the_diagnosis():
    with pytest.raises(AssertionError) as caught:
        assert_gradient_correct(_logistic(-1.0), X4, Y4, model="logistic")
    message = str(caught.value)
    first, second = message.splitlines()[:2]
    assert re.match(
        r"the gradient is wrong: dL/d\S+ at \S+( \d)?: your formula gives \S+, the engines "
        r"agree on \S+ \(difference \S+, allowed \S+\)$",
        first,
    ), first
    assert second.startswith("diagnosis [flipped-residual]: it uses (y - σ) where (σ - y)")


@pytest.mark.parametrize(
    ("result", "says"),
    [
        (lambda b, w, X, y: (0.0, w[:1]), "dL/dw as an array of shape (2,)"),
        (lambda b, w, X, y: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_a_formula_that_breaks_fails_the_assertion(result, says):
    with pytest.raises(AssertionError, match="the gradient formula fails") as caught:
        assert_gradient_correct(result, X4, Y4, model="logistic")
    assert says in str(caught.value)


def test_settings_pass_through_and_bad_ones_are_usage_errors():
    def ridge(b, w, X, y):
        r = y - (X @ w + b)
        return -2 * r.mean(), -2 * X.T @ r / len(y) + 2 * 0.5 * w

    assert_gradient_correct(ridge, X4, Y4, model="ridge", l2=0.5)
    with pytest.raises(AssertionError, match="penalty-half"):  # with λ = 1, 2·0.5·w is λw
        assert_gradient_correct(ridge, X4, Y4, model="ridge", l2=1.0)
    with pytest.raises(UsageError, match="unknown model 'lasso'"):
        assert_gradient_correct(ridge, X4, Y4, model="lasso")
    with pytest.raises(UsageError, match="--points"):
        assert_gradient_correct(ridge, X4, Y4, model="ridge", points=1)


def test_manual_is_added_to_the_engines_and_none_means_every_engine():
    report = assert_gradient_correct(_logistic(), X4, Y4, model="logistic", engines=["numeric"])
    assert report.compared["gradient"] == ["manual", "numeric"]
    if has("torch") and has("jax"):
        report = assert_gradient_correct(_logistic(), X4, Y4, model="logistic", engines=None)
        assert {"torch", "jax"} <= set(report.compared["gradient"])


@pytest.mark.parametrize("model", ["mse", "ridge", "logistic", "softmax", "mlp"])
def test_datasets_fit_each_model(model):
    @settings(max_examples=15)
    @given(data=datasets(model, min_rows=5, max_rows=12, max_features=3, classes=4))
    def check(data):
        X, y = data
        assert X.ndim == 2
        assert 1 <= X.shape[1] <= 3
        assert max(5, X.shape[1] + 2) <= X.shape[0] <= 12
        assert y.shape == (X.shape[0],)
        assert np.isfinite(X).all()
        assert np.isfinite(y).all()
        instance = MODELS[model][0](Dataset.from_arrays(X, y))  # check_data accepts the labels
        if model == "logistic":
            assert set(np.unique(y)) == {0.0, 1.0}
        if model == "softmax":
            assert set(np.unique(y)) == {0.0, 1.0, 2.0, 3.0}
            assert instance.classes == 4

    check()


def test_datasets_refuse_what_no_model_takes():
    with pytest.raises(ValueError, match="unknown model"):
        datasets("lasso")
    with pytest.raises(ValueError, match="at least 2 classes"):
        datasets("softmax", classes=1)


# ---- the documented examples, run as written ----------------------------------------------------
def _python_blocks(path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_the_readme_sections_pytest_example_passes_and_fails_as_shown():
    text = (DOCS / "README-section.md").read_text()
    (code,) = _python_blocks(DOCS / "README-section.md")
    namespace: dict = {}
    exec(compile(code, "README-section example", "exec"), namespace)
    namespace["test_logistic_gradient"]()
    namespace["test_logistic_gradient_in_float32"]()
    wrong = code.replace("(p - y)", "(y - p)")
    assert wrong != code
    exec(compile(wrong, "README-section example, wrong", "exec"), namespace)
    with pytest.raises(AssertionError) as caught:  # (the hypothesis test would shrink: slow)
        namespace["test_logistic_gradient_in_float32"]()
    shown = re.search(r"AssertionError: (.*?)\n```", text, re.S).group(1)
    # The same message, up to the last digits of the numbers (they depend on the BLAS kernel).
    assert _numbers_masked(str(caught.value)) == _numbers_masked(shown)


def _numbers_masked(text: str) -> str:
    return re.sub(r"-?\d+\.\d+(e[-+]?\d+)?", "<number>", text)


PAGES = {
    "logistic": "binary.csv",
    "softmax": "classes.csv",
    "mlp": "wave.csv",
    "ridge": "data.csv",
}


@pytest.mark.parametrize("model", list(PAGES))
def test_each_model_pages_formula_passes_and_its_slip_is_diagnosed_as_shown(model):
    page = DOCS / f"{model}.md"
    (code,) = _python_blocks(page)
    namespace: dict = {}
    exec(compile(code, str(page), "exec"), namespace)
    data = load_csv(REPO_ROOT / "data" / PAGES[model])
    settings_ = Settings(model=model, engines=FAST_ENGINES, iterations=0)
    assert verify(data, settings_, formula=namespace["gradient"]).ok
    report = verify(data, settings_, formula=namespace["wrong"])
    assert not report.ok
    assert f"diagnosis: {report.diagnosis.summary}\n" in page.read_text()
