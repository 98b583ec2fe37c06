"""`torch`: ``torch.autograd`` on CUDA when a GPU is present (``--device auto``), else the CPU.

The loss is the model's own, run on torch through array-api-compat's namespace. The descent runs
entirely on the device: one transfer in, one out, and a synchronisation only every CHECK_EVERY
steps to look for divergence.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from verifiers.engines.base import (
    DIVERGENCE_FACTOR,
    Derivatives,
    Engine,
    EngineUnavailable,
    Evaluation,
    FunctionEngine,
    Progress,
    Trajectory,
    finish_trajectory,
)
from verifiers.models.base import Model

try:
    import array_api_compat.torch as xp
except ImportError:  # pragma: no cover - array-api-compat is a dependency
    xp = torch

# Divergence is checked (one device synchronisation) every this many steps.
CHECK_EVERY = 256


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one CPU thread for this engine's calls: its work comes in chunks too small to
    share, and other engines (jax compiling, or running at the same time) use the other cores.
    With two threads fighting for a busy core, every small operation waits for the slower one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def select_device(device: str) -> torch.device:
    """``auto``: CUDA when ``torch.cuda.is_available()``, else CPU. ``cuda`` without a GPU fails."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailable("torch", "--device cuda was asked for, but torch sees no CUDA GPU")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return torch.device(device)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name(device)})"
    return "cpu"


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        self.torch_device = select_device(device)
        self.device = describe_device(self.torch_device)
        X = torch.as_tensor(model.data.X, device=self.torch_device)  # shares memory on the CPU
        y = torch.as_tensor(model.prepared_targets, device=self.torch_device)
        # On a GPU the whole data set is one chunk; on the CPU the rows go a chunk at a time.
        whole = not model.additive or self.torch_device.type == "cuda"
        rows = [slice(0, model.data.rows)] if whole else model.chunks
        self.chunks = [(X[r], y[r]) for r in rows]

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=self.dtype), device=self.torch_device)

    def _leaves(self, theta: np.ndarray) -> dict[str, torch.Tensor]:
        params = self.model.unflatten(np.asarray(theta, dtype=self.dtype).copy())
        return {n: self._tensor(v).requires_grad_(True) for n, v in params.items()}

    def _loss_and_gradient(
        self,
        params: dict[str, torch.Tensor],
        into: tuple[torch.Tensor, list[torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Loss and gradients summed over the pieces, each piece's graph freed after its pass.

        The sums are taken in place, in `into` when given (a descent reuses its tensors from
        step to step: nothing is allocated per step but each piece's own graph).
        """
        leaves = list(params.values())
        if into is None:
            loss = torch.zeros((), dtype=leaves[0].dtype, device=self.torch_device)
            gradients = [torch.zeros_like(v) for v in leaves]
        else:
            loss, gradients = into
            loss.zero_()
            for gradient in gradients:
                gradient.zero_()
        for piece in self.model.loss_pieces(params, self.chunks, xp):
            loss += piece.detach()
            if not piece.requires_grad:  # it does not depend on θ at all: its gradient is 0
                continue
            parts = torch.autograd.grad(piece, leaves, allow_unused=True)
            for gradient, part in zip(gradients, parts, strict=True):
                if part is not None:
                    gradient += part
        return loss, gradients

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        with self._threads():
            loss, gradients = self._loss_and_gradient(self._leaves(theta))
        flat = torch.cat([g.reshape(-1) for g in gradients])
        return Evaluation(loss.item(), flat.cpu().numpy().astype(np.float64))

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        def loss(flat: torch.Tensor) -> torch.Tensor:
            return sum(self.model.loss_pieces(self.model.unflatten(flat), self.chunks, xp))

        with self._threads():
            H = torch.autograd.functional.hessian(loss, self._tensor(theta))
        return H.cpu().numpy().astype(np.float64)

    def run_sharded(self, theta: np.ndarray, lr: float, iterations: int, workers: int):
        """K processes joined by torch.distributed (gloo; NCCL when every worker has a GPU)."""
        from verifiers.distributed import run_torch

        device = "cpu" if self.torch_device.type == "cpu" else "auto"
        return run_torch(
            self.data.X, self.data.y, np.asarray(theta), workers=workers, lr=lr,
            iterations=iterations, dtype=self.dtype, device=device, model=self.model.name,
            options=self.model.settings,
        )  # fmt: skip

    def descend(
        self, theta: np.ndarray, lr: float, iterations: int, progress: Progress | None = None
    ) -> Trajectory:
        with self._threads():
            return self._descend(theta, lr, iterations, progress)

    def _threads(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self.torch_device.type == "cuda" else _one_thread()

    def _descend(
        self, theta: np.ndarray, lr: float, iterations: int, progress: Progress | None
    ) -> Trajectory:
        started = time.perf_counter()
        params = self._leaves(theta)
        leaves = list(params.values())
        # The history is one preallocated tensor of floats; the loss and gradients are summed
        # into tensors reused at every step.
        history = torch.empty(iterations + 1, dtype=leaves[0].dtype, device=self.torch_device)
        gradients = [torch.zeros_like(v) for v in leaves]
        limit, checked, k = None, 0, 0
        for k in range(iterations + 1):
            self._loss_and_gradient(params, (history[k], gradients))
            if k == iterations:
                break
            if k % CHECK_EVERY == 0 or k == iterations - 1:
                recent = history[checked : k + 1]
                checked = k + 1
                limit = DIVERGENCE_FACTOR * abs(history[0].item()) if limit is None else limit
                if not bool(torch.isfinite(recent).all()) or bool((recent > limit).any()):
                    break  # the exact iteration is found below
                if progress:
                    progress(k)
            with torch.no_grad():
                for value, gradient in zip(leaves, gradients, strict=True):
                    value -= lr * gradient
        losses = history[: k + 1].cpu().numpy()
        final = torch.cat([v.detach().reshape(-1) for v in leaves]).cpu().numpy()
        if self.torch_device.type == "cuda":
            torch.cuda.synchronize()
        trajectory = finish_trajectory(final, losses, time.perf_counter() - started)
        if trajectory.diverged_at is not None and trajectory.diverged_at < trajectory.steps:
            # Losses were recorded past the divergence: replay to stop exactly where it began.
            return self._descend(theta, lr, trajectory.diverged_at, None)
        return trajectory


# ---- derivatives of any function (verifiers.check) ----------------------------------------------
class TorchFunctions(FunctionEngine):
    """A check file's function on torch (through array-api-compat's namespace), on the CPU: the
    vjp by ``torch.autograd.grad`` seeded with g, the jvp by ``torch.func.jvp`` (true forward
    mode, an independent method), the Hessian-vector product by differentiating ⟨∇f, v⟩."""

    name = "torch"

    def _tensor(self, value: np.ndarray, differentiable: bool) -> torch.Tensor:
        if not differentiable:
            return torch.as_tensor(np.asarray(value))
        return torch.tensor(np.asarray(value, dtype=self.dtype), requires_grad=True)

    def _leaves(self, values: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        names = set(self.wrt(values))
        return {n: self._tensor(v, n in names) for n, v in values.items()}

    def _output(self, leaves: Mapping[str, Any], shifts: Mapping[str, Any] | None = None) -> Any:
        out = self.function.evaluate(xp, leaves, shifts)
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)

    def vjp(self, values, cotangent, taps) -> Derivatives:
        with _one_thread():
            leaves = self._leaves(values)
            shifts = {
                t: torch.zeros(shape, dtype=_torch_dtype(self.dtype), requires_grad=True)
                for t, shape in taps.items()
            }
            out = self._output(leaves, shifts)
            wanted = {n: leaves[n] for n in self.wrt(values)} | shifts
            seed = torch.as_tensor(np.asarray(cotangent)).to(out.dtype).reshape(out.shape)
            grads = (
                torch.autograd.grad(out, list(wanted.values()), seed, allow_unused=True)
                if out.requires_grad
                else [None] * len(wanted)
            )
            return Derivatives(
                {n: _numpy(g, wanted[n]) for (n, g) in zip(wanted, grads, strict=True)}
            )

    def jvp(self, values, tangents) -> Derivatives:
        names = self.wrt(values)
        constants = {n: torch.as_tensor(np.asarray(v)) for n, v in values.items() if n not in names}

        def f(*floats: torch.Tensor) -> torch.Tensor:
            out = self.function.evaluate(xp, {**constants, **dict(zip(names, floats, strict=True))})
            return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)

        with _one_thread():
            primals = tuple(torch.as_tensor(np.asarray(values[n], dtype=self.dtype)) for n in names)
            directions = tuple(
                torch.as_tensor(np.asarray(tangents[n], dtype=self.dtype)) for n in names
            )
            _, Jt = torch.func.jvp(f, primals, directions)
        return Derivatives({"output": Jt.detach().numpy().astype(np.float64)})

    def hvp(self, values, vector) -> Derivatives:
        with _one_thread():
            leaves = self._leaves(values)
            names = self.wrt(values)
            out = self._output(leaves).reshape(())
            wanted = [leaves[n] for n in names]
            if not out.requires_grad:
                return Derivatives({n: np.zeros(np.shape(values[n])) for n in names})
            grads = torch.autograd.grad(out, wanted, create_graph=True, allow_unused=True)
            total = sum(
                (g * torch.as_tensor(np.asarray(vector[n], dtype=self.dtype))).sum()
                for n, g in zip(names, grads, strict=True)
                if g is not None and g.requires_grad
            )
            if not isinstance(total, torch.Tensor):  # f is linear: no second derivative
                return Derivatives({n: np.zeros(np.shape(values[n])) for n in names})
            hv = torch.autograd.grad(total, wanted, allow_unused=True)
            return Derivatives({n: _numpy(h, leaves[n]) for n, h in zip(names, hv, strict=True)})


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def _numpy(gradient: torch.Tensor | None, like: torch.Tensor) -> np.ndarray:
    """A gradient as float64 numpy (None, for an input the output does not use: zeros)."""
    if gradient is None:
        return np.zeros(tuple(like.shape))
    return gradient.detach().cpu().numpy().astype(np.float64)
