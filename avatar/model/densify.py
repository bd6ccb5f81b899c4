"""Densification and pruning in the manner of 3D Gaussian Splatting: the Gaussian kind's training strategy.

After each backward pass the screen-space gradient of every visible Gaussian's centre is accumulated
(in normalised device units, so thresholds do not depend on resolution). Every `every` steps,
Gaussians whose mean gradient is high are cloned (small ones) or split in two (large ones), and
Gaussians that became transparent or too large are removed. Head and torso sets are handled alike,
each in its own frame (head frame for the head, camera space for the torso).

When densification ends, Gaussians that no training view sees are removed: those whose blending weight
summed over a frame's pixels stays below `train.prune_weight` pixels (at 512 x 512) in every one of a set of
evenly spaced training frames. They are hidden behind others or too faint to matter, yet every rendered
frame pays for them; about half of a densified avatar is such, and the rest of training fills what little
they added.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from avatar.model.gaussians import GaussianSet
from avatar.model.interface import TrainingStrategy
from avatar.ops.rasterize_ref import quat_to_rotmat

EXTENTS_CM = {"head": 22.0, "torso": 45.0}  # sizes of the scenes the sets live in: thresholds are fractions of them


class Densifier:
    def __init__(self, sets: dict[str, GaussianSet], extents: dict[str, float], grad_threshold: float,
                 max_total: int, min_opacity: float = 0.005, dense_fraction: float = 0.01, max_fraction: float = 0.15):
        self.sets = sets
        self.extents = extents
        self.grad_threshold = grad_threshold
        self.max_total = max_total
        self.min_opacity = min_opacity
        self.dense_fraction = dense_fraction
        self.max_fraction = max_fraction
        self.reset()

    def reset(self) -> None:
        self.grad = {name: torch.zeros(len(s), device=s.means.device) for name, s in self.sets.items()}
        self.seen = {name: torch.zeros(len(s), device=s.means.device) for name, s in self.sets.items()}

    @torch.no_grad()
    def accumulate(self, means2d: Tensor, radii: Tensor, width: int, height: int) -> None:
        """Add one step's statistics; `means2d.grad` [N, 2] is ordered like the sets (in insertion order)."""
        if means2d.grad is None:
            return
        grad = means2d.grad * torch.tensor([width / 2, height / 2], device=means2d.device)
        norm = grad.norm(dim=1)
        visible = (radii > 0).all(1).float()
        start = 0
        for name, s in self.sets.items():
            n = len(s)
            self.grad[name] += norm[start:start + n] * visible[start:start + n]
            self.seen[name] += visible[start:start + n]
            start += n

    @torch.no_grad()
    def step(self, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, int]:
        """One densify-and-prune pass; returns how many Gaussians were added and removed."""
        report = {"added": 0, "removed": 0}
        room = self.max_total - sum(len(s) for s in self.sets.values())
        for name, s in self.sets.items():
            if len(s) == 0:
                continue
            extent = self.extents[name]
            mean_grad = self.grad[name] / self.seen[name].clamp_min(1)
            scale = s.log_scales.exp().max(1).values
            hot = mean_grad > self.grad_threshold
            if room <= 0:
                hot[:] = False
            elif int(hot.sum()) > room:  # keep the hottest ones within the budget
                cut = torch.topk(mean_grad, room).values[-1]
                hot &= mean_grad >= cut
            clone = hot & (scale <= self.dense_fraction * extent)
            split = hot & ~clone
            extra = self._clones(s, clone)
            halves = self._splits(s, split, generator)
            for key in extra:
                extra[key] = torch.cat([extra[key], halves[key]])
            room -= int(clone.sum()) + int(split.sum())
            opacity = torch.sigmoid(s.opacity_logits)
            drop = split | (opacity < self.min_opacity) | (scale > self.max_fraction * extent)
            s.keep(~drop, optimizer)
            s.append(extra, optimizer)
            report["added"] += len(extra["means"])
            report["removed"] += int(drop.sum())
        self.reset()
        return report

    @torch.no_grad()
    def prune_unseen(self, weights: Tensor, threshold: float, optimizer: torch.optim.Optimizer) -> int:
        """Removes the Gaussians whose `weights` [N] (ordered like the sets) are below `threshold`; returns
        how many. At least one Gaussian of a non-empty set stays."""
        removed, start = 0, 0
        for s in self.sets.values():
            n = len(s)
            part = weights[start:start + n]
            keep = part >= threshold
            if n and not bool(keep.any()):
                keep[int(part.argmax())] = True
            s.keep(keep, optimizer)
            removed += n - int(keep.sum())
            start += n
        self.reset()
        return removed

    @staticmethod
    def _clones(s: GaussianSet, mask: Tensor) -> dict[str, Tensor]:
        return {name: t.data[mask].clone() for name, t in s.tensors().items()}

    @staticmethod
    def _splits(s: GaussianSet, mask: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Two new Gaussians per split one, drawn from its distribution, each 1/1.6 its size."""
        base = {name: t.data[mask] for name, t in s.tensors().items()}
        scales = base["log_scales"].exp()
        rot = quat_to_rotmat(base["quats"])
        out = {}
        for name, t in base.items():
            out[name] = torch.cat([t, t])
        # Drawn on the generator's device (the CPU), so a run is the same whatever device it trains on.
        noise = torch.randn((2 * len(scales), 3), generator=generator, device=generator.device).to(scales.device)
        noise = noise * torch.cat([scales, scales])
        out["means"] = out["means"] + torch.einsum("nij,nj->ni", torch.cat([rot, rot]), noise)
        out["log_scales"] = out["log_scales"] - math.log(1.6)
        return out


class DensifyStrategy(TrainingStrategy):
    """Reads the screen-space gradient of every Gaussian after backward, densifies and prunes every
    `train.densify_every` steps until `train.densify_until` of the run, then removes the Gaussians no
    training view sees; `weights()` gives every Gaussian's largest weight over those views (pixels at 512^2)."""

    def __init__(self, sets: dict[str, GaussianSet], cfg, max_gaussians: int, weights: Callable[[], Tensor]):
        self.cfg = cfg
        self.weights = weights
        self.densifier = Densifier(sets, {name: EXTENTS_CM[name] for name in sets}, cfg.densify_grad, max_gaussians)
        self.last_densify = int(cfg.densify_until * cfg.iterations)

    def before_backward(self, rendered) -> None:
        rendered.means2d.retain_grad()

    def after_backward(self, rendered, step: int) -> None:
        height, width = rendered.image.shape[:2]
        self.densifier.accumulate(rendered.means2d, rendered.radii, width, height)

    def after_step(self, step: int, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        cfg = self.cfg
        if step > 0 and (step + 1) % cfg.densify_every == 0 and step < self.last_densify:
            self.densifier.step(optimizer, generator)
        if step + 1 == self.last_densify and cfg.prune_weight > 0:
            self.densifier.prune_unseen(self.weights(), cfg.prune_weight, optimizer)

    def state(self) -> dict[str, Tensor]:
        d = self.densifier
        return {f"{kind}/{part}": v for kind, stats in (("grad", d.grad), ("seen", d.seen)) for part, v in stats.items()}

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        d = self.densifier
        device = next(iter(d.sets.values())).means.device
        d.grad = {part: tensors[f"grad/{part}"].to(device) for part in d.sets}
        d.seen = {part: tensors[f"seen/{part}"].to(device) for part in d.sets}
