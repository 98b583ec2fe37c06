"""The model catalogue (ridge, logistic, softmax, mlp): every engine agrees on random data, each
classic slip is caught and named, optima satisfy their first-order condition, separable data
is said to be so, bad labels name their line, and the reports have the right shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings

from verifiers import Settings, verify
from verifiers.compare import Tolerance
from verifiers.data import DataError, Dataset, load_csv
from verifiers.engines.numeric import NumericEngine
from verifiers.models import MODELS
from verifiers.models.logistic import LogisticModel
from verifiers.models.softmax import SoftmaxModel
from verifiers.results import Check, PointKind
from verifiers.testing import datasets

from .helpers import DATA_CSV, INSTALLED, PUBLISHED, REPO_ROOT, run_cli

NEW_MODELS = ("ridge", "logistic", "softmax", "mlp")
NUMPY = ("manual", "minigrad", "numeric")
EXAMPLES = {
    "ridge": DATA_CSV,
    "logistic": REPO_ROOT / "data" / "binary.csv",
    "softmax": REPO_ROOT / "data" / "classes.csv",
    "mlp": REPO_ROOT / "data" / "wave.csv",
}
# Every engine that can compute these models here (the loop does the MSE only).
AVAILABLE = {n for n in INSTALLED if n != "loop"}


@pytest.fixture(scope="module")
def example():
    return {name: load_csv(path) for name, path in EXAMPLES.items()}


# ---- every engine agrees ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype", ["float64", pytest.param("float32", marks=pytest.mark.slow)]
)  # float32 engines, fast: test_engines.py::test_float32_engines_compute_in_float32
@pytest.mark.parametrize("model", NEW_MODELS)
def test_every_engine_agrees_at_every_check_point(model, dtype):
    @settings(max_examples=2)
    @given(data=datasets(model, max_rows=24, max_features=2))
    def check(data):
        X, y = data
        report = verify(
            Dataset.from_arrays(X, y, dtype),
            Settings(model=model, dtype=dtype, iterations=5, points=2),
        )
        assert report.ok, report.failures
        assert set(report.compared["gradient"]) == AVAILABLE
        for name in AVAILABLE:
            assert report.engines[name].checked_points == len(report.points), name
        hessians = set(report.compared["Hessian"])
        assert hessians == AVAILABLE - ({"manual"} if model == "mlp" else set())
        # The complex step ran (it is checked against central differences before it is used).
        assert report.engines["numeric"].device.endswith("(complex step)")

    check()


def test_jax_differentiates_the_row_max_of_large_scores():
    """A softmax whose scores are large: XLA's quickest compile (level 0) gave inf and nan."""
    pytest.importorskip("jax")
    X = np.array([-0.0578, -0.0836, -0.0063, -0.0599, -0.1239, -0.0342, 0.0600, 0.0243])
    y = np.array([0.0, 1, 2, 2, 1, 0, 0, 2])
    report = verify(
        Dataset.from_arrays(X, y),
        Settings(model="softmax", engines=("manual", "jax", "numeric"), iterations=5),
    )
    assert report.optimum.theta is not None
    assert np.abs(report.optimum.theta).max() > 100
    assert report.ok, report.failures


def test_numeric_hessians_are_extrapolated_where_the_loss_curves_fast():
    """Features of size 50: a plain central difference is off by about 1e-8 of the value."""
    X = np.array([53.6, 7.67, 37.4, 27.6, 28.7, 31.1, 13.0, 30.9, 24.6])
    y = np.array([0.0, 1, 2, 1, 1, 1, 0, 0, 0])
    report = verify(
        Dataset.from_arrays(X, y), Settings(model="softmax", engines=NUMPY, iterations=0)
    )
    assert report.ok, report.failures
    numeric, exact = report.engines["numeric"].hessian, report.engines["manual"].hessian
    np.testing.assert_allclose(numeric, exact, rtol=1e-8, atol=1e-8 * np.abs(exact).max())


# ---- each classic slip is caught and named ------------------------------------------------------
def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _linear(residual):
    """A (b, w) formula ``(1/N)(Σ r, Xᵀr)`` with ``r = residual(z, y, b, w, X)``."""

    def gradient(b, w, X, y):
        r = residual(X @ w + b, y, b, w, X)
        return r.mean(), X.T @ r / len(y)

    return gradient


