"""Eigenvalues within the Hessian's rounding of zero are zero; the bound comes from the others."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verifiers import Settings, verify
from verifiers.compare import Tolerance
from verifiers.data import load_csv
from verifiers.stability import analyse, eigenvalue_rounding

from .helpers import DATA_CSV, NUMPY_ENGINES

TOLERANCE = Tolerance.for_dtype("float64", 100)
START = np.zeros(2)


def rotated(eigenvalues: list[float], angle: float = 0.3) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    Q = np.array([[c, -s], [s, c]])
    return Q @ np.diag(eigenvalues) @ Q.T


def test_rounding_noise_around_zero_is_zero_and_says_flat():
    # Terms of size 1 in each entry: rounding can move an eigenvalue by about 1e-14.
    H = rotated([-1.14e-14, 3.0])
    result = analyse(H, 0.1, START, None, constant=False, scales=np.ones((2, 2)),
                     tolerance=TOLERANCE)  # fmt: skip
    assert result.eigenvalues[0] == 0.0
    assert result.eigenvalues[1] == pytest.approx(3.0)
    assert result.zeros == 1
    assert not result.negative  # not "indefinite": the negative sign was rounding
    assert result.condition_number == math.inf
    assert result.max_stable_lr == pytest.approx(2 / 3.0)
    assert result.computed[0] != 0.0  # what the arithmetic gave is kept for the JSON


def test_a_hessian_that_is_all_rounding_sets_no_bound():
    H = rotated([-1.14e-14, 1.85e-19])
    result = analyse(H, 1e-4, START, None, constant=False, scales=np.full((2, 2), 50.0),
                     tolerance=TOLERANCE)  # fmt: skip
    assert list(result.eigenvalues) == [0.0, 0.0]
    assert result.max_stable_lr == math.inf  # not 2/1.85e-19 = 1.08e+19
    assert result.stable
    assert result.notes == []


def test_the_bound_follows_the_terms_not_a_fixed_ratio():
    # The same small eigenvalue is curvature when the entries are made of small terms, and
    # rounding when they are made of large ones that cancel.
    H = rotated([1e-9, 1.0])
    small = analyse(H, 0.1, START, None, scales=np.ones((2, 2)), tolerance=TOLERANCE)
    large = analyse(H, 0.1, START, None, scales=np.full((2, 2), 1e6), tolerance=TOLERANCE)
    assert small.zeros == 0
    assert small.eigenvalues[0] == pytest.approx(1e-9, rel=1e-3)
    assert large.zeros == 1
    assert small.rounding < 1e-12 < large.rounding
    assert eigenvalue_rounding(H, np.linalg.eigvalsh(H), np.full((2, 2), 1e6), TOLERANCE) == (
        pytest.approx(large.rounding)
    )


def test_real_negative_curvature_stays_negative():
    H = rotated([-0.5, 2.0])
    result = analyse(H, 0.1, START, None, constant=False, scales=np.ones((2, 2)),
                     tolerance=TOLERANCE)  # fmt: skip
    assert result.negative
    assert result.eigenvalues[0] == pytest.approx(-0.5)


def test_without_term_sizes_only_the_solver_s_error_counts():
    H = rotated([1e-12, 1.0])
    assert analyse(H, 0.1, START, None).zeros == 0
    assert analyse(H, 0.1, START, None).rounding < 1e-14


def test_the_reference_hessian_keeps_its_eigenvalues():
    report = verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES, iterations=5))
    stability = report.stability
    assert stability.zeros == 0
    assert stability.eigenvalues[0] == pytest.approx(0.0754774, rel=1e-6)
    assert 0 < stability.rounding < 1e-8
    assert stability.iterations_to_optimum == 2_105_308


def test_an_all_equal_x_has_a_flat_direction_reported_as_zero(tmp_path):
    data = tmp_path / "flat.csv"
    data.write_text("".join(f"3.0,{v}\n" for v in (1.0, 2.0, 4.0, 5.0)))
    report = verify(load_csv(data), Settings(engines=("manual", "numeric"), iterations=5))
    assert report.stability.zeros == 1
    assert report.stability.eigenvalues[0] == 0.0
    assert report.stability.computed[0] != 0.0  # the arithmetic left a little in it


def test_the_json_has_the_reported_and_the_computed_eigenvalues(tmp_path):
    from verifiers.report import to_json

    data = tmp_path / "flat.csv"
    data.write_text("".join(f"3.0,{v}\n" for v in (1.0, 2.0, 4.0, 5.0)))
    report = verify(load_csv(data), Settings(engines=("manual", "numeric"), iterations=5))
    stability = to_json(report)["stability"]
    assert stability["eigenvalues"][0] == 0.0
    assert stability["computed_eigenvalues"][0] != 0.0
    assert abs(stability["computed_eigenvalues"][0]) <= stability["eigenvalue_rounding"]
    assert stability["max_stable_lr"] == pytest.approx(2 / stability["eigenvalues"][1])
