"""``minigrad.numpy.linalg``: the array API's linear-algebra extension, differentiable.

Each decomposition records one operation per result, each with the VJP of that result; the walk
adds them up, so a loss that uses both U and S of an SVD gets both contributions. The rules are
written with Tensor operations (solve, inv, matmul, ...), so second derivatives work too.

Conventions: `cholesky`, `eigh` and `eigvalsh` read the symmetric part ½(A + Aᵀ) of their input
(the standard leaves a non-symmetric input to the implementation), so their gradients are
symmetric matrices, as torch's are. The rules of `eigh` and `svd` need distinct eigenvalues and
singular values (elsewhere the derivative of the vectors does not exist), and `qr`'s needs a
matrix at least as tall as it is wide.
"""

from __future__ import annotations

import builtins
from typing import Any, NamedTuple

import numpy as np

from minigrad.numpy._common import pair_of, tensor_of
from minigrad.numpy._elementwise import abs as _abs
from minigrad.tensor import Tensor, apply, axes, constant, record, where

__all__ = [
    "cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm",
    "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv", "qr", "slogdet",
    "solve", "svd", "svdvals", "tensordot", "trace", "vecdot", "vector_norm",
]  # fmt: skip


class EighResult(NamedTuple):
    eigenvalues: Tensor
    eigenvectors: Tensor


class QRResult(NamedTuple):
    Q: Tensor
    R: Tensor


class SlogdetResult(NamedTuple):
    sign: Tensor
    logabsdet: Tensor


class SVDResult(NamedTuple):
    U: Tensor
    S: Tensor
    Vh: Tensor


# ---- products -----------------------------------------------------------------------------------
def matmul(x1: Any, x2: Any, /) -> Tensor:
    a, b = pair_of(x1, x2)
    return a @ b


def matrix_transpose(x: Any, /) -> Tensor:
    return tensor_of(x).mT


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Tensor:
    a, b = pair_of(x1, x2)
    return (a * b).sum(axis=axis)


def outer(x1: Any, x2: Any, /) -> Tensor:
    a, b = pair_of(x1, x2)
    return a.reshape(-1, 1) * b.reshape(1, -1)


def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Tensor:
    """Σ over the paired axes of x1 and x2: a transpose, a reshape and one matrix product."""
    a, b = pair_of(x1, x2)
    if isinstance(axes, int):
        pairs_a = tuple(range(a.ndim - axes, a.ndim))
        pairs_b = tuple(range(axes))
    else:
        pairs_a = _axes(axes[0], a.ndim)
        pairs_b = _axes(axes[1], b.ndim)
    free_a = tuple(i for i in range(a.ndim) if i not in pairs_a)
    free_b = tuple(i for i in range(b.ndim) if i not in pairs_b)
    k = int(np.prod([a.shape[i] for i in pairs_a]))
    left = a.transpose(free_a + pairs_a).reshape(-1, k)
    right = b.transpose(pairs_b + free_b).reshape(k, -1)
    shape = tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b)
    return (left @ right).reshape(shape)


def _axes(given: Any, ndim: int) -> tuple[int, ...]:
    return axes(tuple(given) if isinstance(given, (list, tuple)) else given, ndim)


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Tensor:
    a, b = pair_of(x1, x2)
    return apply(
        "cross", lambda p, q: np.cross(p, q, axis=axis), (a, b),
        lambda g, out: cross(b, g, axis=axis),  # d⟨g, a×b⟩/da = b×g
        lambda g, out: cross(g, a, axis=axis),  # d⟨g, a×b⟩/db = g×a
    )  # fmt: skip


# ---- parts of a matrix --------------------------------------------------------------------------
def diagonal(x: Any, /, *, offset: int = 0) -> Tensor:
    a = tensor_of(x)
    rows, cols = a.shape[-2:]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    n = max(min(rows - start_row, cols - start_col), 0)
    i = np.arange(n)
    return a[..., i + start_row, i + start_col]  # indexing: its rule puts g back on the diagonal


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Tensor:
    a = tensor_of(x)
    if dtype is not None:
        a = a.astype(dtype)
    return diagonal(a, offset=offset).sum(axis=-1)