def _ridge(wrong_b=0.0, wrong_w=2.0, residual=None):
    """The ridge gradient with the penalty's derivative ``wrong·λ·(b, w)`` (λ = 0.1)."""

    def gradient(b, w, X, y):
        r = y - (X @ w + b) if residual is None else residual(b, w, X, y)
        return -2 * r.mean() + wrong_b * 0.1 * b, -2 * X.T @ r / len(y) + wrong_w * 0.1 * w

    return gradient


def _softmax(residual, transpose=False):
    def gradient(params, X, y):
        z = X @ params["W"] + params["b"]
        P = np.exp(z - z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        Y = np.eye(P.shape[1])[y.astype(int)]
        R = residual(P, Y, y)
        grad_W = (R.T @ X).T if not transpose else R.T @ X
        return {"W": grad_W / len(y), "b": R.mean(axis=0)}

    return gradient


def _mlp(slip=None):
    def gradient(params, X, y):
        W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
        Z = X @ W1 + b1
        A = np.tanh(Z)
        out = 2 * (A @ W2 + b2 - y) / len(y)
        hidden = np.outer(out, np.ones_like(W2) if slip == "W2" else W2)
        factor = {"prime": 1.0, "z": 1 - Z**2}.get(slip, 1 - A**2)
        delta = hidden * factor
        grad_W1 = X.T @ delta
        return {
            "W1": grad_W1.T if slip == "transposed" else grad_W1,
            "b1": delta.mean(axis=0) if slip == "mean" else delta.sum(axis=0),
            "W2": A.T @ out,
            "b2": out.sum(),
        }

    return gradient


def _square_data(classes: bool):
    """30 rows, 3 features: d = k = 3 classes for softmax, d = H = 3 hidden units for the mlp."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 3))
    if classes:
        return X, np.argmax(X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(30, 3)), axis=1)
    return X, np.sin(X @ rng.normal(size=3))


SLIPS = [
    ("logistic", _linear(lambda z, y, *_: y - _sigmoid(z)), "flipped-residual"),
    (
        "logistic",
        _linear(lambda z, y, *_: (_sigmoid(z) - y) * _sigmoid(z) * (1 - _sigmoid(z))),
        "sigmoid-prime",
    ),
    (
        "logistic",
        _linear(lambda z, y, *_: 2 * (_sigmoid(z) - y) * _sigmoid(z) * (1 - _sigmoid(z))),
        "mse-of-sigmoid",
    ),
    ("logistic", _linear(lambda z, y, *_: z - y), "linear-residual"),
    ("logistic", _linear(lambda z, y, *_: len(y) * (_sigmoid(z) - y)), "factor N"),
    ("softmax", _softmax(lambda P, Y, y: P), "missing-one-hot"),
    ("softmax", _softmax(lambda P, Y, y: P - y[:, None]), "labels-as-numbers"),
    ("softmax", _softmax(lambda P, Y, y: Y - P), "factor -1"),
    ("mlp", _mlp("prime"), "missing-tanh-prime"),
    ("mlp", _mlp("z"), "tanh-prime-of-z"),
    ("mlp", _mlp("W2"), "missing-W2"),
    ("mlp", _mlp("mean"), "factor 1/N"),
    ("ridge", _ridge(wrong_w=0.0), "penalty-missing"),
    ("ridge", _ridge(wrong_w=1.0), "penalty-half"),
    ("ridge", _ridge(wrong_b=2.0), "penalty-on-b"),
    ("ridge", _ridge(residual=lambda b, w, X, y: y - X @ w), "missing-b"),
]


@pytest.mark.parametrize(
    ("model", "formula", "pattern"), SLIPS, ids=[f"{m}-{p}" for m, _, p in SLIPS]
)
def test_each_classic_slip_is_caught_and_named(example, model, formula, pattern):
    report = verify(
        example[model], Settings(model=model, engines=NUMPY, iterations=0), formula=formula
    )
    assert not report.ok
    assert (report.failures[0].engine, report.failures[0].check) == ("manual", Check.GRADIENT)
    assert [n for n, e in report.engines.items() if e.status == "mismatch"] == ["manual"]
    assert report.diagnosis.pattern == pattern, report.diagnosis.summary


@pytest.mark.parametrize(
    ("model", "formula", "pattern"),
    [
        ("softmax", _softmax(lambda P, Y, y: P - Y, transpose=True), "transposed-W"),
        ("mlp", _mlp("transposed"), "transposed-W1"),
    ],
)
def test_a_transposed_weight_is_named_where_the_shapes_allow_it(model, formula, pattern):
    X, y = _square_data(classes=model == "softmax")
    options = {"hidden": 3} if model == "mlp" else {}
    data = Dataset.from_arrays(X, y)
    report = verify(
        data, Settings(model=model, engines=NUMPY, iterations=0, **options), formula=formula
    )
    assert report.diagnosis.pattern == pattern, report.diagnosis.summary
    # With other shapes the slip is not offered, so it cannot be matched by accident.
    other = MODELS[model](data, {"hidden": 4} if model == "mlp" else {})
    keys = {slip.key for slip in other.slips()}
    assert pattern not in keys if model == "mlp" else pattern in keys


@pytest.mark.parametrize("model", NEW_MODELS)
def test_the_correct_formulas_pass_as_user_formulas(example, model):
    formula = {
        "ridge": _ridge(),
        "logistic": _linear(lambda z, y, *_: _sigmoid(z) - y),
        "softmax": _softmax(lambda P, Y, y: P - Y),
        "mlp": _mlp(),
    }[model]
    report = verify(
        example[model], Settings(model=model, engines=NUMPY, iterations=3), formula=formula
    )
    assert report.ok, report.failures


@pytest.mark.parametrize("model", NEW_MODELS)
def test_a_formula_off_by_a_billionth_is_caught(example, model):
    """The tolerance scales are not loose: a relative error of 1e-9 fails in float64."""
    data = example[model]
    built_in = MODELS[model](data)

    def nearly(*args):
        if model in ("ridge", "logistic"):
            b, w = args[0], args[1]
            gradient = built_in.hand_gradient({"b": np.asarray(b), "w": w})
            return gradient["b"] * (1 + 1e-9), gradient["w"] * (1 + 1e-9)
        return {k: v * (1 + 1e-9) for k, v in built_in.hand_gradient(args[0]).items()}

    report = verify(data, Settings(model=model, engines=NUMPY, iterations=0), formula=nearly)
    assert [n for n, e in report.engines.items() if e.status == "mismatch"] == ["manual"]
    assert "relative 1e-09" in report.failures[0].message


@pytest.mark.parametrize("model", ["ridge", "logistic", "softmax"])
def test_a_wrong_closed_form_hessian_is_caught(example, model, monkeypatch):
    cls = MODELS[model]
    original = cls.hand_hessian
    monkeypatch.setattr(cls, "hand_hessian", lambda self, theta: original(self, theta) * 1.001)
    report = verify(example[model], Settings(model=model, engines=NUMPY, iterations=0))
    assert report.engines["manual"].status == "mismatch"
    assert "Hessian" in report.engines["manual"].reason


# ---- optima -------------------------------------------------------------------------------------
def _regression(seed: int, rows: int = 200) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3)) * [1, 10, 0.1]
    return Dataset.from_arrays(X, X @ [1.0, -0.2, 5] + rng.normal(size=rows))


def _labelled(seed: int, classes: int, rows: int = 200) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2)) * [1, 5]
    scores = X @ rng.normal(size=(2, classes)) + rng.normal(size=classes)
    if classes == 2:
        y = (rng.uniform(size=rows) < 1 / (1 + np.exp(scores[:, 0] - scores[:, 1]))).astype(float)
    else:
        y = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    return Dataset.from_arrays(X, y)


OPTIMUM_CASES = [
    ("ridge", lambda: load_csv(DATA_CSV)),
    ("ridge", lambda: _regression(1)),
    ("logistic", lambda: load_csv(EXAMPLES["logistic"])),
    ("logistic", lambda: _labelled(2, 2)),
    ("softmax", lambda: load_csv(EXAMPLES["softmax"])),
    ("softmax", lambda: _labelled(3, 4)),
]


@pytest.mark.parametrize(("model", "make"), OPTIMUM_CASES)
def test_the_optimum_satisfies_its_first_order_condition(model, make):
    """The gradient there, by finite differences (independent of the hand formulas), is zero
    within the verifier's own tolerance of its Σ|terms|."""
    data = make()
    instance = MODELS[model](data)
    optimum = instance.optimum()
    assert optimum.theta is not None, optimum.note
    gradient = NumericEngine(instance).evaluate(optimum.theta).gradient
    atol = Tolerance.for_dtype(data.dtype, data.rows).atol
    assert np.all(np.abs(gradient) <= atol * instance.scales(optimum.theta).gradient)


def test_the_ridge_optimum_solves_the_normal_equations():
    data = _regression(4)
    l2 = 0.7
    optimum = MODELS["ridge"](data, {"l2": l2}).optimum().theta
    A = np.column_stack([np.ones(data.rows), data.X])
    penalty = np.diag([0.0, *[l2 * data.rows] * data.features])
    expected = np.linalg.solve(A.T @ A + penalty, A.T @ data.y)
    np.testing.assert_allclose(optimum, expected, rtol=1e-10)  # well conditioned: cond ~ 1e4


def test_the_softmax_optimum_is_the_one_of_smallest_norm():
    """Every class's weights sum to 0: shifting them all equally would only add length."""
    instance = SoftmaxModel(load_csv(EXAMPLES["softmax"]))
    params = instance.unflatten(instance.optimum().theta)
    np.testing.assert_allclose(params["W"].sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(params["b"].sum(), 0, atol=1e-12)


@pytest.mark.parametrize(
    ("model", "X", "y", "says"),
    [
        ("logistic", [0, 1, 2, 3], [0, 0, 1, 1], "linearly separable"),
        ("logistic", [0, 1, 1, 2], [0, 0, 1, 1], "linearly separable"),  # overlap on the line
        ("logistic", [0, 1, 2, 3], [1, 1, 1, 1], "every label is 1"),
        ("softmax", [[0, 0], [1, 0], [0, 1], [5, 5]], [0, 1, 2, 0], "linearly separable"),
        ("softmax", [0, 1, 2, 3], [0, 2, 0, 2], "no row has label 1"),
    ],
)
def test_data_without_a_finite_optimum_says_so(model, X, y, says):
    data = Dataset.from_arrays(np.array(X, dtype=float), np.array(y, dtype=float))
    report = verify(data, Settings(model=model, engines=NUMPY, iterations=20))
    assert report.optimum.theta is None
    assert any(says in note and "no finite optimum" in note for note in report.notes)
    assert report.ok, report.failures  # the gradients are still checked
    kinds = [p.kind for p in report.points]
    assert PointKind.OPTIMUM not in kinds  # there is none,
    assert PointKind.NEAR not in kinds  # so no point near it either
    assert kinds[: 1 + 16] == [PointKind.START, *[PointKind.RANDOM] * 16]


def test_overlapping_labels_have_an_optimum():
    data = Dataset.from_arrays(np.array([0.0, 1, 2, 3]), np.array([0.0, 1, 0, 1]))
    optimum = LogisticModel(data).optimum()
    assert optimum.theta is not None, optimum.note
    assert optimum.how.startswith("Newton's method")


def test_the_mlp_has_no_optimum_and_a_seeded_start(example):
    data = example["mlp"]
    first, again = (MODELS["mlp"](data, seed=3).start() for _ in range(2))
    other = MODELS["mlp"](data, seed=4).start()
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    params = MODELS["mlp"](data, seed=3).unflatten(first)
    assert np.all(params["b1"] == 0)
    assert params["b2"] == 0
    assert np.all(params["W1"] != 0)
    assert "many minima" in MODELS["mlp"](data).optimum().note


# ---- labels -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "rows", "line", "message"),
    [
        (
            "logistic",
            ["1,0", "2,1", "", "3,2", "4,0"],
            5,
            "must be 0 or 1 for logistic regression, not 2",
        ),
        ("logistic", ["1,0", "2,0.5"], 3, "not 0.5"),
        ("softmax", ["1,0", "2,1", "3,1.5"], 4, "must be a class number 0, 1, ..., 999"),
        ("softmax", ["1,0", "", "", "2,-1"], 5, "not -1"),
        ("softmax", ["1,0", "2,0"], 2, "at least two classes"),
    ],
)
def test_bad_labels_exit_2_naming_the_file_and_line(tmp_path, model, rows, line, message):
    path = tmp_path / "labels.csv"
    path.write_text("x,label\n" + "\n".join(rows) + "\n")
    result = run_cli(str(path), "--model", model, "--quiet")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {path}:{line}: "), result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_labels_from_arrays_name_the_row():
    with pytest.raises(DataError, match=r"^<arrays>: row 2 \(counting from 0\): the label"):
        LogisticModel(Dataset.from_arrays(np.arange(4.0), np.array([0.0, 1, 3, 0])))


def test_line_of_counts_lines_as_the_loader_does(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y\r\n\r\n1,2\r\n  \r\n3,4\r\n")
    data = load_csv(path)
    assert [data.line_of(row) for row in range(3)] == [3, 5, None]
    assert Dataset.from_arrays([1.0], [2.0]).line_of(0) is None


# ---- reports ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "shapes"),
    [
        ("softmax", {"W": (2, 3), "b": (3,)}),
        ("mlp", {"W1": (1, 8), "b1": (8,), "W2": (8,), "b2": ()}),
    ],
)
def test_json_gives_gradients_by_parameter_name(tmp_path, model, shapes):
    target = tmp_path / "report.json"
    result = run_cli(
        str(EXAMPLES[model]), "--model", model, "--engines", ",".join(NUMPY),
        "--iterations", "20", "--json", str(target), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(target.read_text())
    assert document["model"]["parameters"] == {k: list(v) for k, v in shapes.items()}
    for engine in NUMPY:
        params = document["engines"][engine]["gradient"]["params"]
        assert {k: np.shape(v) for k, v in params.items()} == shapes
        assert set(document["engines"][engine]["descent"]) >= {"params", "loss"}
    optimum = document["optimum"]
    assert (optimum is None) == (model == "mlp")
    if optimum is not None:
        assert {k: np.shape(v) for k, v in optimum["params"].items()} == shapes


def test_the_table_summarises_long_parameter_vectors(example):
    from io import StringIO

    from rich.console import Console

    from verifiers.report import print_report

    report = verify(example["mlp"], Settings(model="mlp", engines=NUMPY, iterations=5))
    out = StringIO()
    print_report(report, Console(file=out, width=80))
    text = out.getvalue()
    assert "at the start (25 parameters, listed in --json), from" in text
    assert "(the largest of 25 derivatives; all of them are in --json)" in text
    assert "dL/dW1[0,0] " not in text  # not every entry: the largest one only
    assert "Hessian (at the start; it changes with θ)" in text
    assert all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--l2", "0.5"], "--l2 sets the weight of the penalty λ·|w|² of --model ridge; it has "
         "no effect with --model mse"),
        (["--model", "softmax", "--hidden=4"], "--hidden sets the hidden units of --model mlp; "
         "it has no effect with --model softmax"),
    ],
)  # fmt: skip
def test_an_option_of_another_model_is_a_usage_error_not_ignored(options, says):
    data = EXAMPLES["softmax"] if "softmax" in options else DATA_CSV
    result = run_cli(str(data), *options)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {says}"
    assert result.stdout == ""


