"""Small per-frame corrections learned in training only (head-pose refinements, colour): one row per
video frame, each row optimised by its own Adam when its frame is drawn, pulled towards zero.

A dense optimiser would keep moving rows whose frame was not drawn (their momentum lives on); here a
row's moments change only on its own steps, exactly as if each frame had its own optimiser.
"""
from __future__ import annotations

import torch
from torch import Tensor


class PerFrameParameters:
    def __init__(self, count: int, shape: tuple[int, ...], device: torch.device, lr: float, pull: float,
                 beta1: float = 0.9, beta2: float = 0.999):
        self.values = torch.zeros(count, *shape, device=device)
        self.moments = torch.zeros(2, count, *shape, device=device)
        self.steps = torch.zeros(count, device=device)
        self.lr, self.pull, self.beta1, self.beta2 = lr, pull, beta1, beta2

    def row(self, index: int) -> Tensor:
        """A differentiable copy of frame `index`'s row for this step's forward pass."""
        return self.values[index].clone().requires_grad_(True)

    @torch.no_grad()
    def step(self, index: int, grad: Tensor) -> None:
        """Adam on row `index` with `grad` plus the pull towards zero."""
        m, v = self.moments[0, index], self.moments[1, index]
        self.steps[index] += 1
        t = float(self.steps[index])
        grad = grad + self.pull * self.values[index]
        m.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        self.values[index] -= self.lr * (m / (1 - self.beta1**t)) / ((v / (1 - self.beta2**t)).sqrt() + 1e-12)

    def state(self, prefix: str) -> dict[str, Tensor]:
        return {f"{prefix}/values": self.values, f"{prefix}/moments": self.moments, f"{prefix}/steps": self.steps}

    def load_state(self, tensors: dict[str, Tensor], prefix: str) -> None:
        device = self.values.device
        self.values, self.moments, self.steps = (tensors[f"{prefix}/{k}"].to(device) for k in ("values", "moments", "steps"))
