"""The personal adapter: a small temporal network that gives the prior this person's way of speaking.

Input per frame (all speaker-independent): the prior's mouth channels, viseme probabilities, speech
mass, loudness and voicing. Output: a correction to the motion code the prior maps to (mouth, jaw,
cheeks and the expression coefficients; the eyes stay with the blink generator). Three 1D convolutions
see about a quarter of a second on either side, enough for coarticulation. Trained as a stage of `fit`
on the person's own video, validated on its held-out tail against the prior alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from avatar.motion.code import NUM_BLENDSHAPES


def adapted_dims(names: list[str], code_dim: int) -> np.ndarray:
    """Motion-code entries the adapter corrects: mouth, jaw and cheek blendshapes, and every expression coefficient."""
    lower = [i for i, n in enumerate(names) if n.startswith(("mouth", "jaw", "cheek"))]
    return np.array(lower + list(range(NUM_BLENDSHAPES, code_dim)), dtype=np.int64)


class Adapter(nn.Module):
    def __init__(self, inputs: int, outputs: int, width: int = 64, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv1d(inputs, width, 5, padding=2), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(width, width, 5, padding=4, dilation=2), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(width, outputs, 1),
        )
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, T, inputs] -> [B, T, outputs]."""
        return self.layers(x.transpose(1, 2)).transpose(1, 2)


@dataclass
class AdapterReport:
    train_error: float
    validation_error: float
    prior_validation_error: float
    steps: int


def train_adapter(inputs: np.ndarray, base: np.ndarray, target: np.ndarray, train: np.ndarray, validation: np.ndarray,
                  weights: np.ndarray | None = None, steps: int = 800, window: int = 64, batch: int = 16,
                  seed: int = 0) -> tuple[Adapter, AdapterReport]:
    """inputs [T, I] audio-side features; base [T, O] the prior's prediction; target [T, O] the tracked values;
    weights [T] how much each frame counts (the driver gives frames where the face was not tracked none).

    `train` and `validation` are [start, end) frame ranges. Returns the adapter with the best validation
    error (weighted mean absolute error over frames and outputs).
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(inputs).float()
    residual = torch.from_numpy(target - base).float()
    w = torch.ones(len(x), device=x.device) if weights is None else torch.from_numpy(np.asarray(weights, np.float32))

    def weighted_error(prediction: Tensor, a: int, b: int) -> float:
        frame = (prediction - residual[a:b]).abs().mean(1)
        return float((frame * w[a:b]).sum() / w[a:b].sum().clamp_min(1e-6))
    model = Adapter(x.shape[1], residual.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    t0, t1 = int(train[0]), int(train[1])
    v0, v1 = int(validation[0]), int(validation[1])
    span = max(1, t1 - t0 - window)

    def validation_error() -> float:
        model.eval()
        with torch.no_grad():
            out = model(x[None, v0:v1])[0]
        model.train()
        return weighted_error(out, v0, v1)

    if v1 <= v0:  # no held-out frames: validate on the last tenth of the training range
        v0, v1 = t1 - max(1, (t1 - t0) // 10), t1
    best, best_state, best_error = 0, {k: v.clone() for k, v in model.state_dict().items()}, validation_error()
    prior_error = weighted_error(torch.zeros_like(residual[v0:v1]), v0, v1)
    for step in range(steps):
        starts = t0 + torch.randint(span, (batch,), generator=g)
        xb = torch.stack([x[s: s + window] for s in starts.tolist()])
        yb = torch.stack([residual[s: s + window] for s in starts.tolist()])
        wb = torch.stack([w[s: s + window] for s in starts.tolist()])
        loss = ((model(xb) - yb).abs().mean(2) * wb).sum() / wb.sum().clamp_min(1e-6)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if (step + 1) % 50 == 0 and v1 > v0:
            error = validation_error()
            if error < best_error:
                best, best_error = step + 1, error
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        train_error = weighted_error(model(x[None, t0:t1])[0], t0, t1)
    return model, AdapterReport(train_error, best_error, prior_error, best)
