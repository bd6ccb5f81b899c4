"""The background behind the avatar: the static plate made in preprocessing, plus a residual estimated in
training from the pixels of training frames that show background the avatar does not cover.

The residual corrects what a median of a few sampled frames with a generously grown person mask cannot:
person colours smeared into the plate near the silhouette, regions only seen between movements. It is a
running average of (frame - static plate) over such pixels, not a gradient-trained image: pixels the
avatar nearly covers get almost no gradient, and an adaptive optimiser turns that into full-size steps
that saturate them. It lives at the training resolution and is resized to whatever size a render asks
for, so the sharp static plate keeps its detail.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_image(image: Tensor, height: int, width: int) -> Tensor:
    """[H, W, C] -> [height, width, C], bilinear; the same tensor when it already has that size."""
    if image.shape[:2] == (height, width):
        return image
    return F.interpolate(image.permute(2, 0, 1)[None], size=(height, width), mode="bilinear",
                         align_corners=False)[0].permute(1, 2, 0).contiguous()


def learned_plate(static: Tensor, residual: Tensor | None) -> Tensor:
    """static [H, W, 3] in [0, 1] plus residual [h, w, 3] (any size; None: none) -> [H, W, 3] in [0, 1]."""
    if residual is None:
        return static
    return (static + resize_image(residual.to(static.device), *static.shape[:2])).clamp(0, 1)


class PlateEstimate:
    """The residual, as running averages over training frames."""

    def __init__(self, static: Tensor, rate: float = 0.05, prior_frames: float = 4.0):
        self.static = static  # [H, W, 3]
        self.residual = torch.zeros_like(static)
        self.weight = torch.zeros(static.shape[:2], device=static.device)  # frames seen per pixel
        # A pixel's first frames are averaged with `prior_frames` frames of "the static plate is right", so a
        # pixel seen once or twice (next to where the person usually is) moves little; later frames count
        # at `rate`, so the estimate follows slow changes.
        self.rate, self.prior = rate, prior_frames

    def plate(self) -> Tensor:
        return (self.static + self.residual).clamp(0, 1)

    @torch.no_grad()
    def update(self, image: Tensor, clear: Tensor, alpha: Tensor, window: tuple[int, int, int, int] | None = None) -> None:
        """One training frame: image [H, W, 3], where it shows clear background [H, W] bool (see
        `avatar.data.masks.clear_background`), the avatar's rendered alpha [H, W]. Clear pixels the avatar
        does not cover move the residual towards what the frame shows. `window` (x0, y0, x1, y1): the inputs
        are only that part of the frame."""
        rows, cols = (slice(None), slice(None)) if window is None else (slice(window[1], window[3]), slice(window[0], window[2]))
        residual, weight, static = self.residual[rows, cols], self.weight[rows, cols], self.static[rows, cols]
        use = (clear & (alpha < 0.05)).float()
        step = use * torch.maximum(1 / (weight + 1 + self.prior), torch.full_like(weight, self.rate))
        residual += step[..., None] * (image - static - residual)
        weight += use
