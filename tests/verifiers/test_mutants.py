"""The mutation catalogue (``tests/verifiers/mutants``): every wrong hand formula is caught.

Each mutant runs through :func:`verifiers.verify` at the default check settings (points, seed,
tolerances, every installed engine) with ``iterations=0``: the gradient check has to catch it
by itself, and the test saves the descents' time. The right formulas must be OK the same way.
One of each kind also runs through the command line at its full defaults (exit status 1).

``ESCAPES_TODAY`` lists the mutants the verifier still says OK to (issue 18): they are strict
xfails, so each one that starts being caught fails the suite until it is removed from the set.
``python -m tests.verifiers.mutants.score`` prints the score.

The part marked ``slow`` holds most of the catalogue and most command-line runs; the fast part
(``pytest -m "not slow"``) keeps the first mutant of every kind and of every model, and the first
right formula of every model. (A formula wrong in one region of every model is also caught in
the fast tier by tests/verifiers/test_verdict_rule.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.verifiers.mutants import KINDS, MODELS, MUTANTS, RIGHT, Mutant, by_id, make_data
from tests.verifiers.mutants.base import REPO_ROOT

from .helpers import has, run_cli

# numeric tries a complex step on every loss; an xp.astype to float64 drops the imaginary part
# with this warning before numeric falls back to central differences, as designed
pytestmark = pytest.mark.filterwarnings(
    "ignore:Casting complex values to real:numpy.exceptions.ComplexWarning"
)
# The verdicts (and the escapes below) are those of every engine: without torch and jax they
# would be others'.
EVERY_ENGINE = pytest.mark.skipif(
    not (has("torch") and has("jax")),
    reason="the catalogue's verdicts are measured with every engine installed (torch and jax)",
)

# Mutants today's verifier says OK to, at the settings of test_mutant_is_caught. Remove an entry
# when the verifier starts catching it (the strict xfail fails until then).
ESCAPES_TODAY: frozenset[str] = frozenset()
ESCAPES = pytest.mark.xfail(strict=True, reason="escapes today's check: issue 18")

# The command line at its full defaults (descents included) on one of each kind. It
# blames the formula ("WRONG: your formula") for all but these, which it still says OK to: the
# descent from the start stays out of their regions.
CLI_MUTANTS = (
    "mse:doubled",
    "loss:mse_doubled_w",  # escapes the gradient check (issue 18's cause 1); the descent shows it
    "ridge:penalty_flipped",
    "logistic:missing_b",
    "mse:swapped",
    "ridge:summed",
    "logistic:sigmoid_prime",
    "softmax:float32",
    "loss:mse_relative_1e8_b",  # the same
    "mse:opposite_signs",
    "mlp:clipped_w1",
    "loss:huber_quadratic_doubled",
    "softmax:pruned_w",  # escapes the gradient check; the descent moves W through its band
    "logistic:clipped_13",
    "mse:zero_rows_skipped",
)
CLI_ESCAPES_TODAY: frozenset[str] = frozenset()
CLI_RIGHT = ("mse:gradient@data", "loss:mse_gradient/mse_vecdot@data")
# The right MSE written with xp.vecdot exits 1 today: numeric's own descent (central
# differences) is compared without its own error and blamed (issue 18).
CLI_RIGHT_FAILS_TODAY: frozenset[str] = frozenset()
NUMERIC_DESCENT = pytest.mark.xfail(
    strict=True, reason="numeric's central-difference descent is blamed: issue 18"
)
CLI_FAST = {"mse:doubled", "loss:mse_doubled_w", "mse:gradient@data"}  # the rest are slow


def _first_of_each(records: list[Mutant], key: str) -> set[str]:
    seen: dict[str, str] = {}
    for m in records:
        seen.setdefault(getattr(m, key), m.id)
    return set(seen.values())


FAST = _first_of_each(MUTANTS, "kind") | _first_of_each(MUTANTS, "model")
FAST |= _first_of_each(RIGHT, "model")


def _param(record: Mutant, fast: set[str], escapes: frozenset[str]) -> pytest.param:
    marks = [] if record.id in fast else [pytest.mark.slow]
    if record.id in escapes:
        marks.append(ESCAPES)
    return pytest.param(record, id=record.id, marks=marks)


# ---- the verdicts ------------------------------------------------------------------------------
@EVERY_ENGINE
@pytest.mark.parametrize("mutant", [_param(m, FAST, ESCAPES_TODAY) for m in MUTANTS])
def test_mutant_is_caught(mutant: Mutant) -> None:
    report = mutant.verify()
    assert not report.ok, (
        f"{mutant.id} [{mutant.kind}] escaped: {mutant.description}; the verifier said OK"
    )


@EVERY_ENGINE
@pytest.mark.parametrize("formula", [_param(m, FAST, frozenset()) for m in RIGHT])
def test_right_formula_is_ok(formula: Mutant) -> None:
    report = formula.verify()
    assert report.ok, f"{formula.id}: {report.failures}"


# ---- the catalogue itself ----------------------------------------------------------------------
def _witness_param(record: Mutant) -> pytest.param:
    """minigrad's namespace has no ``linalg``: a loss using it is differentiated by torch or jax."""
    needs = record.loss_name == "mse_norm" and not (has("torch") or has("jax"))
    marks = [pytest.mark.skip(reason="xp.linalg needs torch or jax")] if needs else []
    return pytest.param(record, id=record.id, marks=marks)


