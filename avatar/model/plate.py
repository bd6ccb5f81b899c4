"""The background behind the avatar: the static plate made in preprocessing, plus a residual learned in
training from the pixels each training frame labels as background.

The residual corrects what a per-pixel median cannot: person colours smeared into the plate near the
silhouette, regions only seen between movements, slow drifts. It is learned at the training resolution
and resized to whatever size a render asks for, so the sharp static plate keeps its detail.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_image(image: Tensor, height: int, width: int) -> Tensor:
    """[H, W, C] -> [height, width, C], bilinear (area-like when shrinking is not needed here)."""
    if image.shape[:2] == (height, width):
        return image
    return F.interpolate(image.permute(2, 0, 1)[None], size=(height, width), mode="bilinear",
                         align_corners=False)[0].permute(1, 2, 0).contiguous()


def learned_plate(static: Tensor, residual: Tensor | None) -> Tensor:
    """static [H, W, 3] in [0, 1] plus residual [h, w, 3] (any size; None: none) -> [H, W, 3] in [0, 1]."""
    if residual is None:
        return static
    return (static + resize_image(residual.to(static.device), *static.shape[:2])).clamp(0, 1)


def training_plate(static: Tensor, residual: Tensor, labels: Tensor) -> Tensor:
    """The plate one training frame is composited over: static [H, W, 3] + residual [H, W, 3], where only
    pixels the frame labels background (labels [H, W] == 0) pass gradient to the residual (the residual
    must not learn the person where the avatar does not yet cover it)."""
    mask = (labels == 0)[..., None]
    return (static + torch.where(mask, residual, residual.detach())).clamp(0, 1)
