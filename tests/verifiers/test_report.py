"""The printed report: it fits the width, keeps the published figures, and speaks plainly."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console

from verifiers import Settings, verify
from verifiers.data import Dataset, load_csv
from verifiers.report import print_report, verdict
from verifiers.report.layout import glue, output_width, table, wrap
from verifiers.results import Check, Failure, FailureKind, Outcome, Status
from verifiers.user_formula import load_function

from .helpers import DATA_CSV, NUMPY_ENGINES, PUBLISHED

WIDTHS = [60, 80, 120]
SEED_FIGURES = [PUBLISHED["b"], PUBLISHED["w"], PUBLISHED["error"], PUBLISHED["start_error"]]
# Words that mean internal text leaked into the report.
LEAKS = re.compile(r"\bNone\b|\bnan\b|\binf\b|…|\(s\)|Traceback|<function")

FORMULAS = """
def right(b, w, X, y):
    r = y - (X @ w + b)
    return -(2 / len(y)) * r.sum(), -(2 / len(y)) * (X.T @ r)


def half(b, w, X, y):
    r = y - (X @ w + b)
    return -(1 / len(y)) * r.sum(), -(1 / len(y)) * (X.T @ r)


def flipped(b, w, X, y):
    r = y - (X @ w + b)
    return (2 / len(y)) * r.sum(), (2 / len(y)) * (X.T @ r)
