"""Losses of the avatar fit: photometric on the full frame, coverage against the masks, regularisers."""
from __future__ import annotations

import torch
from torch import Tensor

from avatar.model.avatar import Rendered
from avatar.train.data import FrameBatch


def d_ssim(image: Tensor, target: Tensor) -> Tensor:
    """(1 - SSIM) / 2 of two [H, W, 3] images (11-pixel Gaussian window)."""
    import kornia

    return kornia.losses.ssim_loss(image.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None], window_size=11)


def psnr(image: Tensor, target: Tensor) -> Tensor:
    mse = ((image - target) ** 2).mean()
    return -10 * torch.log10(mse.clamp_min(1e-10))


def avatar_losses(rendered: Rendered, batch: FrameBatch, ssim_weight: float, mouth_weight: float, mask_weight: float,
                  offsets: Tensor | None, offset_weight: float) -> dict[str, Tensor]:
    """Named loss terms; "total" is their weighted sum."""
    image, target = rendered.image, batch.image
    l1 = (image - target).abs().mean()
    x0, y0, x1, y1 = batch.mouth_box
    mouth = (image[y0:y1, x0:x1] - target[y0:y1, x0:x1]).abs().mean() if (x1 > x0 and y1 > y0) else image.new_zeros(())
    person = (batch.labels > 0).float()
    head = (batch.labels >= 2).float()
    coverage = (rendered.alpha - person).abs().mean() + (rendered.head - head).abs().mean()
    terms = {"l1": l1, "mouth_l1": mouth, "coverage": coverage}
    total = (1 - ssim_weight) * l1 + mouth_weight * mouth + mask_weight * coverage
    if ssim_weight > 0:
        terms["d_ssim"] = d_ssim(image, target)
        total = total + ssim_weight * terms["d_ssim"]
    if offsets is not None and offset_weight > 0:
        terms["offsets"] = (offsets**2).sum(1).mean()
        total = total + offset_weight * terms["offsets"]
    terms["total"] = total
    return terms
