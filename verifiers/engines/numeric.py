"""`numeric`: derivatives from loss values alone, independent of every derivative formula.

Gradient by the complex step: for a loss that is analytic in θ, ``dL/dθ_j = Im L(θ + i·h·e_j) / h``
with no subtraction, so no cancellation: it is accurate to rounding even with h = 1e-20. The
loss runs in a numpy namespace whose ``abs``, ``sign``, ``maximum``... decide by the real part,
so losses with kinks (|r|, a Huber loss, the stable form of the logistic loss) stay analytic
on either side of each kink. A loss that cannot run on complex numbers, or whose complex-step
gradient disagrees with central differences at the first point checked, is differentiated by
central differences ``(L(θ + h e_j) - L(θ - h e_j)) / 2h`` with ``h = ε^(1/3)·max(1, |θ_j|)``
instead; the engine's device column says which, and its own error is added to its tolerance.
The Hessian is the central difference of the gradient, with steps h and 2h extrapolated.

For the (b, w) models whose loss is a sum over rows, the loss at every complex point
``θ + i·h_j·e_j`` (and at θ itself) is evaluated in one pass over the data: the model's own
``row_sum`` runs once per block of rows on a batch of parameter vectors, the batch on a trailing
axis. The one shortcut is the product of the real rows X with the batch of complex w's, formed
as ``X·(w + i·h·e_j) = X·w + i·h·X[:, j]``: exactly the complex product, without multiplying by
the zeros of the other imaginary parts. It is still the loss evaluated at complex points, and
checked against the one-point-at-a-time evaluation at the first point (see :class:`_Batch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from verifiers.chunks import CHUNK_ROWS, row_chunks
from verifiers.engines.base import (
    Derivatives,
    Engine,
    Evaluation,
    FunctionEngine,
    Trajectory,
    on_one_blas_thread,
)
from verifiers.models.base import Model
from verifiers.results import Check, Trust
from verifiers.settings import UsageError

__all__ = ["NumericEngine", "NumericFunctions", "complex_safe_numpy", "real_numpy"]

COMPLEX_STEP = 1e-20
# Above this many parameters the complex step is compared with central differences on this many
# of them (the comparison costs two loss evaluations per parameter).
CHECKED_DIRECTIONS = 64


def real_numpy() -> Any:
    """numpy as an array API namespace (through array-api-compat when it is installed)."""
    try:
        import array_api_compat.numpy as xp
    except ImportError:  # numpy 2 itself has nearly all of the standard's names
        xp = np
    return xp


class _ComplexSafe:
    """numpy's namespace, with the functions that are not analytic on complex numbers replaced
    by the analytic branch that the real part selects (numpy compares complex numbers by their
    real part first, so ``maximum``, ``where(a > b, ...)`` and ``clip`` already do)."""

    def __init__(self) -> None:
        self._numpy = real_numpy()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._numpy, name)

    @staticmethod
    def abs(x: Any) -> Any:  # |x| = x·sign(Re x): the analytic branch on each side of 0
        return x * np.sign(np.real(x))

    @staticmethod
    def sign(x: Any) -> Any:
        return np.sign(np.real(x)).astype(np.result_type(x))

    def logaddexp(self, a: Any, b: Any) -> Any:  # log(eᵃ + eᵇ) = m + log(e^(a-m) + e^(b-m))
        m = np.maximum(a, b)
        return m + np.log(np.exp(a - m) + np.exp(b - m))


complex_safe_numpy = _ComplexSafe()

# A block of the batched evaluation holds at most this many values (rows × parameter vectors),
# so that its few temporary complex arrays (256 KiB each) stay in a core's own cache: measured
# at 1e6 rows, 2^14 values took a step in 3.5 times the hand-written numpy step's time, 2^16 in
# 4.5 (memory traffic) and 2^12 in 6 (numpy's per-call cost).
BATCH_VALUES = 1 << 14


class _Batched:
    """A namespace for a loss evaluated at a batch of parameter vectors at once: every array
    carries the batch on its last axis, and ``sum`` without an axis adds up every axis but
    that one (one total per parameter vector)."""

    def __init__(self, base: Any) -> None:
        self._base = base

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def sum(self, x: Any, axis: Any = None, **options: Any) -> Any:
        if axis is None:
            axis = tuple(range(np.ndim(x) - 1))
        return self._base.sum(x, axis=axis, **options)


class _Batch:
    """The w of a batch of parameter vectors: column c is ``w + i·steps[c]·e_{columns[c]}``
    (w itself where ``columns[c] < 0``: the vector perturbs b, or nothing).

    The model computes ``X @ w``; numpy hands that product to :meth:`__rmatmul__`, which forms
    it as ``X·w + i·steps[c]·X[:, columns[c]]``. That is exactly the complex product: the
    imaginary part of each entry is one product plus zeros. Any other use of w fails, and the
    engine then evaluates one parameter vector at a time.
    """

    __array_ufunc__ = None  # makes numpy defer `X @ batch` to __rmatmul__

    def __init__(
        self, w: np.ndarray, columns: Any, steps: Any, dtype: Any, shared: dict | None = None
    ) -> None:
        self.w, self.dtype = w, np.dtype(dtype)
        self.columns, self.steps = np.asarray(columns, dtype=np.intp), np.asarray(steps)
        self.shape = (*w.shape, len(self.columns))
        self._shared = {} if shared is None else shared  # X·w, shared by a sweep's batches

    def _real_product(self, X: np.ndarray) -> np.ndarray:
        if self._shared.get("X") is not X:
            # With one feature X·w is one product per row, which numpy does ~10x faster than
            # the N×1 matrix product (OpenBLAS takes it a row at a time); the same numbers.
            product = X[:, 0] * self.w[0] if X.shape[1] == 1 else X @ self.w
            self._shared.update(X=X, product=product)
        return self._shared["product"]

    def __rmatmul__(self, X: np.ndarray) -> np.ndarray:
        p = self._real_product(X)
        if self.dtype.kind != "c":
            return np.broadcast_to(p[:, None], (p.size, len(self.columns)))
        values = np.empty((len(self.columns), p.size), dtype=self.dtype)  # one row per vector
        values.real[...] = p
        perturbs_w = self.columns >= 0
        if perturbs_w.all():
            np.multiply(X[:, self.columns].T, self.steps[:, None], out=values.imag)
        else:
            values.imag[...] = 0
            chosen = self.columns[perturbs_w]
            values.imag[perturbs_w] = X[:, chosen].T * self.steps[perturbs_w, None]
        return values.T  # rows × vectors, each vector's values side by side in memory


class NumericEngine(Engine):
    name = "numeric"
    method_decided_at_run_time = True  # the complex step, or central differences

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        self._complex = np.result_type(self.dtype, np.complex64)
        self._eps = float(np.finfo(self.dtype).eps)
        self._real = real_numpy()
        self.method: str | None = None  # decided at the first evaluation
        self.device = "cpu (complex step)"
        self._X = model.data.X
        self._y = model.prepared_targets
        # Whether the model's loss can run on a batch of (b, w) at once (see _Batch); checked
        # against one-at-a-time evaluation at the first point.
        self._batched = _batchable(model)
        self._batched_checked = False

    # ---- the loss -----------------------------------------------------------------------------
    def loss(self, theta: np.ndarray, xp: Any = None) -> Any:
        """The model's own loss at θ (real or complex), a chunk of rows at a time."""
        xp = xp or self._real
        model = self.model
        params = model.unflatten(theta)
        if not model.additive:
            return model.loss(params, self._X, self._y, xp)
        total = sum(model.row_sum(params, self._X[r], self._y[r], xp) for r in model.chunks)
        total = total / self.data.rows
        extra = model.penalty(params, xp)
        return total if extra is None else total + extra

    # ---- gradients ----------------------------------------------------------------------------
    # ---- the batched evaluation (the (b, w) models) ------------------------------------------
    def _sweep(self, theta: np.ndarray, directions: list[int]) -> tuple[float, np.ndarray]:
        """The loss at θ and at ``θ + i·h_j·e_j`` for each j in `directions`, in one pass over
        the rows; returns the loss and the complex-step parts ``Im L(θ + i h_j e_j) / h_j``."""
        model, rows = self.model, self.data.rows
        theta = np.asarray(theta, dtype=self.dtype)
        b, w = theta[0], theta[1:]
        steps = self._complex_steps(theta)[directions]
        columns = np.asarray(directions) - 1  # θ_0 is b: column -1, no column of X
        per_block, part_rows = _layout(rows, len(directions))
        batches, shared = [], {}
        for start in range(0, len(directions), per_block):
            block = slice(start, min(start + per_block, len(directions)))
            b_batch = np.full(block.stop - block.start, b, dtype=self._complex)
            b_batch[columns[block] < 0] += 1j * steps[block][columns[block] < 0]
            w_batch = _Batch(w, columns[block], steps[block], self._complex, shared)
            batches.append((block, {"b": b_batch, "w": w_batch}))
        real = {"b": np.reshape(b, 1), "w": _Batch(w, [-1], [0.0], self.dtype, shared)}
        real_xp, complex_xp = _Batched(self._real), _Batched(complex_safe_numpy)
        real_total, totals = self.dtype.type(0), np.zeros(len(directions), self._complex)
        with np.errstate(all="ignore"):
            for part in row_chunks(rows, part_rows):
                X, y = self._X[part], self._y[part]
                y = y.reshape(*y.shape, 1)
                real_total += model.row_sum(real, X, y, real_xp)[0]
                for block, params in batches:
                    totals[block] += model.row_sum(params, X, y, complex_xp)
            penalty = model.penalty(model.unflatten(theta), self._real)
            loss = real_total / rows + (0 if penalty is None else penalty)
            values = totals / rows
            if penalty is not None:  # the penalty at each complex point, one at a time
                for k, j in enumerate(directions):
                    probe = theta.astype(self._complex)
                    probe[j] += 1j * steps[k]
                    values[k] += model.penalty(model.unflatten(probe), complex_safe_numpy)
        return float(loss), values.imag / steps

    def _batched_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The loss and the complex-step gradient from one sweep; the directions whose
        imaginary part underflowed are redone one at a time with a larger step."""
        loss, gradient = self._sweep(theta, list(range(self.model.size)))
        smallest = float(np.finfo(self.dtype).tiny) / self._eps
        steps = self._complex_steps(theta)
        tiny = np.flatnonzero((np.abs(gradient * steps) < smallest) & (gradient != 0))
        if tiny.size:
            gradient[tiny] = self._one_at_a_time(theta, list(tiny))
        return loss, gradient

    def _check_batched(self, theta: np.ndarray) -> None:
        """Use the batched sweep only where it gives what one point at a time gives (a model
        whose loss uses w other than through X @ w, or reduces rows its own way, would not)."""
        self._batched_checked = True
        if not self._batched:
            return
        size = self.model.size
        sample = sorted({0, 1, size - 1, size // 2})
        try:
            loss, parts = self._sweep(theta, sample)
        except Exception:
            self._batched = False
            return
        with np.errstate(all="ignore"):
            want_loss = float(self.loss(np.asarray(theta, dtype=self.dtype)))
            want = self._one_at_a_time(theta, sample)
        scales = self.model.scales_at(np.asarray(theta, dtype=np.float64))
        allowed = 1e3 * self._eps * (np.abs(want) + scales.gradient[sample])
        loss_allowed = 1e3 * self._eps * (abs(want_loss) + scales.loss)
        self._batched = bool(
            np.all(np.abs(parts - want) <= allowed) and abs(loss - want_loss) <= loss_allowed
        )

    @staticmethod
    def _complex_steps(theta: np.ndarray) -> np.ndarray:
        """The complex step of each θ_j (as :meth:`_one_at_a_time` starts it)."""
        return COMPLEX_STEP * np.maximum(1.0, np.abs(np.asarray(theta, dtype=np.float64)))

    # ---- one point at a time ------------------------------------------------------------------
    def complex_step_gradient(self, theta: np.ndarray) -> np.ndarray:
        """``Im L(θ + i h e_j) / h`` for every j; raises if the loss cannot take complex θ."""
        if self._batched and self._batched_checked:
            return self._batched_gradient(theta)[1]
        return self._one_at_a_time(theta, range(np.size(theta)))

    def _one_at_a_time(self, theta: np.ndarray, directions) -> np.ndarray:
        """The complex-step parts for `directions`, one loss evaluation each."""
        theta = np.asarray(theta, dtype=self._complex)
        directions = list(directions)
        gradient = np.empty(len(directions))
        # The smallest imaginary part that still carries every digit: above the subnormals.
        smallest = float(np.finfo(self.dtype).tiny) / self._eps
        for k, j in enumerate(directions):
            h = COMPLEX_STEP * max(1.0, abs(theta[j].real))
            # Tiny data makes tiny imaginary parts: a larger step keeps them above the
            # subnormals, up to a step whose h² truncation error is still below rounding.
            largest = math.sqrt(self._eps) * max(1.0, abs(theta[j].real)) * 1e-2
            while True:
                probe = theta.copy()
                probe[j] += 1j * h
                with np.errstate(all="ignore"):
                    value = complex(self.loss(probe, complex_safe_numpy))
                part = value.imag
                if abs(part) >= smallest or part == 0 or h >= largest:
                    break
                h = min(h * 2.0**40, largest)
            if abs(part) < smallest and part != 0:
                raise ArithmeticError("the complex step underflows")
            gradient[k] = part / h
        return gradient

    def central_difference_gradient(
        self, theta: np.ndarray, directions=None, factor: float = 1.0
    ) -> np.ndarray:
        """``(L(θ + h e_j) - L(θ - h e_j)) / 2h`` for every j (or the j in `directions`), with
        the step h multiplied by `factor`."""
        theta = np.asarray(theta, dtype=self.dtype)
        directions = range(theta.size) if directions is None else directions
        gradient = np.empty(len(directions))
        for k, j in enumerate(directions):
            h = factor * self._step(theta[j])
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            gradient[k] = (float(self.loss(up)) - float(self.loss(down))) / (
                float(up[j]) - float(down[j])
            )
        return gradient

    def _step(self, value: float) -> float:
        """A central-difference step: ε^(1/3), scaled by the size of the value it moves."""
        return self._eps ** (1 / 3) * max(1.0, abs(float(value)))

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self._loss_and_gradient(theta)[1]

    def _loss_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=self.dtype)
        if self.method is None:
            self.method = self._choose_method(theta)
            self.device = f"cpu ({self.method})"
        if self.method == "complex step" and self._batched:
            return self._batched_gradient(theta)
        loss = float(self.loss(theta))
        if self.method == "complex step":
            return loss, self.complex_step_gradient(theta)
        return loss, self.central_difference_gradient(theta)

    def _choose_method(self, theta: np.ndarray) -> str:
        """The complex step when it runs and agrees with central differences, else the latter.

        Central differences are off by their rounding (about ε·L/h) and by their truncation
        (about h² times the third derivative: large where the loss curves fast, as with features
        of size 50); the truncation is estimated from a second difference with step 2h, whose
        error is 4 times as large, so that a correct complex step is not taken for a wrong one.

        With more than CHECKED_DIRECTIONS parameters the two are compared on that many of them
        (spread over θ, b and the first and last included): the comparison costs a few loss
        evaluations per direction, more than the gradient itself.
        """
        if not self.model.analytic:
            return "central differences"
        try:
            self._check_batched(theta)
            complex_step = self.complex_step_gradient(theta)
        except Exception:  # a loss that cannot take complex numbers, or underflows
            return "central differences"
        size = np.size(theta)
        directions = np.unique(np.linspace(0, size - 1, min(size, CHECKED_DIRECTIONS)).round())
        directions = directions.astype(int)
        central = self.central_difference_gradient(theta, directions)
        coarse = self.central_difference_gradient(theta, directions, 2.0)
        truncation = np.abs(coarse - central) / 3
        noise = self._noise(theta)[directions]
        allowed = 1e3 * self._eps * (np.abs(central) + noise) + 2 * truncation
        if not np.all(np.abs(complex_step[directions] - central) <= allowed):
            return "central differences"
        return "complex step"

    def trust(self, check: Check) -> Trust:
        """The complex step is exact (no subtraction, no truncation at h = 1e-20); central
        differences, and the Hessian (differences of the gradient), are approximate."""
        if check is Check.HESSIAN or self.method != "complex step":
            return Trust.APPROXIMATE
        return Trust.EXACT

    @on_one_blas_thread
    def evaluate(self, theta: np.ndarray) -> Evaluation:
        with np.errstate(all="ignore"):
            loss, gradient = self._loss_and_gradient(theta)
            noise = None if self.method == "complex step" else self.central_noise(theta)
        return Evaluation(loss, gradient, noise)

    def central_noise(self, theta: np.ndarray) -> np.ndarray:
        """The error of a central-difference gradient at θ, per component, as a size of summed
        terms (its absolute error is about ε times this): the rounding of the two losses
        divided by the step, plus the truncation, estimated from the difference with twice the
        step (whose error is 4 times as large)."""
        theta = np.asarray(theta, dtype=self.dtype)
        with np.errstate(all="ignore"):
            fine = self.central_difference_gradient(theta)
            coarse = self.central_difference_gradient(theta, factor=2.0)
        truncation = np.nan_to_num(np.abs(coarse - fine) / 3, nan=np.inf)
        return self._noise(theta) + truncation / self._eps

    def descend(
        self,
        theta: np.ndarray,
        lr: float,
        iterations: int,
        progress: Callable[[int], None] | None = None,
    ) -> Trajectory:
        """The generic descent; with central differences, its θ carries their error: each step
        moves θ by lr times a gradient off by up to its noise, and those add up."""
        trajectory = super().descend(theta, lr, iterations, progress)
        if self.method is not None and self.method != "complex step":
            with np.errstate(all="ignore"):
                error = 4 * self._eps * self.central_noise(theta)
            trajectory.theta_noise = lr * trajectory.steps * error
        return trajectory

    def step_values(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            return self._loss_and_gradient(theta)

    def _noise(self, theta: np.ndarray) -> np.ndarray:
        """Σ|terms|-like size of a central difference's error, per component: L's scale / h."""
        scale = self.model.scales_at(np.asarray(theta, dtype=np.float64)).loss
        return np.array([scale / self._step(t) for t in np.asarray(theta, dtype=np.float64)])

    def gradient_noise(self, theta: np.ndarray) -> np.ndarray | float:
        """The central differences' rounding, as a size of summed terms (none for the complex
        step): what the Hessian, a difference of gradients, inherits."""
        return 0.0 if self.method == "complex step" else self._noise(theta)

    # ---- the Hessian --------------------------------------------------------------------------
    @on_one_blas_thread
    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Central differences of the gradient with steps h and 2h, extrapolated (Richardson).

        A central difference is off by about h²/6 times the gradient's third derivative: far
        above rounding when the loss curves on a shorter scale than θ's size (features of size
        50 move the scores 50 times faster than θ). That error shrinks 4-fold from 2h to h, so
        ``(4·H_h - H_2h)/3`` removes it, and ``|H_h - H_2h|/3`` estimates what is left (it is
        the error of H_h, larger than that of the result): :meth:`hessian_noise` adds it.
        """
        theta = np.asarray(theta, dtype=self.dtype)
        fine, coarse = self._central_hessian(theta, 1.0), self._central_hessian(theta, 2.0)
        truncation = np.abs(fine - coarse) / 3
        self._truncation = (np.asarray(theta, dtype=np.float64).tobytes(), truncation)
        return fine + (fine - coarse) / 3

    def _central_hessian(self, theta: np.ndarray, factor: float) -> np.ndarray:
        H = np.empty((theta.size, theta.size))
        with np.errstate(all="ignore"):
            for j in range(theta.size):
                h = factor * self._step(theta[j])
                up, down = theta.copy(), theta.copy()
                up[j] += h
                down[j] -= h
                H[:, j] = (self.gradient(up) - self.gradient(down)) / (
                    float(up[j]) - float(down[j])
                )
        return (H + H.T) / 2  # average the two estimates of each mixed derivative

    def hessian_noise(self, theta: np.ndarray) -> np.ndarray:
        """Column j divides gradient errors (of size ~ Σ|terms| of row i) by the step h_j
        (5/3 of it: the extrapolation weighs the two differences 4/3 and 1/3); plus the
        truncation estimate of :meth:`hessian` at this θ, as the Σ|terms| whose rounding
        (ε each) would be that large."""
        theta = np.asarray(theta, dtype=np.float64)
        scales = self.model.scales_at(theta).gradient + np.asarray(self.gradient_noise(theta))
        steps = np.array([self._step(t) for t in theta])
        noise = (5 / 3) * scales[:, None] / steps[None, :]
        noise = (noise + noise.T) / 2
        key, truncation = getattr(self, "_truncation", (None, None))
        if key == theta.tobytes():
            noise = noise + truncation / self._eps
        return noise

    @classmethod
    def hessian_evaluations(cls, model: Model) -> float:
        return 4.0 * model.size  # gradients at θ ± h and θ ± 2h for each of θ's entries

    @classmethod
    def estimate_seconds(cls, model: Model) -> float:
        """One gradient: a loss per parameter (complex numbers cost about 4 real passes), or,
        batched, one pass over the data with a few operations per row and parameter vector.
        Both grow with the model's work per row (features, classes, hidden units)."""
        rows, size = model.data.rows, model.size
        per_row = model.work() / max(rows, 1)
        if not _batchable(model):
            return (size + 1) * 4 * _pass_seconds(model.work())
        per_block, part_rows = _layout(rows, size)
        calls = -(-rows // part_rows) * -(-size // per_block)
        return (
            SECONDS_PER_BATCHED_VALUE * rows * (per_row + size)
            + SECONDS_PER_DIRECTION * size
            + SECONDS_PER_BATCH * calls
        )


# A conservative cost of one pass of numpy over the data: per row and feature, plus per call.
SECONDS_PER_ELEMENT = 5e-9
SECONDS_PER_CALL = 5e-5
# The batched sweep: per row and (feature or parameter), per parameter, and per block of rows and
# parameters. Measured on a busy 2-core machine (about 2 ns, 300 ns and 15 µs), rounded up.
SECONDS_PER_BATCHED_VALUE = 2.5e-9
SECONDS_PER_DIRECTION = 5e-7
SECONDS_PER_BATCH = 2e-5


def _layout(rows: int, directions: int) -> tuple[int, int]:
    """The batched sweep's blocks: parameter vectors per block and rows per block, about
    BATCH_VALUES values each (small enough for the CPU cache, large enough that numpy's
    per-call cost is small)."""
    per_block = min(directions, max(BATCH_VALUES // min(rows, CHUNK_ROWS), 64))
    return per_block, min(max(BATCH_VALUES // per_block, 1), CHUNK_ROWS)


def _batchable(model: Model) -> bool:
    """Whether the model might take a batch of (b, w): a (b, w) loss that is a sum over rows."""
    shapes = [(p.name, p.shape) for p in model.parameters]
    return model.additive and shapes == [("b", ()), ("w", (model.data.features,))]


def _pass_seconds(work: float) -> float:
    """One real pass of numpy over the data, from the model's work (rows × operations)."""
    return SECONDS_PER_CALL + SECONDS_PER_ELEMENT * work


# ---- derivatives of any function (verifiers.check) ----------------------------------------------
# The most elements (inputs and tapped intermediates) a check file's function may have for
# finite differences, which take one evaluation of the function per element (four for central
# differences with their error estimate).
FUNCTION_ELEMENTS = 20_000


class NumericFunctions(FunctionEngine):
    """A check file's function differentiated from its values alone, on numpy.

    Every floating-point input (and each tapped intermediate's shift) is one flat vector z. The
    vjp is ⟨g, ∂f/∂z_j⟩ for every j, each directional derivative by the complex step
    ``Im f(z + i·h·e_j) / h`` (exact: no subtraction), or, for a function that cannot take
    complex numbers or whose complex step disagrees with central differences at the first point,
    by central differences (approximate, their error estimated from the steps h and 2h). The jvp
    is one directional derivative, along the tangents. The Hessian-vector product is the central
    difference of that gradient along v, steps h and 2h extrapolated: always approximate.
    """

    name = "numeric"

    def __init__(self, function, dtype) -> None:
        super().__init__(function, dtype)
        self._eps = float(np.finfo(self.dtype).eps)
        self._complex = np.complex128 if self.dtype == np.float64 else np.complex64
        # the complex step: tiny, yet with imaginary parts above float32's smallest normal
        self._complex_step = 1e-20 if self.dtype == np.float64 else 1e-8
        self.method = ""  # chosen at the first call: "complex step" or "central differences"

    def trust(self, derivative: str) -> Trust:
        if derivative == "hvp" or self.method != "complex step":
            return Trust.APPROXIMATE
        return Trust.EXACT

    # ---- the function of one flat vector ------------------------------------------------------
    def _layout(
        self, values, taps
    ) -> tuple[list[tuple[str, tuple[int, ...], int, int]], np.ndarray]:
        layout, pieces, start = [], [], 0
        arrays = {n: np.asarray(values[n], dtype=self.dtype) for n in self.wrt(values)}
        arrays |= {t: np.zeros(shape, self.dtype) for t, shape in taps.items()}
        for name, array in arrays.items():
            layout.append((name, array.shape, start, start + array.size))
            pieces.append(array.reshape(-1))
            start += array.size
        if start > FUNCTION_ELEMENTS:
            raise ValueError(
                f"finite differences take one evaluation per element: {start:,} elements is "
                f"more than {FUNCTION_ELEMENTS:,}"
            )
        return layout, np.concatenate(pieces) if pieces else np.zeros(0, self.dtype)

    def _function(self, values, layout, taps):
        constants = {n: np.asarray(v) for n, v in values.items() if n not in self.wrt(values)}

        def f(z: np.ndarray) -> np.ndarray:
            pieces = {n: z[a:b].reshape(shape) for n, shape, a, b in layout}
            floats = {n: p for n, p in pieces.items() if n not in taps}
            shifts = {n: p for n, p in pieces.items() if n in taps}
            xp = complex_safe_numpy if np.iscomplexobj(z) else real_numpy()
            with np.errstate(all="ignore"):
                return np.asarray(self.function.evaluate(xp, {**constants, **floats}, shifts))

        return f

    @staticmethod
    def _unflat(vector: np.ndarray, layout) -> dict[str, np.ndarray]:
        return {
            n: np.asarray(vector[a:b], dtype=np.float64).reshape(shape) for n, shape, a, b in layout
        }

    # ---- directional derivatives --------------------------------------------------------------
    def _complex_direction(self, f, z: np.ndarray, direction: np.ndarray, h: float) -> np.ndarray:
        probe = z.astype(self._complex) + 1j * h * direction.astype(self._complex)
        return np.imag(f(probe)).astype(np.float64) / h

    def _central_direction(self, f, z, direction, h) -> np.ndarray:
        up = f(z + h * direction).astype(np.float64)
        down = f(z - h * direction).astype(np.float64)
        return (up - down) / (2 * h)

    def _step(self, z: np.ndarray, direction: np.ndarray) -> float:
        """A central-difference step: ε^(1/3), scaled by the size of z along the direction."""
        size = float(np.max(np.abs(z[direction != 0]), initial=0.0))
        return self._eps ** (1 / 3) * max(1.0, size) / float(np.max(np.abs(direction)))

    def _directional(self, f, z, direction, base) -> tuple[np.ndarray, np.ndarray]:
        """f's derivative along `direction` and its own error as a size of summed terms (zero
        for the complex step)."""
        if self.method == "complex step":
            h = self._complex_step * max(1.0, float(np.max(np.abs(z), initial=0.0)))
            h /= float(np.max(np.abs(direction)))
            return self._complex_direction(f, z, direction, h), np.zeros(base.shape)
        h = self._step(z, direction)
        fine = self._central_direction(f, z, direction, h)
        coarse = self._central_direction(f, z, direction, 2 * h)
        truncation = np.nan_to_num(np.abs(coarse - fine) / 3, nan=np.inf)
        rounding = 4 * np.abs(base) / h  # the two values' rounding, divided by the step
        return fine, rounding + truncation / self._eps

    def _choose(self, f, z: np.ndarray) -> None:
        """The complex step when the function runs on complex numbers and its complex step
        agrees with central differences (within their truncation and rounding) along a few
        coordinates; else central differences."""
        if self.method:
            return
        self.method = "central differences"
        base = f(z).astype(np.float64)
        sample = np.unique(np.linspace(0, z.size - 1, min(z.size, 16)).round().astype(int))
        try:
            for j in sample:
                direction = np.zeros(z.size, self.dtype)
                direction[j] = 1
                h = self._complex_step * max(1.0, abs(float(z[j])))
                exact = self._complex_direction(f, z, direction, h)
                central, noise = self._directional(f, z, direction, base)
                allowed = 1e3 * self._eps * (np.abs(central) + noise)
                if not np.all(np.abs(exact - central) <= allowed):
                    return
        except UsageError:  # the user's code ended or hung the call (verifiers.isolation)
            raise
        except Exception:  # it cannot take complex numbers
            return
        self.method = "complex step"

    # ---- the derivatives ------------------------------------------------------------------------
    def vjp(self, values, cotangent, taps) -> Derivatives:
        layout, z = self._layout(values, taps)
        f = self._function(values, layout, taps)
        self._choose(f, z)
        base = f(z).astype(np.float64)
        g = np.asarray(cotangent, dtype=np.float64).reshape(base.shape)
        result, noise = np.empty(z.size), np.empty(z.size)
        for j in range(z.size):
            direction = np.zeros(z.size, self.dtype)
            direction[j] = 1
            derivative, error = self._directional(f, z, direction, base)
            result[j] = float(np.sum(g * derivative))
            noise[j] = float(np.sum(np.abs(g) * error))
        return Derivatives(self._unflat(result, layout), self._noise(noise, layout))

    def jvp(self, values, tangents) -> Derivatives:
        layout, z = self._layout(values, {})
        f = self._function(values, layout, {})
        self._choose(f, z)
        base = f(z).astype(np.float64)
        direction = np.concatenate(
            [np.asarray(tangents[n], dtype=self.dtype).reshape(-1) for n, *_ in layout]
        )
        if not direction.any():
            return Derivatives({"output": np.zeros(base.shape)})
        derivative, error = self._directional(f, z, direction, base)
        noise = None if self.method == "complex step" else {"output": error}
        return Derivatives({"output": derivative}, noise)

    def hvp(self, values, vector) -> Derivatives:
        layout, z = self._layout(values, {})
        f = self._function(values, layout, {})
        self._choose(f, z)
        direction = np.concatenate(
            [np.asarray(vector[n], dtype=self.dtype).reshape(-1) for n, *_ in layout]
        )

        def gradient(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            base = f(at).astype(np.float64)
            parts, errors = np.empty(at.size), np.empty(at.size)
            for j in range(at.size):
                unit = np.zeros(at.size, self.dtype)
                unit[j] = 1
                derivative, error = self._directional(f, at, unit, base)
                parts[j], errors[j] = float(np.sum(derivative)), float(np.sum(error))
            return parts, errors

        if not direction.any():
            return Derivatives({n: np.zeros(s) for n, s, *_ in layout})
        h = self._step(z, direction)
        at_zero, own = gradient(z)
        differences = []
        for step in (h, 2 * h):
            up, _ = gradient((z + step * direction).astype(self.dtype))
            down, _ = gradient((z - step * direction).astype(self.dtype))
            differences.append((up - down) / (2 * step))
        fine, coarse = differences
        truncation = np.nan_to_num(np.abs(fine - coarse) / 3, nan=np.inf)
        # the gradients' own errors (rounding, or central differences') divided by the step
        noise = (5 / 3) * (np.abs(at_zero) + own) / h + truncation / self._eps
        return Derivatives(
            self._unflat(fine + (fine - coarse) / 3, layout), self._noise(noise, layout)
        )

    def _noise(self, noise: np.ndarray, layout) -> dict[str, np.ndarray] | None:
        if self.method == "complex step" and not noise.any():
            return None
        return self._unflat(noise, layout)