"""


def render(report, width: int, quiet: bool = False) -> str:
    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=width), quiet=quiet)
    return buffer.getvalue()


def assert_fits(text: str, width: int) -> None:
    for line in text.splitlines():
        assert cell_len(line) <= width, (width, line)
        assert line == line.rstrip(), f"trailing spaces: {line!r}"
    assert not LEAKS.search(text), LEAKS.search(text).group(0)


def features(d: int, rows: int = 60) -> Dataset:
    rng = np.random.default_rng(d)
    X = rng.normal(size=(rows, d)) * 3 + 1
    y = X @ rng.normal(size=d) + 2 + 0.1 * rng.normal(size=rows)
    return Dataset.from_arrays(X, y, path=f"{d}-features.csv")


@pytest.fixture(scope="module")
def reference():
    """The reference run (numpy engines: loop gives the published figures)."""
    return verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES))


@pytest.fixture(scope="module")
def formulas(tmp_path_factory):
    path = tmp_path_factory.mktemp("formulas") / "mine.py"
    path.write_text(FORMULAS)
    return path


def under_test(path, name: str, **settings):
    spec = f"{path}:{name}"
    return verify(
        load_csv(DATA_CSV),
        Settings(engines=NUMPY_ENGINES, manual=spec, **settings),
        formula=load_function(spec, "--manual"),
    )


# ---- it fits ------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", WIDTHS)
def test_the_reference_report_fits_and_keeps_the_published_figures(reference, width):
    text = render(reference, width)
    assert_fits(text, width)
    for figure in SEED_FIGURES:
        assert repr(figure) in text  # 17 significant digits, never cut
    for heading in ("Loss and gradient", "Hessian", "Gradient descent", "Least-squares optimum"):
        assert heading in text
    ending = text.split("\n\n")[-1]  # after the last blank line: notes and the verdict
    assert ending.startswith("OK: all 4 engines agree")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("d", [1, 2, 50])
def test_every_line_fits_for_any_number_of_features(d, width):
    report = verify(features(d), Settings(engines=("manual", "minigrad", "numeric"), iterations=30))
    assert report.ok, report.failures
    text = render(report, width)
    assert_fits(text, width)
    assert f"{d} feature{'s' if d != 1 else ''}," in text
    if d == 50:  # one worst element per engine; the full vectors are left to --json
        assert "w[49]" not in text
        assert "in --json" in text
    else:
        assert f"dL/dw{'[1]' if d == 2 else ''} = " in text


@pytest.mark.parametrize("width", [40, 60])
def test_narrow_terminals_and_long_paths_still_fit(formulas, width):
    report = under_test(formulas, "half", iterations=5)
    assert_fits(render(report, width), width)


def test_an_engine_that_is_not_installed_is_named_with_its_install_command():
    report = verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES, iterations=3))
    report.engines["torch"] = type(report.engines["loop"])(
        "torch", status=Status.SKIPPED, reason='the torch package is not installed (install with: '
        'pip install "torch==2.13.0")'
    )  # fmt: skip
    text = render(report, 60)
    assert_fits(text, 60)
    assert "skipped: torch:" in text
    assert '"torch==2.13.0")' in text


# ---- plain words --------------------------------------------------------------------------------
def test_plurals_are_right():
    data = Dataset.from_arrays(np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 3.0, 2.0]))
    report = verify(data, Settings(engines=("manual", "numeric"), iterations=1, points=2))
    text = " ".join(render(report, 80).split())
    assert "1 feature," in text
    assert "3 rows" in text
    assert "1 iteration " in text
    assert "after 1 step," in text
    assert "2 engines:" in text


def test_agreeing_engines_show_words_not_noise_digits(reference):
    # The last bits of BLAS sums differ between CPUs, and so does how far below the tolerance
    # an agreeing engine lands: an agreement says which kind it is, never its size, so every
    # row reads the same on every machine.
    text = render(reference, 80)
    gradient = text.split("Loss and gradient")[1].split("Hessian")[0]
    rows = [line.split() for line in gradient.splitlines() if line.startswith("  minigrad")]
    assert rows == [["minigrad", "cpu", "within", "rounding", "agrees"]]
    for name in ("loop", "manual"):
        assert re.search(rf"\n  {name}\s+cpu\s+within rounding\s+agrees", gradient)
    hessian = text.split("Hessian")[1].split("Gradient descent")[0]
    # numeric's Hessian is central differences of its gradient: its own error is allowed for.
    assert re.search(r"\n  numeric\s+within its own error\s+agrees", hessian)
    descent = text.split("Gradient descent")[1]
    assert re.search(r"\n  minigrad\s+loss 112\.615\s+within rounding\s+agrees", descent)
    assert not re.search(r"< 1e-\d+", text)
    assert "seconds" not in text  # wall times are in the JSON only


def test_without_a_hessian_of_its_own_the_formula_is_said_to_use_the_built_in_one(formulas):
    text = render(under_test(formulas, "right", iterations=5), 80)
    hessian = text.split("Hessian (")[1].split("Gradient descent")[0]
    assert "built-in closed form" in hessian
    assert "manual (built-in closed form)" in hessian


# ---- the formula under test is the subject ------------------------------------------------------
def test_the_formula_under_test_is_named_first_and_judged_last(formulas):
    report = under_test(formulas, "half", iterations=20)
    text = render(report, 80)
    lines = text.splitlines()
    assert lines[0].startswith("Under test: your gradient, half() in")
    assert str(formulas) in " ".join(text.split())
    verdict_at = next(i for i, line in enumerate(lines) if line.startswith("WRONG: your formula"))
    after = lines[verdict_at + 1 :]
    diagnosis = next(i for i, line in enumerate(after) if not line.startswith("  "))
    assert after[diagnosis].startswith("diagnosis: every derivative is half the true value")
    assert "the 2 from differentiating the square is missing" in " ".join(text.split())
    heading = "MISMATCH: manual (your formula) disagrees: gradient: dL/db at start"
    assert any(line.startswith(heading) for line in after)
    assert verdict(report).startswith(f"WRONG: your formula ({formulas}:half) disagrees")


def test_a_row_never_contradicts_itself(formulas):
    text = render(under_test(formulas, "half", iterations=20), 120)
    for line in text.splitlines():
        words = line.split()
        if "agrees" in words or "consensus" in words:
            assert "DISAGREES" not in words, line
            assert "✗" not in words, line
    gradient = text.split("Loss and gradient")[1].split("Hessian")[0]
    assert re.search(
        r"manual \(your formula\)\s+cpu\s+relative 0\.5 \(dL/db at start\)\s+DISAGREES",
        gradient,
    )
    assert re.search(r"\n  loop\s+cpu\s+within rounding\s+agrees", gradient)


def test_a_diverging_formula_is_described_in_words(formulas):
    report = under_test(formulas, "flipped", iterations=100)
    text = render(report, 80)
    assert_fits(text, 80)
    assert re.search(r"manual \(your formula\)\s+diverged at iteration \d+\s+loop did not", text)
    flat = " ".join(text.split())
    assert "diagnosis: every derivative is the true value with the sign flipped" in flat


def test_when_every_descent_diverges_they_agree_and_say_where():
    report = verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES, lr=1e-3, iterations=50))
    assert report.ok
    text = render(report, 80)
    assert_fits(text, 80)
    flat = " ".join(text.split())
    assert "loop diverged at iteration 6" in flat
    assert "lr 0.001 is too large" in flat


def test_quiet_prints_notes_and_the_verdict_only(reference):
    text = render(reference, 80, quiet=True)
    assert text.startswith("OK: all 4 engines agree")
    assert "Loss and gradient" not in text


def test_a_model_without_an_optimum_has_no_optimum_line(reference):
    from dataclasses import replace

    report = replace(reference, optimum=replace(reference.optimum, theta=None), stability=None)
    text = render(report, 80)
    assert_fits(text, 80)
    assert "Least-squares optimum" not in text
    assert "Hessian (constant" in text  # the engines' Hessians are still compared


# ---- the layout ---------------------------------------------------------------------------------
def test_wrap_never_breaks_glued_words_or_leaves_trailing_spaces():
    text = "a " * 10 + glue("b = 0.08893651993741346") + " end"
    lines = wrap(text, 30, "first: ", "  ")
    assert "b = 0.08893651993741346" in "\n".join(lines)
    assert all(cell_len(line) <= 30 and line == line.rstrip() for line in lines)
    assert wrap("", 10, "x: ") == ["x:"]


def test_a_table_too_wide_splits_and_keeps_every_value():
    values = ["0.08893651993741346", "1.4777440851894448", "112.61481011613473"]
    lines = table(["engine", "b", "w", "loss"], [["loop", *values]], 40)
    assert all(cell_len(line) <= 40 for line in lines)
    text = "\n".join(lines)
    for value in values:
        assert value in text
    assert text.count("loop") == 3  # the first column is repeated in each part


def test_a_table_wraps_words_before_it_splits():
    lines = table(["engine", "device"], [["numeric", "cpu (complex step) on a long line"]], 30)
    assert all(cell_len(line) <= 30 for line in lines)
    assert lines[0].split() == ["engine", "device"]
    assert len([line for line in lines if "engine" in line]) == 1


@pytest.mark.parametrize(
    ("columns", "tty", "expected"),
    [("100", False, 100), ("", False, 80), ("", True, 132), ("abc", False, 80), ("20", True, 40)],
)
def test_the_width_comes_from_columns_then_the_terminal_then_80(
    monkeypatch, columns, tty, expected
):
    import os

    class Stream(io.StringIO):
        def isatty(self):
            return tty

        def fileno(self):
            return 1

    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((132, 40)))
    assert output_width(Stream()) == expected


def test_an_engine_that_fails_is_named_with_its_error():
    from dataclasses import replace

    report = verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES, iterations=5))
    broken = replace(report.engines["minigrad"], status=Status.ERROR, reason="descent failed: boom")
    report = replace(
        report,
        engines={**report.engines, "minigrad": broken},
        failures=[
            Failure(FailureKind.ERROR, "minigrad failed: descent failed: boom", engine="minigrad")
        ],
        outcome=Outcome.ENGINE_FAILED,
    )
    text = render(report, 60)
    assert_fits(text, 60)
    opening, ending = text.split("\n\n")[0], text.split("\n\n")[-1]  # the answer, the verdict
    assert opening.startswith("NOT OK: minigrad failed; the other engines agree")
    assert "ERROR: minigrad failed: descent failed: boom" in opening
    assert "MISMATCH" not in text
    assert ending == "NOT OK: minigrad failed; the other engines agree\n"


def test_a_descent_that_diverges_alone_is_told_in_words():
    from dataclasses import replace

    from verifiers.compare import Difference

    report = verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES, iterations=5))
    mine = report.engines["minigrad"]
    diverged = replace(mine.trajectory, diverged_at=3)
    internal = Difference("the iteration where the descent diverged", 3.0, -1.0, 0.0)
    broken = replace(
        mine,
        status=Status.MISMATCH,
        trajectory=diverged,
        differences={**mine.differences, Check.DESCENT: internal},
    )
    descent = report.verdicts[Check.DESCENT]
    reference = descent.reference
    pairs = {**descent.pairs, ("minigrad", reference): internal, (reference, "minigrad"): internal}
    verdict = replace(
        descent,
        differences={**descent.differences, "minigrad": internal},
        pairs=pairs,
        wrong=["minigrad"],
        disagreeing=[(reference, "minigrad")],
        outcome=Outcome.ENGINES_DISAGREE,
    )
    failure = Failure(
        FailureKind.MISMATCH,
        "minigrad disagrees",
        engine="minigrad",
        check=Check.DESCENT,
        against=reference,
        difference=internal,
    )
    report = replace(
        report,
        engines={**report.engines, "minigrad": broken},
        verdicts={**report.verdicts, Check.DESCENT: verdict},
        failures=[failure],
        outcome=Outcome.ENGINES_DISAGREE,
    )
    text = render(report, 80)
    assert_fits(text, 80)
    assert "-1.0" not in text  # the internal stand-in for "did not diverge"
    opening, ending = text.split("\n\n")[0], text.split("\n\n")[-1]  # the answer, the verdict
    sentence = "NOT OK: the exact engines disagree in the descent: minigrad disagrees with loop,"
    assert opening.startswith(sentence)
    assert "MISMATCH: minigrad disagrees: descent: minigrad diverged at iteration 3" in opening
    assert "loop did not diverge" in opening
    assert ending.startswith(sentence)
    assert "MISMATCH" not in ending


# ---- the answer first ---------------------------------------------------------------------------
def test_a_wrong_formula_s_report_opens_with_the_answer_and_ends_with_the_verdict(formulas):
    report = under_test(formulas, "half", iterations=20)
    text = render(report, 80)
    assert_fits(text, 80)
    lines = text.splitlines()
    flat = [" ".join(line.split()) for line in lines]
    # The banner naming the formula, then the verdict, the diagnosis and the worst difference.
    assert lines[0].startswith("Under test: your gradient, half() in")
    opening = text.split("\n\n")[0]
    after_banner = opening.split("checked against every other engine.\n", 1)[1]
    answer = " ".join(after_banner.split())
    assert answer.startswith(f"WRONG: your formula ({formulas}:half) disagrees with")
    assert "diagnosis: every derivative is half the true value" in answer
    assert "MISMATCH: manual (your formula) disagrees: gradient: dL/db at start" in answer
    assert re.search(r"\n  manual += -72\.73505055\n  numeric += -145\.4701011\n", after_banner)
    assert "difference 72.7, relative 0.5 (allowed" in answer
    assert (
        after_banner.index("WRONG")
        < after_banner.index("diagnosis")
        < after_banner.index("MISMATCH")
    )
    # Then the evidence, section by section.
    evidence = text.split("\n\n", 1)[1]
    assert evidence.startswith(f"{DATA_CSV}: 100 rows, 1 feature, float64")
    assert evidence.index("Loss and gradient") < evidence.index("Gradient descent")
    # The verdict sentence again, alone, at the very end: a reader of the tail finds it.
    ending = text.split("\n\n")[-1]
    assert ending == "\n".join(wrap(verdict(report), 80, rest="  ")) + "\n"
    assert "diagnosis" not in ending
    assert sum(line.startswith("WRONG: your formula") for line in flat) == 2
    assert sum(line.startswith("diagnosis:") for line in flat) == 1


def test_the_report_of_a_run_that_agrees_keeps_its_order(reference):
    # No answer block on top: what is checked first, the verdict once, at the end.
    text = render(reference, 80)
    assert text.startswith(f"{DATA_CSV}: 100 rows, 1 feature, float64\n")
    assert text.count("OK: all 4 engines agree") == 1
    assert text.split("\n\n")[-1].startswith("OK: all 4 engines agree")


def test_quiet_gives_the_answer_alone(formulas):
    report = under_test(formulas, "half", iterations=20)
    text = render(report, 80, quiet=True)
    assert text.startswith("WRONG: your formula")
    assert "diagnosis: every derivative is half the true value" in text
    assert "MISMATCH: manual (your formula) disagrees" in text
    assert "Loss and gradient" not in text
    assert text.count("WRONG") == 1


def test_a_disagreement_in_the_descent_table_says_it_is_relative(formulas):
    text = render(under_test(formulas, "half", iterations=20), 120)
    descent = text.split("Gradient descent")[1]
    assert re.search(
        r"manual \(your formula\)\s+loss [\d.]+\s+relative [\d.e+-]+ \(loss after \d+ steps?\)"
        r"\s+DISAGREES",
        descent,
    )


# ---- digits that every machine prints -----------------------------------------------------------
def test_values_show_only_the_digits_rounding_cannot_reach():
    from verifiers.report.text import ROUNDING_ZERO, _stable

    assert _stable(0.09999999999999999, 1e-14) == "0.1"  # the last bits are the CPU's
    assert _stable(-145.47010110737295, 0.0) == "-145.47010110737295"  # exact: in full
    assert _stable(5.763345344e-30, 1e-12) == ROUNDING_ZERO
    assert _stable(0.0754774312185, 1.2e-10, 6) == "0.0754774"  # the cap
    assert _stable(0.0754774312185, 1.2e-7, 6) == "0.07548"  # digits above 10× the noise
    assert _stable(float("inf"), 1.0) == "infinite"


def test_an_engine_s_values_are_shown_to_the_digits_its_tolerance_leaves_sure():
    # Logistic regression on binary.csv: no loop, so the start's values come from an engine
    # whose last bits depend on the CPU; dL/db is -0.1 up to those bits.
    report = verify(
        load_csv(DATA_CSV.parent / "binary.csv"),
        Settings(model="logistic", engines=("manual", "minigrad", "numeric"), iterations=20),
    )
    text = render(report, 80)
    start = text.split("at the start")[1].split("Largest")[0]
    assert re.search(r"dL/db += -0\.1\n", start), start
    assert "0.09999999999999999" not in text
    after = text.split("after 20 steps, from")[1].split("Largest")[0]
    for value in re.findall(r"= (\S+)", after):
        assert len(value.lstrip("-").replace(".", "").lstrip("0")) < 17, value


def test_zero_eigenvalues_are_zero_and_the_bound_comes_from_the_others(tmp_path):
    # A log-cosh loss on the reference data is saturated at the start (residuals in the tens):
    # its Hessian is zero within rounding, whatever the arithmetic left in it.
    import math

    def log_cosh(b, w, X, y, xp):
        r = y - (X @ w + b)
        return xp.mean(xp.logaddexp(r, -r) - math.log(2))

    report = verify(
        load_csv(DATA_CSV),
        Settings(engines=("minigrad", "numeric"), iterations=5, loss="log_cosh"),
        loss=log_cosh,
    )
    stability = report.stability
    assert stability.zeros == 2
    assert list(stability.eigenvalues) == [0.0, 0.0]
    assert stability.max_stable_lr == math.inf
    text = " ".join(render(report, 80).split())
    assert "eigenvalues 0 and 0 (zero within rounding, ±" in text
    assert "flat along every direction" in text
    assert "no eigenvalue is above zero, so the curvature sets no bound on the learning rate" in (
        text
    )
    assert "indefinite" not in text
    assert "d²L/db² = 0 (within rounding)" in text
    assert "e-19" not in text
    assert "e+19" not in text
