"""Training a `ContextNet` on sequences of per-frame audio features and motion residuals, with augmentation.

Each step draws windows of `WINDOW` frames from the training sequences (shorter ones are `padded` and taken
whole, not stretched) and perturbs them the way other recordings of speech differ: the speaking rate (a
window stretched or squeezed in time by up to ±`speed`, inputs and targets together) and the loudness (the
loudness input scaled by up to ±`gain`). Pitch differences come from whole
pitch-shifted copies of the audio, made by the caller (their features must be recomputed). The step count is
chosen on validation sequences, then the net is trained again on everything with that count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from avatar.motion.context_net import OFFLINE_FUTURE, ContextNet

WINDOW = 64  # frames per training window


@dataclass
class Sequence:
    inputs: np.ndarray  # [T, I]
    target: np.ndarray  # [T, O] what the net should output
    weights: np.ndarray  # [T] how much each frame counts (0: not tracked)


@dataclass
class Augment:
    speed: float = 0.15  # rate changes up to ±15 %
    gain: float = 0.3  # loudness input scaled by up to ±30 %
    loudness_column: int | None = None  # which input is the loudness (None: no gain augmentation)
    output_weights: tuple[float, ...] | None = None  # how much each output counts in the loss (None: equally)


def weighted_error(net: ContextNet, sequences: list[Sequence]) -> float:
    """Mean absolute error over frames and outputs, frames weighted (the net's train/eval mode is kept)."""
    training = net.training
    net.eval()
    total = weight = 0.0
    with torch.no_grad():
        for s in sequences:
            out = net(torch.from_numpy(s.inputs)[None])[0].numpy()
            total += float((np.abs(out - s.target).mean(1) * s.weights).sum())
            weight += float(s.weights.sum())
    net.train(training)
    return total / max(weight, 1e-6)


def padded(s: Sequence, length: int) -> Sequence:
    """`s` extended to `length` frames with copies of its last input frame and zero weight: what the net's own
    padding sees past the end, so its output on the real frames is unchanged."""
    extra = max(0, length - len(s.weights))
    return Sequence(np.pad(s.inputs, ((0, extra), (0, 0)), mode="edge"), np.pad(s.target, ((0, extra), (0, 0))),
                    np.pad(s.weights, (0, extra)))


def _window(s: Sequence, length: int, speed: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    if length >= len(s.weights):  # sequences no longer than a window (`padded` to it): taken whole
        return s.inputs, s.target, s.weights
    span = min(len(s.weights) - 1, max(2, int(round(length * speed))))
    start = int(rng.integers(0, len(s.weights) - span))
    at = start + np.linspace(0, span, length)
    lo = np.floor(at).astype(int).clip(0, len(s.weights) - 2)
    frac = (at - lo)[:, None]

    def resample(a: np.ndarray) -> np.ndarray:
        a2 = a.reshape(len(a), -1)
        return ((1 - frac) * a2[lo] + frac * a2[lo + 1]).reshape(length, *a.shape[1:])
    return resample(s.inputs), resample(s.target), resample(s.weights[:, None])[:, 0]


def _batch(sequences: list[Sequence], batch: int, length: int, augment: Augment, rng: np.random.Generator) -> tuple[Tensor, ...]:
    lengths = np.array([len(s.weights) for s in sequences], np.float64)
    picks = rng.choice(len(sequences), size=batch, p=lengths / lengths.sum())
    xs, ys, ws = [], [], []
    for i in picks:
        x, y, w = _window(sequences[i], length, 1 + augment.speed * rng.uniform(-1, 1), rng)
        if augment.loudness_column is not None:
            x = x.copy()
            x[:, augment.loudness_column] = np.clip(x[:, augment.loudness_column] * (1 + augment.gain * rng.uniform(-1, 1)), 0, 1)
        xs.append(x), ys.append(y), ws.append(w)
    return tuple(torch.from_numpy(np.stack(a).astype(np.float32)) for a in (xs, ys, ws))


def _train(train: list[Sequence], steps: int, future: int, augment: Augment, seed: int, width: int, check_every: int = 50,
           validation: list[Sequence] | None = None) -> tuple[ContextNet, int, float]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = ContextNet(train[0].inputs.shape[1], train[0].target.shape[1], future, width)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    length = int(min(WINDOW, max(len(s.weights) for s in train)))
    train = [padded(s, length) if len(s.weights) < length else s for s in train]  # shorter ones are taken whole
    best_step, best_error = 0, weighted_error(net, validation) if validation else float("nan")
    for step in range(steps):
        x, y, w = _batch(train, 16, length, augment, rng)
        error = (net(x) - y).abs()
        if augment.output_weights is not None:
            error = error * torch.tensor(augment.output_weights, device=error.device) / float(np.mean(augment.output_weights))
        loss = (error.mean(2) * w).sum() / w.sum().clamp_min(1e-6)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if validation and (step + 1) % check_every == 0:
            error = weighted_error(net, validation)
            if error < best_error:
                best_step, best_error = step + 1, error
    return net.eval(), best_step, best_error


def fit_context_net(train: list[Sequence], validation: list[Sequence], steps: int, future: int = OFFLINE_FUTURE,
                    augment: Augment | None = None, seed: int = 0, width: int = 64,
                    choose_steps: bool = True) -> tuple[ContextNet, dict]:
    """A net trained on `train`, then trained again on train + validation for the same step count: with
    `choose_steps`, the count (up to `steps`) that did best on `validation`; without, `steps` (validation then only
    reports). Returns it and a report of the errors (validation: of the net trained on `train` alone; train: of
    the returned net on everything it saw)."""
    augment = augment or Augment()
    inputs, outputs = train[0].inputs.shape[1], train[0].target.shape[1]
    net, best_step, best_error = _train(train, steps, future, augment, seed, width, validation=validation)
    if not choose_steps:
        best_step, best_error = steps, weighted_error(net, validation)
    zero_error = weighted_error(ContextNet(inputs, outputs, future, width), validation)
    net = ContextNet(inputs, outputs, future, width).eval()
    if best_step > 0:
        net, _, _ = _train(train + validation, best_step, future, augment, seed, width)
    everything = train + validation
    return net, {"validation_error": round(best_error, 5), "no_correction_validation_error": round(zero_error, 5),
                 "train_error": round(weighted_error(net, everything), 5),
                 "no_correction_train_error": round(weighted_error(ContextNet(inputs, outputs, future, width), everything), 5),
                 "steps": best_step, "future_frames": future}