def _eye_like(a: Tensor, n: int) -> Tensor:
    return constant(np.eye(n, dtype=a.dtype))


def _diag_embed(v: Tensor) -> Tensor:
    """A stack of diagonal matrices from a stack of vectors (a product with I: no own rule)."""
    return v.expand_dims(-1) * _eye_like(v, v.shape[-1])


def _column(v: Tensor) -> Tensor:
    return v.expand_dims(-1)


# ---- inverse, solve, determinant ----------------------------------------------------------------
def inv(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(A⁻¹) = -A⁻¹ dA A⁻¹, so the VJP is -A⁻ᵀ G A⁻ᵀ
    return apply("inv", np.linalg.inv, (a,), lambda g, out: -(out.mT @ g @ out.mT))


def solve(x1: Any, x2: Any, /) -> Tensor:
    """X with A X = B; a 1-D B is one vector (as numpy and the 2024.12 standard take it)."""
    a, b = pair_of(x1, x2)
    vector = b.ndim == 1

    def grad_b(g: Tensor, out: Tensor) -> Tensor:
        # X = A⁻¹B, so the VJP for B is A⁻ᵀ G: a solve with Aᵀ
        if vector:
            return solve(a.mT, _column(g)).squeeze(-1)
        return solve(a.mT, g)

    def grad_a(g: Tensor, out: Tensor) -> Tensor:
        # d X = -A⁻¹ dA X, so the VJP for A is -(A⁻ᵀ G) Xᵀ
        gb = grad_b(g, out)
        if vector:
            return -(_column(gb) * out.expand_dims(-2))
        return -(gb @ out.mT)

    return apply("solve", np.linalg.solve, (a, b), grad_a, grad_b)


def det(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d det A/dA = det A · A⁻ᵀ
    return apply(
        "det", np.linalg.det, (a,),
        lambda g, out: (g * out).expand_dims(-1).expand_dims(-1) * inv(a).mT,
    )  # fmt: skip


def slogdet(x: Any, /) -> SlogdetResult:
    a = tensor_of(x)
    sign, value = np.linalg.slogdet(a.data)
    # d ln|det A|/dA = A⁻ᵀ (the sign is constant wherever it is differentiable)
    logabsdet = record(
        "slogdet", value, (a,),
        (lambda g, out: g.expand_dims(-1).expand_dims(-1) * inv(a).mT,),
        lambda p: np.linalg.slogdet(p)[1],
    )  # fmt: skip
    return SlogdetResult(constant(sign), logabsdet)


def matrix_power(x: Any, n: int, /) -> Tensor:
    """A·A·…·A (n times) by repeated squaring; A⁻¹ to the power -n for negative n."""
    a = tensor_of(x)
    if n < 0:
        a, n = inv(a), -n
    if n == 0:
        return constant(np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape).copy())
    result: Tensor | None = None
    while n:
        if n & 1:
            result = a if result is None else result @ a
        n >>= 1
        if n:
            a = a @ a
    assert result is not None
    return result


def matrix_rank(x: Any, /, *, rtol: Any = None) -> Tensor:
    a = tensor_of(x)
    s = np.linalg.svd(a.data, compute_uv=False)
    if rtol is None:
        rtol = max(a.shape[-2:]) * np.finfo(a.dtype).eps
    tol = s.max(axis=-1, keepdims=True, initial=0.0) * np.asarray(tensor_of(rtol).data)[..., None]
    return constant(np.count_nonzero(s > tol, axis=-1))


# ---- symmetric matrices -------------------------------------------------------------------------
def _symmetric(p: np.ndarray) -> np.ndarray:
    result: np.ndarray = (p + np.swapaxes(p, -1, -2)) / 2
    return result


def _sym(t: Tensor) -> Tensor:
    return (t + t.mT) * 0.5


def cholesky(x: Any, /, *, upper: builtins.bool = False) -> Tensor:
    """L with L Lᵀ = A (or U = Lᵀ with Uᵀ U = A) for a symmetric positive-definite A."""
    a = tensor_of(x)

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        low, g_low = (out.mT, g.mT) if upper else (out, g)
        # dL = L Φ(L⁻¹ dA L⁻ᵀ) with Φ the lower triangle, its diagonal halved; so the VJP is
        # the symmetric part of L⁻ᵀ Φ(Lᵀ G) L⁻¹
        inner = low.mT @ g_low
        n = inner.shape[-1]
        half_lower = constant(np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)).astype(a.dtype)
        phi = inner * half_lower
        left = solve(low.mT, phi)  # L⁻ᵀ Φ
        return _sym(solve(low.mT, left.mT).mT)  # (L⁻ᵀ (L⁻ᵀ Φ)ᵀ)ᵀ = L⁻ᵀ Φ L⁻¹

    def forward(p: np.ndarray) -> np.ndarray:
        low = np.linalg.cholesky(_symmetric(p))
        return np.swapaxes(low, -1, -2) if upper else low

    return apply("cholesky", forward, (a,), vjp)