def test_a_formula_written_for_the_other_kind_of_model_is_told_what_to_take(tmp_path):
    formulas = tmp_path / "formulas.py"
    formulas.write_text(
        "def by_name(params, X, y):\n    return {}\n\ndef b_and_w(b, w, X, y):\n    return 0.0, w\n"
    )
    result = run_cli(str(DATA_CSV), "--manual", f"{formulas}:by_name")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: --manual {formulas}:by_name: with --model mse, --manual takes "
        "gradient(b, w, X, y) -> (dL/db, dL/dw); this function takes (params, X, y)"
    )
    result = run_cli(str(EXAMPLES["softmax"]), "--model", "softmax", "--manual",
                     f"{formulas}:b_and_w")  # fmt: skip
    assert result.returncode == 2
    assert "with --model softmax, --manual takes gradient(params, X, y) -> dict" in result.stderr
    assert "this function takes (b, w, X, y)" in result.stderr


def test_start_is_a_usage_error_for_matrix_models():
    result = run_cli(str(EXAMPLES["softmax"]), "--model", "softmax", "--start", "0,0")
    assert result.returncode == 2
    assert "--start applies to the (b, w) models, not to softmax" in result.stderr


def test_the_seed_figures_are_unchanged_with_model_mse():
    report = verify(DATA_CSV, Settings(model="mse", engines=("loop", "manual")))
    trajectory = report.engines["loop"].trajectory
    assert trajectory.theta.tolist() == [PUBLISHED["b"], PUBLISHED["w"]]
    assert trajectory.losses[-1] == PUBLISHED["error"]


