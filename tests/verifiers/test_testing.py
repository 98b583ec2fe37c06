"""verifiers.testing: the assertion a learner's test suite calls, its message, the hypothesis
strategies, and the documented examples (the README's pytest example, each model's example file
with its formula and slip, as the README and the model pages show them) run as written."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings

from verifiers import Settings, UsageError, verify
from verifiers.data import Dataset, load_csv
from verifiers.models import MODELS
from verifiers.testing import FAST_ENGINES, assert_gradient_correct, datasets

from .helpers import OPTIONAL_INSTALLED, REPO_ROOT, has

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
        assert set(OPTIONAL_INSTALLED) <= set(report.compared["gradient"])


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
        instance = MODELS[model](Dataset.from_arrays(X, y))  # check_data accepts the labels
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
README = REPO_ROOT / "README.md"
EXAMPLES = DOCS / "examples"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def _readme_models_section() -> str:
    """README.md's `## Models` section, up to the next `## ` heading."""
    text = README.read_text()
    start = text.index("\n## Models\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _one_line(text: str) -> str:
    """The text with every run of whitespace made one space: the report wraps long lines."""
    return re.sub(r"\s+", " ", text)


def test_the_readme_models_sections_pytest_example_passes_and_fails_as_shown():
    text = _readme_models_section()
    (code,) = [block for block in _python_blocks(text) if "assert_gradient_correct" in block]
    namespace: dict = {}
    exec(compile(code, "README Models example", "exec"), namespace)
    namespace["test_logistic_gradient"]()
    namespace["test_logistic_gradient_in_float32"]()
    wrong = code.replace("(p - y)", "(y - p)")
    assert wrong != code
    exec(compile(wrong, "README Models example, wrong", "exec"), namespace)
    with pytest.raises(AssertionError) as caught:  # (the hypothesis test would shrink: slow)
        namespace["test_logistic_gradient_in_float32"]()
    shown = re.search(r"AssertionError: (.*?)\n```", text, re.S).group(1)
    # The same message, up to the last digits of the numbers (they depend on the BLAS kernel).
    assert _numbers_masked(str(caught.value)) == _numbers_masked(shown)


def _numbers_masked(text: str) -> str:
    return re.sub(r"-?\d+\.\d+(e[-+]?\d+)?", "<number>", text)


# Each model's example file (docs/models/examples/MODEL.py), its data and the diagnosis key of
# its `slip`.
EXAMPLE_FILES = {
    "mse": ("data.csv", "factor 1/2"),
    "ridge": ("data.csv", "penalty-half"),
    "logistic": ("binary.csv", "sigmoid-prime"),
    "softmax": ("classes.csv", "missing-one-hot"),
    "mlp": ("wave.csv", "missing-tanh-prime"),
}


def _example(model: str) -> dict:
    path = EXAMPLES / f"{model}.py"
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("model", list(EXAMPLE_FILES))
def test_each_example_files_gradient_passes_and_its_slip_is_diagnosed(model):
    data_file, key = EXAMPLE_FILES[model]
    example = _example(model)
    data = load_csv(REPO_ROOT / "data" / data_file)
    report = assert_gradient_correct(example["gradient"], data.X, data.y, model=model)
    assert report.ok
    with pytest.raises(AssertionError) as caught:
        assert_gradient_correct(example["slip"], data.X, data.y, model=model)
    diagnosis = str(caught.value).splitlines()[1]
    assert diagnosis.startswith(f"diagnosis [{key}]: "), diagnosis
    # The README's worked example runs this slip and shows this diagnosis (in the report's
    # opening lines, where the answer is).
    summary = diagnosis.split("]: ", 1)[1]
    section = _readme_models_section()
    command = f"--model {model} --manual docs/models/examples/{model}.py:slip"
    assert f"<!-- run: data/{data_file} {command} | head " in section
    assert _one_line(f"diagnosis: {summary}") in _one_line(section)


@pytest.mark.parametrize("model", ["ridge", "logistic", "softmax", "mlp"])
def test_each_model_page_shows_its_example_file_and_the_slips_diagnosis(model):
    page = (DOCS / f"{model}.md").read_text()
    (code,) = _python_blocks(page)
    assert code == (EXAMPLES / f"{model}.py").read_text(), f"copy docs/models/examples/{model}.py"
    example = _example(model)
    data_file = EXAMPLE_FILES[model][0]
    data = load_csv(REPO_ROOT / "data" / data_file)
    settings_ = Settings(model=model, engines=FAST_ENGINES, iterations=0)
    report = verify(data, settings_, formula=example["slip"])
    assert not report.ok
    for function in ("gradient", "slip"):
        manual = f"docs/models/examples/{model}.py:{function}"
        assert f"<!-- run: data/{data_file} --model {model} --manual {manual} --quiet -->" in page
    assert _one_line(f"diagnosis: {report.diagnosis.summary}") in _one_line(page)
