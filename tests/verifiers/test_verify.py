"""The Python API: verdicts, the checker failing on wrong formulas, diagnosis, stability."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings

from verifiers import Settings, UsageError, verify
from verifiers.data import Dataset, load_csv
from verifiers.engines import engine_class
from verifiers.engines.minigrad import MinigradEngine
from verifiers.models import MODELS
from verifiers.models import mse as formulas
from verifiers.report import to_json, verdict
from verifiers.results import Check, FailureKind, Outcome
from verifiers.settings import Limits
from verifiers.stability import iterations_to_reach

from .helpers import DATA_CSV, NUMPY_ENGINES, PUBLISHED, datasets

FAST = Settings(engines=NUMPY_ENGINES, iterations=50)


@pytest.fixture(scope="module")
def data():
    return load_csv(DATA_CSV)


@pytest.fixture(scope="module")
def full_report(data):
    return verify(data)  # every engine, default settings


def test_default_run_agrees_and_reproduces_the_figures(full_report):
    assert full_report.ok, full_report.failures
    loop = full_report.engines["loop"]
    assert loop.trajectory.theta.tolist() == [PUBLISHED["b"], PUBLISHED["w"]]
    assert loop.trajectory.losses[-1] == PUBLISHED["error"]
    assert loop.evaluations[0].loss == PUBLISHED["start_error"]
    for entry in full_report.engines.values():
        assert entry.status in ("ok", "skipped"), (entry.name, entry.reason)
    assert [p.label for p in full_report.points] == [
        "start", "optimum", *(f"point {k}" for k in range(1, 17)),
        *(f"anchored {k}" for k in range(1, 5)),
        *(f"near the optimum {k}" for k in range(1, 5)),
    ]  # fmt: skip


def test_optimum_and_stability_facts(full_report, data):
    x, y = data.X[:, 0], data.y
    w_star, b_star = np.polyfit(x, y, 1)
    optimum = full_report.optimum.theta
    np.testing.assert_allclose(optimum, [b_star, w_star], rtol=1e-10)
    assert optimum[0] == pytest.approx(7.991, abs=1e-3)
    assert optimum[1] == pytest.approx(1.3224, abs=1e-4)
    # An independent eigenvalue computation of H = 2 [[1, mean x], [mean x, mean x²]].
    H = 2 * np.array([[1, x.mean()], [x.mean(), (x**2).mean()]])
    largest = max(np.linalg.eigvals(H).real)
    stability = full_report.stability
    assert stability.max_stable_lr == pytest.approx(2 / largest, rel=1e-12)
    assert stability.max_stable_lr == pytest.approx(4.01e-4, rel=1e-3)
    assert stability.condition_number == pytest.approx(66_000, rel=0.01)


def test_json_report_has_the_documented_keys(full_report):
    document = json.loads(json.dumps(to_json(full_report), allow_nan=False))
    assert document["ok"] is True
    assert document["data"] == {
        "path": str(DATA_CSV), "rows": 100, "features": 1, "dtype": "float64",
        "header": None, "delimiter": ",",
    }  # fmt: skip
    assert document["settings"]["lr"] == 1e-4
    assert document["settings"]["iterations"] == 1000
    assert document["settings"]["start"] == {"b": 0.0, "w": [0.0]}
    assert set(document["optimum"]) == {"b", "w"}
    loop = document["engines"]["loop"]
    assert loop["status"] == "ok"
    assert loop["device"] == "cpu"
    assert loop["gradient"]["loss"] == PUBLISHED["start_error"]
    assert set(loop["gradient"]) == {"loss", "b", "w", "params"}
    assert loop["descent"]["b"] == PUBLISHED["b"]  # full precision survives the round trip
    assert loop["descent"]["w"] == [PUBLISHED["w"]]
    assert loop["descent"]["loss"] == PUBLISHED["error"]
    assert loop["descent"]["seconds"] > 0
    assert len(document["engines"]["manual"]["hessian"]) == 2
    history = loop["descent"]["loss_history"]
    assert history["iteration"] == list(range(1001))
    assert history["loss"][0] == PUBLISHED["start_error"]
    assert history["loss"][-1] == PUBLISHED["error"]


def test_long_loss_histories_are_thinned_in_json(data):
    report = verify(data, Settings(engines=("manual", "minigrad"), iterations=5000, points=2))
    history = to_json(report)["engines"]["manual"]["descent"]["loss_history"]
    assert len(history["iteration"]) == 1001
    assert history["iteration"][:3] == [0, 5, 10]
    assert history["iteration"][-1] == 5000
    trajectory = report.engines["manual"].trajectory
    assert history["loss"][-1] == trajectory.losses[5000]


# --- the checker must be able to fail -----------------------------------------------------------
def _half(b, w, X, y):  # the 2 from the square forgotten
    r = y - (X @ w + b)
    return -(1 / len(y)) * r.sum(), -(1 / len(y)) * (X.T @ r)


def _flipped(b, w, X, y):
    r = y - (X @ w + b)
    return (2 / len(y)) * r.sum(), (2 / len(y)) * (X.T @ r)


def _summed(b, w, X, y):  # sum where the mean belongs
    r = y - (X @ w + b)
    return -2 * r.sum(), -2 * (X.T @ r)


def _divided_twice(b, w, X, y):
    r = y - (X @ w + b)
    n = len(y)
    return -(2 / n) * r.sum() / n, -(2 / n) * (X.T @ r) / n


def _doubled(b, w, X, y):
    r = y - (X @ w + b)
    return -(4 / len(y)) * r.sum(), -(4 / len(y)) * (X.T @ r)


def _without_b(b, w, X, y):  # the residual forgets b
    r = y - X @ w
    return -(2 / len(y)) * r.sum(), -(2 / len(y)) * (X.T @ r)


def _swapped(b, w, X, y):
    grad_b, grad_w = formulas.gradient(b, w, X, y)
    return grad_w[0], np.array([grad_b])


def _w_only_doubled(b, w, X, y):
    grad_b, grad_w = formulas.gradient(b, w, X, y)
    return grad_b, 2 * grad_w


def _missing_x(b, w, X, y):  # dL/dw written like dL/db
    grad_b, _ = formulas.gradient(b, w, X, y)
    return grad_b, np.array([grad_b])


def _shapeless(b, w, X, y):  # wrong in no recognisable way
    grad_b, grad_w = formulas.gradient(b, w, X, y)
    return grad_b + 0.3, grad_w * 1.07 + b


@pytest.mark.parametrize(
    ("formula", "pattern", "wrong"),
    [
        (_half, "factor 1/2", "b"),
        (_flipped, "factor -1", "b"),
        (_summed, "factor N", "b"),
        (_divided_twice, "factor 1/N", "b"),
        (_doubled, "factor 2", "b"),
        (_without_b, "missing-b", "b"),
        (_swapped, "swapped", "b"),
        (_w_only_doubled, "factor 2", "w"),
        (_missing_x, "missing-x", "w"),
        (_shapeless, None, "w"),
    ],
)
def test_a_wrong_formula_is_caught_named_and_diagnosed(data, formula, pattern, wrong):
    report = verify(data, FAST, formula=formula)
    assert not report.ok
    manual = report.engines["manual"]
    assert manual.status == "mismatch"
    failure = report.failures[0]
    assert (failure.kind, failure.engine, failure.check) == (
        FailureKind.MISMATCH,
        "manual",
        Check.GRADIENT,
    )
    assert failure.difference.where.startswith(f"dL/d{wrong} at")
    # Every other engine agrees with the others: only the formula under test is named.
    assert all(e.status == "ok" for n, e in report.engines.items() if n != "manual")
    assert report.diagnosis is not None
    assert report.diagnosis.pattern == pattern, report.diagnosis.summary
    if pattern is None:
        assert report.diagnosis.summary.startswith("no simple pattern")


def test_diagnosis_sentences(data):
    sentences = {
        _half: "the 2 from differentiating the square is missing",
        _flipped: "sign flipped",
        _summed: "a sum where the mean belongs",
        _without_b: "b is left out of the residual",
        _swapped: "the derivatives of b and w are swapped",
    }
    for formula, sentence in sentences.items():
        assert sentence in verify(data, FAST, formula=formula).diagnosis.summary


def test_a_broken_engine_other_than_manual_is_the_one_named(data, monkeypatch):
    original = MinigradEngine.evaluate

    def off_by_a_little(self, theta):
        evaluation = original(self, theta)
        evaluation.gradient = evaluation.gradient * (1 + 1e-9)
        return evaluation

    monkeypatch.setattr(MinigradEngine, "evaluate", off_by_a_little)
    report = verify(data, Settings(engines=("manual", "minigrad", "numeric"), iterations=5))
    assert [n for n, e in report.engines.items() if e.status == "mismatch"] == ["minigrad"]
    assert "relative 1e-09" in report.engines["minigrad"].reason
    assert report.diagnosis is None  # the formula under test is fine


def test_the_checker_holds_at_the_optimum_on_random_data():
    @settings(max_examples=10)
    @given(data=datasets(max_features=4))
    def check(data: Dataset) -> None:
        report = verify(data, Settings(engines=NUMPY_ENGINES, iterations=20, points=2))
        assert report.ok, report.failures

    check()


def test_float32_runs_agree_across_engines():
    data32 = load_csv(DATA_CSV, "float32")
    report = verify(data32, Settings(iterations=200))
    assert report.ok, report.failures
    assert report.tolerance.rtol == pytest.approx(64 * np.finfo(np.float32).eps)
    assert report.engines["manual"].trajectory.losses.dtype == np.float64  # reported as floats


# --- stability and divergence -------------------------------------------------------------------
@pytest.mark.parametrize("factor", [1.02, 0.98])
def test_divergence_just_above_the_stable_rate_and_not_just_below(data, factor, full_report):
    lr = full_report.stability.max_stable_lr * factor
    report = verify(data, Settings(lr=lr, iterations=3000, points=2))
    steps = {n: e.trajectory.diverged_at for n, e in report.engines.items() if e.trajectory}
    assert len(steps) >= 4
    assert report.ok, report.failures  # every engine diverges at the same iteration, or none does
    if factor > 1:
        assert len(set(steps.values())) == 1
        assert None not in steps.values()
        assert any(note.startswith("warning: --lr") for note in report.notes)
    else:
        assert set(steps.values()) == {None}
        assert not any(note.startswith("warning: --lr") for note in report.notes)


def test_an_engine_diverging_at_another_iteration_is_a_disagreement(data, monkeypatch):
    original = MinigradEngine.descend

    def late(self, theta, lr, iterations, progress=None):
        trajectory = original(self, theta, lr, iterations, progress)
        trajectory.diverged_at = (
            None if trajectory.diverged_at is None else trajectory.diverged_at + 1
        )
        return trajectory

    monkeypatch.setattr(MinigradEngine, "descend", late)
    report = verify(data, Settings(engines=("loop", "manual", "minigrad"), lr=1e-3, points=2))
    assert report.engines["minigrad"].status == "mismatch"
    assert "diverged" in report.engines["minigrad"].reason


def test_iterations_to_reach_matches_a_simulated_descent():
    rng = np.random.default_rng(3)
    data = Dataset.from_arrays(rng.normal(size=(30, 2)), rng.normal(size=30))
    b, w = formulas.least_squares(data.X, data.y)
    optimum = np.concatenate([[b], w])
    H = formulas.hessian(data.X)
    lr = 0.5
    predicted = iterations_to_reach(H, lr, np.zeros(3), optimum)
    theta, k = np.zeros(3), 0
    while np.linalg.norm(theta - optimum) > 1e-6:
        grad_b, grad_w = formulas.gradient(theta[0], theta[1:], data.X, data.y)
        theta = theta - lr * np.concatenate([[grad_b], grad_w])
        k += 1
    assert abs(predicted - k) <= 1  # the same count, up to rounding at the boundary
    assert iterations_to_reach(H, 2.5 / np.linalg.eigvalsh(H)[-1], np.zeros(3), optimum) is None


def test_the_reference_rate_needs_millions_of_iterations(full_report):
    # b barely moves: the slow eigen-direction shrinks by (1 - 1e-4 · 0.0755) per step.
    assert 1_000_000 < full_report.stability.iterations_to_optimum < 10_000_000


# --- notes, caps, settings ----------------------------------------------------------------------
def test_the_loop_is_capped_on_big_inputs_and_says_so(monkeypatch, data):
    # 0.02 s buys int(0.02 / (the loop's fixed cost of one evaluation)) evaluations, not
    # 26 + 1001: every check point first, then as many descent steps as are left.
    monkeypatch.setattr("verifiers.plan.LIMITS", Limits(seconds=0.02))
    per_evaluation = engine_class("loop").estimate_seconds(MODELS["mse"](data))
    steps = int(0.02 / per_evaluation) - 26
    assert 0 < steps < 1000
    report = verify(data, Settings(engines=("loop", "manual"), iterations=1000))
    loop = report.engines["loop"]
    assert loop.capped_iterations == steps
    assert loop.trajectory.steps == steps
    assert sorted(loop.evaluations) == list(range(26))  # every check point
    assert report.ok, report.failures
    assert any(
        f"loop: checked at every check point, and its descent capped at {steps} of 1,000" in note
        for note in report.notes
    )
    document = to_json(report)
    assert len(document["engines"]["loop"]["checks"]) == 26
    assert document["engines"]["loop"]["descent"]["capped_iterations"] == steps


def _companions_limited(monkeypatch, data, steps: float) -> tuple[str, str]:
    """Shortened descents of `steps` iterations' work; returns (the engine that descends all
    the way beside manual, the one shortened): minigrad, since numeric's method is decided at
    run time (it may fall back to central differences), however cheap its step."""
    model = MODELS["mse"](data)
    monkeypatch.setattr("verifiers.plan.LIMITS", Limits(companion_work=steps * model.work()))
    assert engine_class("numeric").estimate_seconds(model) < engine_class(
        "minigrad"
    ).estimate_seconds(model)
    return "minigrad", "numeric"


def test_long_descents_run_whole_for_the_hand_formulas_and_the_cheapest_exact_engine(
    monkeypatch, data
):
    # The exact engine with the cheaper estimated step whose method is fixed descends all the
    # way beside manual; the other the first steps within the work, rounded down to 1, 2 or
    # 5 × 10^k.
    whole, cut = _companions_limited(monkeypatch, data, 230)
    report = verify(data, Settings(engines=("manual", "minigrad", "numeric"), iterations=1000))
    assert report.ok, report.failures
    assert report.engines["manual"].trajectory.steps == 1000
    assert report.engines[whole].trajectory.steps == 1000
    assert report.engines[cut].capped_iterations == 200
    assert report.engines[cut].trajectory.steps == 200
    assert any(
        f"{cut} descend the first 200 of 1,000 iterations and is compared over those; "
        f"manual and {whole} descend all 1,000" in note
        for note in report.notes
    ), report.notes
    assert verdict(report).endswith(
        "the descent (1,000 iterations by 2 engines, the others' first 200)"
    )
    # every engine is still checked at every check point
    assert all(len(e.evaluations) == 26 for e in report.engines.values())


def test_full_descents_turns_the_shortening_off(monkeypatch, data):
    whole, cut = _companions_limited(monkeypatch, data, 10)
    settings = Settings(engines=("manual", "minigrad", "numeric"), iterations=300)
    shortened = verify(data, settings)
    assert shortened.engines[cut].trajectory.steps == 10
    assert shortened.engines[whole].trajectory.steps == 300
    whole_run = verify(data, Settings(**{**vars(settings), "full_descents": True}))
    assert all(e.trajectory.steps == 300 for e in whole_run.engines.values())
    assert all(e.capped_iterations is None for e in whole_run.engines.values())


def test_a_formula_wrong_only_late_on_the_descent_path_is_caught_past_the_shortened_ones(
    monkeypatch, data
):
    # Wrong only where 0.06 < b < 0.09, which the descent from 0 reaches after about 650 of its
    # 1,000 steps (b ends at 0.0889) and no check point does: the shortened engine descends 10
    # steps, so only the comparison with the engine that descends all the way can see it.
    whole, cut = _companions_limited(monkeypatch, data, 10)

    def formula(b, w, X, y):
        r = y - (X @ w + b)
        slip = 1.001 if 0.06 < b < 0.09 else 1.0
        return -2 * r.mean() * slip, -2 * X.T @ r / len(y)

    settings = Settings(engines=("manual", "minigrad", "numeric"), iterations=1000, points=2)
    report = verify(data, settings, formula=formula)
    descent = report.verdicts[Check.DESCENT]
    assert report.verdicts[Check.GRADIENT].outcome is Outcome.AGREE
    assert report.engines[cut].trajectory.steps == 10
    assert descent.outcome is Outcome.FORMULA_WRONG
    assert descent.wrong == ["manual"]
    assert descent.pairs["manual", cut].ok  # they agree over the first 10 steps
    assert not descent.pairs["manual", whole].ok
    assert not report.ok
    assert verdict(report) == (
        f"WRONG: your formula (the given formula) disagrees with {whole} ({cut} descended the "
        "first 10 iterations only, where it agrees)"
    )


def test_at_a_million_rows_two_engines_descend_whole_and_the_others_the_first_50(data):
    from verifiers.engines import planning_facts, row
    from verifiers.plan import make_plan

    rng = np.random.default_rng(0)
    x = rng.normal(50, 15, 1_000_000)
    big = Dataset.from_arrays(x, 1.3 * x + 8 + rng.normal(0, 10, x.size))
    plan = make_plan(big, Settings())
    model = plan.model
    usable = [n for n in plan.engines if n != "loop"]  # the loop has its own 3 s
    cheapest = min(
        (n for n in usable if n not in ("manual", "numeric")),
        key=lambda n: (planning_facts(n).estimate_seconds(model), row(n).preference(Check.DESCENT)),
    )
    whole = {n for n in usable if plan.budgets[n].iterations == 1000}
    assert whole == {"manual", cheapest}
    assert {plan.budgets[n].iterations for n in usable if n not in whole} == {50}
    assert all(plan.budgets[n].points == len(plan.points) for n in plan.engines)
    assert plan.budgets["loop"].iterations < 50  # capped by its own time, not raised to 50
    # the reference run itself is not shortened
    assert all(b.iterations == 1000 for b in make_plan(data, Settings()).budgets.values())


def test_an_engine_that_cannot_afford_every_point_checks_some_and_says_so(monkeypatch, data):
    per_evaluation = engine_class("loop").estimate_seconds(MODELS["mse"](data))
    monkeypatch.setattr("verifiers.plan.LIMITS", Limits(seconds=10.5 * per_evaluation))
    report = verify(data, Settings(engines=("loop", "manual"), iterations=1000))
    loop = report.engines["loop"]
    assert sorted(loop.evaluations) == [0, 1, 2, 3, 4]  # half the 10 evaluations it can afford
    assert loop.capped_iterations == 5
    assert report.ok, report.failures
    assert any("loop: checked at 5 of the 26 check points" in note for note in report.notes)


def test_the_loop_is_skipped_with_a_reason_when_one_gradient_is_too_slow(monkeypatch):
    # On 100,000 rows the per-point loop costs 30 times what the vectorised engines do.
    rng = np.random.default_rng(0)
    x = rng.normal(size=100_000)
    data = Dataset.from_arrays(x, 2 * x + rng.normal(size=x.size))
    model = MODELS["mse"](data)
    per_evaluation = engine_class("loop").estimate_seconds(model)
    limit = per_evaluation / 2
    assert engine_class("manual").estimate_seconds(model) < limit / 4
    monkeypatch.setattr("verifiers.plan.LIMITS", Limits(seconds=limit))
    report = verify(data, Settings(engines=("loop", "manual", "numeric"), iterations=1))
    loop = report.engines["loop"]
    assert loop.status == "skipped"
    assert loop.reason.startswith(
        f"one gradient over 100,000 rows and 2 parameters would take about {per_evaluation:.2g} s"
    )
    assert report.ok, report.failures
    assert any(
        note.startswith("loop skipped: one gradient over 100,000 rows") for note in report.notes
    )


def test_singular_data_is_verified_with_a_note():
    data = Dataset.from_arrays(np.full(10, 3.0), np.arange(10.0))
    report = verify(data, Settings(engines=NUMPY_ENGINES, iterations=20))
    assert report.ok, report.failures
    assert any("every x is the same" in note for note in report.notes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": 0.0}, "--lr must be a positive finite number"),
        ({"lr": float("nan")}, "--lr must be a positive finite number"),
        ({"iterations": -1}, "--iterations must be between 0 and 10,000,000, not -1"),
        ({"engines": ("manual", "bogus")}, "unknown engine 'bogus'"),
        ({"engines": ()}, "no engines to run"),
        ({"start": np.zeros(3)}, "--start needs 2 values (b,w) for 1 feature, got 3"),
        ({"rtol": -1.0}, "--rtol must be a finite number >= 0"),
    ],
)
def test_bad_settings_raise_usage_errors(data, change, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        verify(data, Settings(**{**FAST.__dict__, **change}))


def test_two_runs_give_identical_reports_apart_from_timing(data):
    def without_timing(document):
        for entry in document["engines"].values():
            entry.pop("setup_seconds", None)
            if "descent" in entry:
                entry["descent"].pop("seconds")
        return document

    first = without_timing(to_json(verify(data, Settings(iterations=100))))
    second = without_timing(to_json(verify(data, Settings(iterations=100))))
    assert json.dumps(first) == json.dumps(second)