@pytest.mark.parametrize("model", ["logistic", "softmax", "mlp"])
def test_the_default_learning_rate_is_stable_on_the_example(example, model):
    report = verify(example[model], Settings(model=model, engines=("manual", "minigrad")))
    assert report.ok, report.failures
    assert report.stability.stable
    losses = report.engines["manual"].trajectory.losses
    assert losses[-1] < 0.9 * losses[0]
    assert np.all(np.diff(losses) <= 1e-12 * losses[0])


@pytest.mark.parametrize("model", NEW_MODELS)
def test_every_model_can_be_plotted(example, model, tmp_path):
    """The fit panel draws the model's prediction where it is one number per row."""
    pytest.importorskip("matplotlib")
    from verifiers.report.plot import save_plot

    report = verify(example[model], Settings(model=model, engines=NUMPY, iterations=5))
    save_plot(report, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prediction = report.model.predict(report.points[1].theta, report.data.X)
    if model == "softmax":
        assert prediction is None
    else:
        assert prediction.shape == (report.data.rows,)
    if model == "logistic":
        assert np.all((prediction > 0) & (prediction < 1))


def test_a_descent_that_amplifies_rounding_is_not_a_disagreement(monkeypatch):
    """lr 0.1 is six times the stable rate here: in 5 steps rounding grows a million-fold, so
    correct engines end apart. The comparison allows for what a start moved by rounding does."""
    pytest.importorskip("torch")
    import verifiers.compute

    X = [[3.92, 18.74], [-0.23, 24.24], [-15.57, 29.93], [-7.63, 34.93], [-4.6, 33.39],
         [21.34, 14.76], [-7.1, 25.09], [2.71, 44.37], [6.63, 35.47], [2.0, 41.39],
         [-9.52, 33.89], [1.31, 14.61], [-4.38, 34.64], [11.27, 21.34], [8.65, 24.78],
         [13.79, 10.68], [21.8, 37.01], [11.06, 12.04]]  # fmt: skip
    y = [1.61, -8.14, -19.05, -15.93, -18.38, 16.23, -14.77, -14.49, -13.14, -14.85, -15.07,
         2.02, -15.06, -0.71, -3.28, 8.01, 3.86, 4.35]  # fmt: skip
    data = Dataset.from_arrays(np.array(X), np.array(y))
    run = Settings(model="mlp", iterations=5, engines=("manual", "minigrad", "torch", "numeric"))
    report = verify(data, run)
    assert report.ok, report.failures
    assert any("above the largest stable learning rate" in note for note in report.notes)
    assert any("the descent amplifies rounding" in note for note in report.notes)
    # Without the measurement the random-walk allowance is exceeded by correct engines.
    monkeypatch.setattr(verifiers.compute, "descent_sensitivity", lambda *args: None)
    assert not verify(data, run).ok


@pytest.mark.parametrize(("lr", "descents"), [(1e-4, 2), (1e-3, 3)])
def test_a_stable_quadratic_descent_needs_no_rounding_probe(monkeypatch, lr, descents):
    """Below 2/λ_max (4.0e-4 here) the MSE's descent is a contraction: rounding cannot grow, so
    no third descent is run to measure it; above, the probe runs (and the descents diverge)."""
    from verifiers.engines import engine_class

    calls = []
    for name in ("manual", "numeric"):
        cls = engine_class(name)
        original = cls.descend

        def counted(self, *args, original=original, **kwargs):
            calls.append(self.name)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "descend", counted)
    report = verify(DATA_CSV, Settings(engines=("manual", "numeric"), lr=lr, iterations=50))
    assert report.ok, report.failures
    assert len(calls) == descents, calls


