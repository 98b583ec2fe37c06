"""minigrad.numpy against the standard itself, as array-api-strict (the reference implementation
of the standard, which accepts nothing beyond it) defines it.

1. Every name of the standard, up to the 2024.12 revision, and of its linalg extension, is in
   minigrad.numpy: the list comes from array-api-strict, so a name the standard adds shows up here.
2. A forward that runs on the strict namespace runs on minigrad's and gives the same values: the
   tests' own forwards (every case of the differential suite, the namespace tests' losses) and
   the forwards written against ``xp`` in docs/ (the notebook's loss).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minigrad.numpy as mxp
from minigrad import Tensor
from tests.minigrad import test_differential, test_namespace
from tests.minigrad.helpers import assert_close

strict = pytest.importorskip("array_api_strict")

REPO = Path(__file__).resolve().parents[2]
REVISION = "2024.12"
# array-api-strict's own helpers, not names of the standard
NOT_THE_STANDARD = {
    "ArrayAPIStrictFlags", "Device", "get_array_api_strict_flags", "reset_array_api_strict_flags",
    "set_array_api_strict_flags", "__version__", "fft",
}  # fmt: skip


def _revision(function: Any) -> str:
    """The revision of the standard that added `function` (array-api-strict wraps the later
    ones in a check that remembers it), or the first one."""
    code = getattr(function, "__code__", None)
    cells = getattr(function, "__closure__", None) or ()
    found = dict(
        zip(getattr(code, "co_freevars", ()), (c.cell_contents for c in cells), strict=False)
    )
    version = found.get("version")
    return version if isinstance(version, str) else "2021.12"


def _standard_names() -> list[str]:
    return sorted(
        name
        for name in strict.__all__
        if name not in NOT_THE_STANDARD and _revision(getattr(strict, name)) <= REVISION
    )


def _linalg_names() -> list[str]:
    from array_api_strict import _linalg

    return sorted(_linalg.__all__)


def test_the_list_of_names_is_the_standards() -> None:
    names = _standard_names()
    assert len(names) > 150  # functions, constants and dtypes of the main namespace
    for name in ("cosh", "argmax", "take_along_axis", "cumulative_prod", "float64", "newaxis"):
        assert name in names
    assert "isin" not in names  # added in 2025.12, past the revision minigrad declares
    assert {"solve", "cholesky", "vector_norm", "svd"} <= set(_linalg_names())


def test_no_name_of_the_standard_is_missing() -> None:
    missing = [name for name in _standard_names() if not hasattr(mxp, name)]
    assert missing == []
    missing_linalg = [name for name in _linalg_names() if not hasattr(mxp.linalg, name)]
    assert missing_linalg == []
    for name in _standard_names():
        if callable(getattr(strict, name)) and name[0].islower():
            assert callable(getattr(mxp, name)), name
    assert mxp.__array_api_version__ == REVISION


def test_dtypes_constants_and_info_are_the_standards() -> None:
    for name in ("float32", "float64", "int8", "int64", "uint8", "bool", "complex128"):
        assert hasattr(strict, name)
        assert np.dtype(getattr(mxp, name)) == np.dtype(name)
    assert mxp.pi == strict.pi
    assert mxp.e == strict.e
    assert mxp.newaxis is None
    assert np.isinf(mxp.inf)
    assert np.isnan(mxp.nan)
    info = mxp.__array_namespace_info__()
    assert info.default_device() == "cpu"
    assert info.default_dtypes()["real floating"] == np.float64
    assert set(info.dtypes(kind="real floating")) == {"float32", "float64"}
    assert mxp.finfo(mxp.float32).eps == np.finfo(np.float32).eps
    assert mxp.iinfo(mxp.int8).max == 127


# ---- forwards that run on the strict namespace run on minigrad's ---------------------------------
def _to_strict(value: np.ndarray) -> Any:
    return strict.asarray(np.asarray(value))


def _values(result: Any) -> list[np.ndarray]:
    """The arrays in a result (one array, or a tuple of them), as numpy arrays."""
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in _values(r)]
    if isinstance(result, Tensor):
        return [result.data]
    return [np.asarray(result)]


def _same_on_both(fn: Callable[..., Any], arrays: list[np.ndarray], what: str) -> None:
    got = _values(fn(mxp, *[mxp.asarray(a) for a in arrays]))  # integers stay integers
    try:
        expected = _values(fn(strict, *[_to_strict(a) for a in arrays]))
    except ValueError as refused:  # the standard leaves it unspecified (clip with min > max)
        if "must be" not in str(refused):
            raise
        return  # minigrad runs it all the same (numpy's and torch's answer)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype, what
        assert_close(g, e, 1e-10, 1e-12, what=what)


CASES = test_differential.CASES


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_differential_case_runs_on_both(case: test_differential.Case) -> None:
    arrays = test_differential.example_arrays(case)
    _same_on_both(case.fn, arrays, case.name)


@pytest.mark.parametrize(
    ("name", "fn", "values"),
    test_differential.SPECIAL,
    ids=[s[0] for s in test_differential.SPECIAL],
)
def test_each_edge_case_runs_on_both(name: str, fn: Callable[..., Any], values: Any) -> None:
    with np.errstate(all="ignore"):
        _same_on_both(fn, [np.asarray(values, dtype=np.float64)], name)


@pytest.mark.parametrize("loss", test_namespace.LOSSES, ids=lambda f: f.__name__)
def test_each_namespace_loss_runs_on_both(loss: Callable[..., Any]) -> None:
    arrays = list(test_namespace._data(loss))
    _same_on_both(lambda xp, b, w, X, y: loss(b, w, X, y, xp), arrays, loss.__name__)


# ---- forwards in docs/ ---------------------------------------------------------------------------
def _docs_forwards() -> list[tuple[str, str]]:
    """(name, source) of every function in docs/ (notebooks and .py files) taking an `xp`."""
    sources: list[tuple[str, str]] = []
    for path in sorted((REPO / "docs").rglob("*")):
        if path.suffix == ".py":
            sources.append((path.name, path.read_text(encoding="utf-8")))
        elif path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for cell in cells:
                if cell["cell_type"] == "code":
                    sources.append((path.name, "".join(cell["source"])))
    found = []
    for where, source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:  # a notebook cell with magics: not a forward
            continue
        # The forward with the imports of its file (math, numpy...), which it may use.
        imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and "xp" in [a.arg for a in node.args.args]:
                found.append((f"{where}:{node.name}", "\n".join([*imports, ast.unparse(node)])))
    return found


DOCS_FORWARDS = _docs_forwards()


def test_the_docs_have_a_forward_to_check() -> None:
    assert any(name.startswith("minigrad.ipynb:") for name, _ in DOCS_FORWARDS)


@pytest.mark.parametrize(("name", "source"), DOCS_FORWARDS, ids=[n for n, _ in DOCS_FORWARDS])
def test_each_docs_forward_runs_on_both(name: str, source: str) -> None:
    namespace: dict[str, Any] = {"np": np}
    exec(compile(source, name, "exec"), namespace)
    function = namespace[name.rsplit(":", 1)[1]]
    parameters = [p for p in function.__code__.co_varnames[: function.__code__.co_argcount]]
    data = np.loadtxt(REPO / "data" / "data.csv", delimiter=",")
    # w is a scalar beside a column x, a (d,) vector beside a matrix X.
    w = np.array([1.25]) if "X" in parameters else np.array(1.25)
    by_name = {"b": np.array(0.5), "w": w, "x": data[:, 0], "X": data[:, :1], "y": data[:, 1]}
    arrays = [by_name[p] for p in parameters if p != "xp"]
    position = parameters.index("xp")

    def call(xp: Any, *args: Any) -> Any:
        values = list(args)
        values.insert(position, xp)
        return function(*values)

    _same_on_both(call, arrays, name)


# ---- the functions without a derivative (and options the differential table leaves out) ---------
A = np.array([[3.0, -1.0, 2.0], [0.0, 2.0, -1.0]])
V = np.array([0.5, -2.0, 0.5, 3.0, 0.0])
INTS = np.array([[3, 5, 6], [0, 12, 7]])
M = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0], [1.0, -1.0, 0.0]])

VALUE_CASES: list[tuple[str, Callable[..., Any], list[np.ndarray]]] = [
    ("argmax", lambda xp, a: xp.argmax(a, axis=1, keepdims=True), [A]),
    ("argmin", lambda xp, a: xp.argmin(a), [A]),
    ("argsort", lambda xp, v: xp.argsort(v, descending=True), [V]),
    ("nonzero", lambda xp, a: xp.nonzero(a), [A]),
    ("count_nonzero", lambda xp, a: xp.count_nonzero(a, axis=0), [A]),
    ("searchsorted", lambda xp, v: xp.searchsorted(xp.sort(v), v, side="right"), [V]),
    ("unique_all", lambda xp, v: tuple(xp.unique_all(v)), [V]),
    ("unique_counts", lambda xp, v: tuple(xp.unique_counts(v)), [V]),
    ("unique_inverse", lambda xp, v: tuple(xp.unique_inverse(v)), [V]),
    ("unique_values", lambda xp, v: xp.unique_values(v), [V]),
    ("isin", lambda xp, i: xp.isin(i, xp.asarray([5, 7, 9])), [INTS]),
    ("bitwise", lambda xp, i: (xp.bitwise_and(i, 6), xp.bitwise_or(i, 1), xp.bitwise_xor(i, 3),
                               xp.bitwise_invert(i), xp.bitwise_left_shift(i, 1),
                               xp.bitwise_right_shift(i, 1)), [INTS]),
    ("integer arithmetic", lambda xp, i: (i + 1, i * 2, xp.floor_divide(i, 4),
                                          xp.remainder(i, 5), xp.sum(i), xp.prod(i, axis=0),
                                          xp.cumulative_sum(i, axis=1), xp.max(i)), [INTS]),
    ("logical", lambda xp, a: (xp.logical_xor(a > 0, a < 2), xp.all(a > -2, axis=1),
                               xp.any(a == 0)), [A]),
    ("signs", lambda xp, a: (xp.signbit(a), xp.sign(a), xp.floor_divide(a, 2.0),
                             xp.nextafter(a, xp.asarray(0.0, dtype=xp.float64))), [A]),
    ("complex parts", lambda xp, a: (xp.real(a), xp.conj(a)), [A]),
    ("creation", lambda xp: (xp.arange(2, 11, 3), xp.linspace(0.0, 1.0, 5, endpoint=False),
                             xp.full((2, 2), 7), xp.eye(3, 4, k=-1), xp.zeros_like(xp.ones(3)),
                             xp.full_like(xp.asarray([1, 2]), 5), xp.empty((0, 2)).shape and 0),
     []),
    ("meshgrid", lambda xp, v: tuple(xp.meshgrid(v[:2], v, indexing="ij")), [V]),
    ("repeat counts", lambda xp, v: xp.repeat(v, xp.asarray([1, 0, 2, 1, 3])), [V]),
    ("take flat", lambda xp, v: xp.take(v, xp.asarray([4, 0, 4])), [V]),
    ("unstack", lambda xp, a: xp.unstack(a, axis=0), [A]),
    ("astype", lambda xp, a: (xp.astype(a, xp.int32), xp.astype(a > 0, xp.float32)), [A]),
    ("vector_norm ords", lambda xp, v: tuple(xp.linalg.vector_norm(v, ord=o)
                                             for o in (0, 1, -float("inf"), float("inf"), 2.5)),
     [V]),
    ("matrix_norm ords", lambda xp, m: tuple(xp.linalg.matrix_norm(m, ord=o)
                                             for o in (-1, -2, float("-inf"), "nuc")), [M]),
    ("matrix_rank", lambda xp, m: xp.linalg.matrix_rank(m), [M]),
    ("svd full", lambda xp, m: xp.abs(xp.linalg.svd(m).U[:, :3]) + 0 * xp.linalg.svd(m).U[:, 3:4],
     [M]),
    ("qr complete", lambda xp, m: xp.abs(xp.linalg.qr(m, mode="complete").R), [M]),
    ("trace dtype", lambda xp, m: xp.linalg.trace(m[:3, :], dtype=xp.float32), [M]),
    ("slogdet sign", lambda xp, m: xp.linalg.slogdet(m[:3, :] - 2.0).sign, [M]),
    ("matrix_power 0", lambda xp, m: xp.linalg.matrix_power(m[:3, :], 0), [M]),
    ("tensordot int", lambda xp, m: xp.tensordot(m, m, axes=([0], [0])), [M]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fn", "arrays"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_each_other_function_gives_the_strict_values(
    name: str, fn: Callable[..., Any], arrays: list[np.ndarray]
) -> None:
    with np.errstate(all="ignore"):
        _same_on_both(fn, arrays, name)


def test_data_type_functions() -> None:
    assert mxp.can_cast(mxp.int32, mxp.int64)
    assert not mxp.can_cast(mxp.float64, mxp.float32)
    assert mxp.result_type(mxp.int32, mxp.float32) == np.float64  # numpy's promotion
    assert mxp.result_type(mxp.asarray([1], dtype=mxp.int8), 2) == np.int8
    assert mxp.result_type(mxp.float32, 1.5) == np.float32
    assert mxp.isdtype(mxp.float32, ("integral", "real floating"))
    assert not mxp.isdtype(mxp.bool, "numeric")
    assert mxp.broadcast_shapes((3, 1), (4,)) == (3, 4)