def _gaps(w: Tensor) -> Tensor:
    """F with F_ij = 1/(w_j - w_i) off the diagonal and 0 on it."""
    n = w.shape[-1]
    off = constant(~np.eye(n, dtype=bool))
    difference = w.expand_dims(-2) - w.expand_dims(-1)  # [i, j] = w_j - w_i
    return where(off, 1.0 / where(off, difference, 1.0), 0.0)


def eigh(x: Any, /) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of the symmetric part of x."""
    a = tensor_of(x)
    values, vectors = np.linalg.eigh(_symmetric(a.data))
    w_holder: list[Tensor] = []

    def grad_vectors(g: Tensor, out: Tensor) -> Tensor:
        # dV = V (F ∘ (Vᵀ dA V)), so the VJP is V (F ∘ (Vᵀ G)) Vᵀ, made symmetric
        return _sym(out @ (_gaps(w_holder[0]) * (out.mT @ g)) @ out.mT)

    v = record(
        "eigh.eigenvectors", vectors, (a,), (grad_vectors,),
        lambda p: np.linalg.eigh(_symmetric(p))[1],
    )  # fmt: skip
    w = record(
        "eigh.eigenvalues", values, (a,),
        (lambda g, out: v @ _diag_embed(g) @ v.mT,),  # dwᵢ = vᵢᵀ dA vᵢ: VJP V diag(g) Vᵀ
        lambda p: np.linalg.eigh(_symmetric(p))[0],
    )  # fmt: skip
    w_holder.append(w)
    return EighResult(w, v)


def eigvalsh(x: Any, /) -> Tensor:
    return eigh(x).eigenvalues


# ---- singular values ----------------------------------------------------------------------------
def svd(x: Any, /, *, full_matrices: builtins.bool = True) -> SVDResult:
    """U, S, Vh with x = U diag(S) Vh. The rules see only the first min(m, n) columns of U and
    rows of Vh: with full_matrices and a non-square x, the rest have no defined gradient."""
    a = tensor_of(x)
    m, n = a.shape[-2:]
    k = min(m, n)
    u_data, s_data, vh_data = np.linalg.svd(a.data, full_matrices=full_matrices)
    parts: dict[str, Tensor] = {}

    def reduced(t: Tensor, g: Tensor, rows: builtins.bool) -> tuple[Tensor, Tensor]:
        """The first k columns (or rows) of a factor and of its gradient."""
        if rows:
            if g.shape[-2] > k and np.any(g.data[..., k:, :] != 0):
                raise ValueError("minigrad: svd's extra rows of Vh have no gradient")
            return t[..., :k, :], g[..., :k, :]
        if g.shape[-1] > k and np.any(g.data[..., k:] != 0):
            raise ValueError("minigrad: svd's extra columns of U have no gradient")
        return t[..., :k], g[..., :k]

    def grad_s(g: Tensor, out: Tensor) -> Tensor:
        u, vh = parts["U"][..., :k], parts["Vh"][..., :k, :]
        # dsᵢ = uᵢᵀ dA vᵢ, so the VJP is U diag(g) Vᵀ
        return u @ _diag_embed(g) @ vh

    def grad_u(g: Tensor, out: Tensor) -> Tensor:
        u, gu = reduced(out, g, rows=False)
        vh, s = parts["Vh"][..., :k, :], parts["S"]
        # U (F ∘ (Uᵀ Ḡ - Ḡᵀ U)) S Vᵀ + (I - U Uᵀ) Ḡ S⁻¹ Vᵀ, with F_ij = 1/(s_j² - s_i²)
        f = _gaps(s * s)
        inner = f * (u.mT @ gu - gu.mT @ u)
        rest = gu - u @ (u.mT @ gu)
        return u @ (inner * s.expand_dims(-2)) @ vh + (rest / s.expand_dims(-2)) @ vh

    def grad_vh(g: Tensor, out: Tensor) -> Tensor:
        vh, gvh = reduced(out, g, rows=True)
        v, gv = vh.mT, gvh.mT
        u, s = parts["U"][..., :k], parts["S"]
        # U S (F ∘ (Vᵀ Ḡ - Ḡᵀ V)) Vᵀ + U S⁻¹ Ḡᵀ (I - V Vᵀ), with F_ij = 1/(s_j² - s_i²)
        f = _gaps(s * s)
        inner = f * (v.mT @ gv - gv.mT @ v)
        rest = gv.mT - (gv.mT @ v) @ v.mT
        return u @ (s.expand_dims(-1) * inner) @ v.mT + u @ (rest / s.expand_dims(-1))

    def factor(i: int) -> Any:
        return lambda p: np.linalg.svd(p, full_matrices=full_matrices)[i]

    parts["U"] = record("svd.U", u_data, (a,), (grad_u,), factor(0))
    parts["S"] = record("svd.S", s_data, (a,), (grad_s,), factor(1))
    parts["Vh"] = record("svd.Vh", vh_data, (a,), (grad_vh,), factor(2))
    return SVDResult(parts["U"], parts["S"], parts["Vh"])


def svdvals(x: Any, /) -> Tensor:
    return svd(x, full_matrices=False).S


def pinv(x: Any, /, *, rtol: Any = None) -> Tensor:
    """The pseudo-inverse V diag(1/s) Uᵀ, singular values below rtol·max(s) taken as 0."""
    a = tensor_of(x)
    u, s, vh = svd(a, full_matrices=False)
    if rtol is None:
        rtol = max(a.shape[-2:]) * np.finfo(a.dtype).eps
    cutoff = s.data.max(axis=-1, keepdims=True, initial=0.0) * np.asarray(tensor_of(rtol).data)
    kept = s.data > cutoff
    # 1/s where s is kept, 0 elsewhere (s itself replaced by 1 there, so that no 1/0 appears)
    inverse = where(kept, 1.0 / where(kept, s, 1.0), 0.0)
    return vh.mT @ (inverse.expand_dims(-1) * u.mT)


def qr(x: Any, /, *, mode: str = "reduced") -> QRResult:
    """Q with orthonormal columns and upper-triangular R, x = Q R."""
    a = tensor_of(x)
    q_data, r_data = np.linalg.qr(a.data, mode=mode)  # type: ignore[call-overload]
    parts: dict[str, Tensor] = {}

    def copyltu(m: Tensor) -> Tensor:
        """The lower triangle of m, mirrored onto the upper one."""
        n = m.shape[-1]
        lower = constant(np.tril(np.ones((n, n), dtype=bool)))
        strict = constant(np.tril(np.ones((n, n), dtype=bool), -1))
        return where(lower, m, 0.0) + where(strict, m, 0.0).mT

    def spread(q: Tensor, r: Tensor, gq: Tensor, m: Tensor) -> Tensor:
        if a.shape[-2] < a.shape[-1]:
            raise ValueError("minigrad: qr's rule needs a matrix at least as tall as wide")
        # (Ḡ_Q + Q copyltu(M)) R⁻ᵀ, written as a solve with R
        return solve(r, (gq + q @ copyltu(m)).mT).mT

    def grad_q(g: Tensor, out: Tensor) -> Tensor:
        r = parts["R"]
        return spread(out, r, g, -(g.mT @ out))  # M = -Ḡ_Qᵀ Q

    def grad_r(g: Tensor, out: Tensor) -> Tensor:
        q = parts["Q"]
        return spread(q, out, _zeros_like(q), out @ g.mT)  # M = R Ḡ_Rᵀ

    def factor(i: int) -> Any:
        return lambda p: np.linalg.qr(p, mode=mode)[i]  # type: ignore[call-overload]

    parts["Q"] = record("qr.Q", q_data, (a,), (grad_q,), factor(0))
    parts["R"] = record("qr.R", r_data, (a,), (grad_r,), factor(1))
    return QRResult(parts["Q"], parts["R"])


def _zeros_like(t: Tensor) -> Tensor:
    return constant(np.zeros(t.shape, t.dtype))


# ---- norms --------------------------------------------------------------------------------------
def vector_norm(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False,
                ord: float = 2) -> Tensor:  # fmt: skip
    """(Σ |x|ᵖ)^(1/p) over `axis` (all axes when None); ord may be ±inf (max or min of |x|)."""
    a = tensor_of(x)
    over = axes(axis, a.ndim)
    if ord == 2:
        return _two_norm(a, over, keepdims)
    size = _abs(a)
    if ord == np.inf:
        return size.max(axis=over, keepdims=keepdims)
    if ord == -np.inf:
        return size.min(axis=over, keepdims=keepdims)
    if ord == 0:  # the count of nonzero elements: a constant
        count = np.sum(a.data != 0, axis=over, keepdims=keepdims)
        return constant(count.astype(a.dtype))
    if ord == 1:
        return size.sum(axis=over, keepdims=keepdims)
    return (size**ord).sum(axis=over, keepdims=keepdims) ** (1.0 / ord)


def _two_norm(a: Tensor, over: tuple[int, ...], keepdims: builtins.bool) -> Tensor:
    def vjp(g: Tensor, out: Tensor) -> Tensor:
        kept = out if keepdims else out.reshape(_kept_shape(a.shape, over))
        spread = g if keepdims else g.reshape(_kept_shape(a.shape, over))
        # d‖a‖/da = a/‖a‖, taken as 0 where ‖a‖ = 0 (the smallest subgradient, as in torch)
        safe = where(kept.data == 0, 1.0, kept)
        return spread * a / safe

    return apply(
        "vector_norm", lambda p: np.sqrt(np.sum(p * p, axis=over, keepdims=keepdims)), (a,), vjp
    )


def _kept_shape(shape: tuple[int, ...], over: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in over else n for i, n in enumerate(shape))


def matrix_norm(x: Any, /, *, keepdims: builtins.bool = False, ord: Any = "fro") -> Tensor:
    """A norm of each matrix in the stack: 'fro', 'nuc', 1, -1, 2, -2, inf or -inf."""
    a = tensor_of(x)
    if ord == "fro":
        return vector_norm(a, axis=(-2, -1), keepdims=keepdims)
    if ord in ("nuc", 2, -2):
        s = svdvals(a)
        value = s.sum(axis=-1) if ord == "nuc" else s.max(axis=-1) if ord == 2 else s.min(axis=-1)
    elif ord in (1, -1, np.inf, -np.inf):
        summed = _abs(a).sum(axis=-2 if ord in (1, -1) else -1)
        value = summed.max(axis=-1) if ord in (1, np.inf) else summed.min(axis=-1)
    else:
        raise ValueError(f"minigrad: matrix_norm has no ord {ord!r}")
    return value.expand_dims(-1).expand_dims(-1) if keepdims else value