def test_numeric_keeps_the_complex_step_where_central_differences_truncate():
    """With features of size 100 a central difference is off by ~1e-8 of the value; the check
    of the complex step against it allows for that (estimated from a second step, 2h)."""
    X = np.array([-24.3, -45.7, -42.4, -103.2, 24.0, 4.3, -39.8, -6.8])
    y = np.array([0.0, 1, 2, 1, 0, 1, 0, 0])
    engine = NumericEngine(SoftmaxModel(Dataset.from_arrays(X, y)))
    engine.evaluate(np.zeros(engine.model.size))
    assert engine.method == "complex step"


def test_numeric_falls_back_to_central_differences_for_a_loss_that_is_not_analytic():
    """numpy's own abs of a complex number is its modulus: the complex step sees no change."""
    from verifiers.models.user import UserLossModel

    X, y = np.linspace(-1, 1, 9), np.linspace(0, 2, 9) ** 2
    model = UserLossModel(
        Dataset.from_arrays(X, y),
        lambda b, w, X, y, xp: xp.mean(np.abs(y - (X @ w + b)) ** 3),
        "mean |r|³",
    )
    engine = NumericEngine(model)
    theta = np.array([0.3, -0.2])
    gradient = engine.evaluate(theta).gradient
    assert engine.method == "central differences"
    r = y - (X * theta[1] + theta[0])
    expected = -3 * np.array([np.mean(r * np.abs(r)), np.mean(X * r * np.abs(r))])
    np.testing.assert_allclose(gradient, expected, rtol=1e-8)  # central differences: ~ε^(2/3)