@pytest.mark.parametrize("mutant", [_witness_param(m) for m in MUTANTS])
def test_mutant_is_wrong_where_it_says(mutant: Mutant) -> None:
    """At a point of its region, each mutant is off by far more than the default tolerance
    (itself a margin over rounding), so no verdict on it can hinge on a last bit."""
    assert mutant.error_at_witness() >= 100


@pytest.mark.parametrize("formula", [_witness_param(m) for m in RIGHT])
def test_right_formula_agrees_where_the_mutants_differ(formula: Mutant) -> None:
    assert formula.error_at_witness() <= 1


def test_the_catalogue_is_large_and_named_uniquely() -> None:
    ids = [m.id for m in MUTANTS + RIGHT]
    assert len(ids) == len(set(ids))
    assert len(MUTANTS) >= 100
    assert {m.kind for m in MUTANTS} == set(KINDS)
    assert {m.model for m in MUTANTS} == set(MODELS)
    for model in MODELS:  # every model has the classic slips, tiny errors and regions
        kinds = {m.kind for m in MUTANTS if m.model == model}
        assert {"factor", "sign", "float32", "tiny", "sign-pattern", "far-out"} <= kinds, model


def test_every_mutant_has_a_right_formula_on_its_data() -> None:
    """Each data set (and loss, and options) a mutant is checked on is one where the right
    formula is checked too, so a catch is the mutant's, not the data's."""
    checked = {(m.model, m.data, m.loss_name, tuple(sorted(m.options.items()))) for m in RIGHT}
    for m in MUTANTS:
        assert (m.model, m.data, m.loss_name, tuple(sorted(m.options.items()))) in checked, m.id


def test_every_formula_is_its_modules_function_of_that_name() -> None:
    """So ``--manual FILE:name`` (and ``--loss FILE:loss_name``) name the very function."""
    for m in MUTANTS + RIGHT:
        assert m.formula.__name__ == m.name, m.id
        assert Path(m.formula.__code__.co_filename).resolve() == REPO_ROOT / m.file, m.id
        if m.loss is not None:
            assert m.loss.__name__ == m.loss_name, m.id


def test_the_escape_lists_name_mutants_of_the_catalogue() -> None:
    ids = {m.id for m in MUTANTS}
    assert not ESCAPES_TODAY - ids
    assert not set(CLI_MUTANTS) - ids
    assert not CLI_ESCAPES_TODAY - set(CLI_MUTANTS)
    assert not CLI_RIGHT_FAILS_TODAY - set(CLI_RIGHT)
    assert {by_id(i).id for i in CLI_RIGHT} == set(CLI_RIGHT)


@pytest.mark.parametrize("name", sorted(make_data.FILES))
def test_the_small_data_sets_are_what_make_data_writes(name: str) -> None:
    assert (make_data.HERE / name).read_text() == make_data.FILES[name]()


def test_a_mutant_module_loads_from_its_path_as_the_command_line_loads_it() -> None:
    """The modules import the catalogue's base by its absolute name, which the command line
    (run from the repository root) can resolve."""
    from verifiers.user_formula import load_function

    doubled = load_function(f"{REPO_ROOT / by_id('mse:doubled').file}:doubled", "--manual")
    X, y = np.array([[1.0], [2.0]]), np.array([1.0, 3.0])
    grad_b, grad_w = doubled(0.0, np.zeros(1), X, y)
    assert (grad_b, grad_w[0]) == (-8.0, -14.0)  # twice (-2·mean(r), -2·mean(x·r))


# ---- the command line, at its full defaults ------------------------------------------------------
def _cli_param(identifier: str, failing: frozenset[str], mark: pytest.MarkDecorator):
    marks = [] if identifier in CLI_FAST else [pytest.mark.slow]
    if identifier in failing:
        marks.append(mark)
    return pytest.param(identifier, id=identifier, marks=marks)


@EVERY_ENGINE
@pytest.mark.parametrize(
    "identifier", [_cli_param(i, CLI_ESCAPES_TODAY, ESCAPES) for i in CLI_MUTANTS]
)
def test_the_command_line_exits_1_on_a_mutant(identifier: str) -> None:
    mutant = by_id(identifier)
    result = run_cli(*mutant.cli_args(), "--quiet")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "WRONG: your formula" in result.stdout, result.stdout[-2000:]


@EVERY_ENGINE
@pytest.mark.parametrize(
    "identifier", [_cli_param(i, CLI_RIGHT_FAILS_TODAY, NUMERIC_DESCENT) for i in CLI_RIGHT]
)
def test_the_command_line_exits_0_on_a_right_formula(identifier: str) -> None:
    result = run_cli(*by_id(identifier).cli_args(), "--quiet")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


# ---- the score ----------------------------------------------------------------------------------
def test_the_score_counts_catches_and_names_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The script's arithmetic and layout, with the verdicts given (the verifier's own are what
    test_mutant_is_caught checks)."""
    from io import StringIO

    from tests.verifiers.mutants import score

    verdicts = {"mse:doubled": "caught", "mse:clipped_w": "escaped", "mse:halved": "error: x"}
    monkeypatch.setattr(score, "outcome", lambda mutant: verdicts[mutant.id])
    out = StringIO()
    assert score.score([by_id(i) for i in verdicts], out) == verdicts
    text = out.getvalue()
    assert "mutation catalogue: 1/3 caught" in text
    assert "mse: 1/3 caught" in text
    assert "  far-out        0/1   escapes: clipped_w\n" in text
    assert "  factor         1/2   no verdict: halved\n" in text
    assert "mse:clipped_w [far-out]" in text.split("escapes (1):")[1]
