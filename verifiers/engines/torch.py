"""`torch`: ``torch.autograd`` on CUDA when a GPU is present (``--device auto``), else the CPU.

The descent runs entirely on the device: one transfer in, one out, no synchronisation per step.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from verifiers.data import Dataset
from verifiers.engines.base import (
    DIVERGENCE_FACTOR,
    Engine,
    EngineUnavailable,
    Evaluation,
    Progress,
    Trajectory,
    finish_trajectory,
    row_chunks,
)

# Divergence is checked (one device synchronisation) every this many steps.
CHECK_EVERY = 256
# On the CPU the graph's intermediate arrays are kept to this many rows (memory on large inputs);
# on a GPU the whole data set is one chunk.
CPU_CHUNK_ROWS = 1 << 18


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
    summary = "torch.autograd (CUDA when available, else CPU)"

    def __init__(self, data: Dataset, device: str = "auto") -> None:
        super().__init__(data, device)
        self.torch_device = select_device(device)
        self.device = describe_device(self.torch_device)
        self.torch_dtype = torch.float64 if self.dtype == np.float64 else torch.float32
        X = torch.as_tensor(data.X, device=self.torch_device)  # shares memory on the CPU
        y = torch.as_tensor(data.y, device=self.torch_device)
        size = data.rows if self.torch_device.type == "cuda" else CPU_CHUNK_ROWS
        self.chunks = [(X[rows], y[rows]) for rows in row_chunks(data.rows, size)]

    def _theta(self, theta: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(theta, dtype=self.dtype), device=self.torch_device)

    def loss(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A chunk's share of the MSE, ``((y - (X·w + b))²).sum() / N``, with ``θ = (b, w)``."""
        return ((y - (X @ theta[1:] + theta[0])) ** 2).sum() / self.data.rows

    def _loss_and_gradient(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and gradient summed over the chunks, each chunk's graph freed after its pass."""
        if len(self.chunks) == 1:  # the common case, without the additions
            loss = self.loss(t, *self.chunks[0])
            return loss.detach(), torch.autograd.grad(loss, t)[0]
        loss, gradient = 0, 0
        for X, y in self.chunks:
            chunk_loss = self.loss(t, X, y)
            (chunk_gradient,) = torch.autograd.grad(chunk_loss, t)
            loss, gradient = loss + chunk_loss.detach(), gradient + chunk_gradient
        return loss, gradient

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        loss, gradient = self._loss_and_gradient(self._theta(theta).requires_grad_(True))
        return Evaluation(loss.item(), gradient.cpu().numpy().astype(np.float64))

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        t = self._theta(theta)
        H = sum(
            torch.autograd.functional.hessian(lambda p, X=X, y=y: self.loss(p, X, y), t)
            for X, y in self.chunks
        )
        return H.cpu().numpy().astype(np.float64)

    def descend(
        self, theta: np.ndarray, lr: float, iterations: int, progress: Progress | None = None
    ) -> Trajectory:
        started = time.perf_counter()
        t = self._theta(theta).clone().requires_grad_(True)
        losses: list[torch.Tensor] = []  # stacked every CHECK_EVERY steps: no copy per step
        limit, checked = None, 0
        for k in range(iterations + 1):
            loss, gradient = self._loss_and_gradient(t)
            losses.append(loss)
            if k == iterations:
                break
            with torch.no_grad():
                t -= lr * gradient
            if k % CHECK_EVERY == 0 or k == iterations - 1:
                recent = torch.stack(losses[checked:])
                checked = len(losses)
                limit = DIVERGENCE_FACTOR * abs(losses[0].item()) if limit is None else limit
                if not bool(torch.isfinite(recent).all()) or bool((recent > limit).any()):
                    break  # stop soon after divergence; the exact iteration is found below
                if progress:
                    progress(k + 1)
        history = torch.stack(losses).cpu().numpy()
        if self.torch_device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        trajectory = finish_trajectory(t.detach().cpu().numpy(), history, seconds)
        if trajectory.diverged_at is not None and trajectory.diverged_at < k:
            # Replay up to the first divergent step: θ where the step-by-step engines stop.
            replay = self.descend(theta, lr, trajectory.diverged_at)
            trajectory.theta = replay.theta
            trajectory.losses = replay.losses
        return trajectory
