"""Losses of the avatar fit: photometric on the full frame, coverage against the masks, regularisers."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from avatar.data.avatar_data import FrameBatch
from avatar.model.interface import Rendered


def _gaussian_window(size: int, device: torch.device, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def ssim_map(image: Tensor, target: Tensor, size: int = 11) -> Tensor:
    """Per-pixel SSIM of two [H, W, C] images in [0, 1]: 11-pixel Gaussian window (sigma 1.5), reflected
    borders, as kornia computes it, but with the window applied as two 1D passes (5x fewer operations
    than one 2D pass, which matters on a CPU)."""
    c1, c2 = 0.01**2, 0.03**2
    channels = image.shape[-1]
    x, y = image.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None]
    stack = torch.cat([x, y, x * x, y * y, x * y], 1)  # [1, 5C, H, W]
    w = _gaussian_window(size, image.device).to(image.dtype)
    pad = size // 2
    stack = F.pad(stack, (pad, pad, pad, pad), mode="reflect")
    stack = F.conv2d(stack, w.view(1, 1, 1, size).expand(5 * channels, 1, 1, size), groups=5 * channels)
    stack = F.conv2d(stack, w.view(1, 1, size, 1).expand(5 * channels, 1, size, 1), groups=5 * channels)
    mx, my, xx, yy, xy = stack.split(channels, 1)
    sx, sy, sxy = xx - mx * mx, yy - my * my, xy - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sx + sy + c2)
    return (num / den)[0].permute(1, 2, 0)


def d_ssim(image: Tensor, target: Tensor) -> Tensor:
    """(1 - SSIM) / 2 of two [H, W, 3] images, averaged over pixels and channels."""
    return ((1 - ssim_map(image, target)) / 2).clamp(0, 1).mean()


def psnr(image: Tensor, target: Tensor) -> Tensor:
    mse = ((image - target) ** 2).mean()
    return -10 * torch.log10(mse.clamp_min(1e-10))


def head_box(labels: Tensor, margin: float = 0.1, minimum: int = 16) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the pixels labelled head or mouth, grown by `margin`; the whole frame if none."""
    h, w = labels.shape
    ys, xs = torch.nonzero(labels >= 2, as_tuple=True)
    if len(ys) == 0:
        return 0, h, 0, w
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    grow_y, grow_x = max(int(margin * (y1 - y0)), (minimum - (y1 - y0)) // 2 + 1), max(int(margin * (x1 - x0)), (minimum - (x1 - x0)) // 2 + 1)
    return max(0, y0 - grow_y), min(h, y1 + grow_y), max(0, x0 - grow_x), min(w, x1 + grow_x)


def box_l1(image: Tensor, target: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    """Mean absolute difference inside box (x0, y0, x1, y1); zero for an empty box."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return image.new_zeros(())
    return (image[y0:y1, x0:x1] - target[y0:y1, x0:x1]).abs().mean()


def avatar_losses(rendered: Rendered, batch: FrameBatch, ssim_weight: float, mouth_weight: float,
                  eye_weight: float, mask_weight: float) -> dict[str, Tensor]:
    """The loss terms every kind of avatar shares, by name; "total" is their weighted sum. Mouth and eyes,
    where sharpness is seen (teeth, lids, irises) and which are a few hundred pixels of the frame, get extra
    L1 weight in boxes around them."""
    image, target = rendered.image, batch.image
    l1 = (image - target).abs().mean()
    mouth = box_l1(image, target, batch.mouth_box)
    eyes = sum(box_l1(image, target, box) for box in batch.eye_boxes) / len(batch.eye_boxes)
    coverage = (rendered.alpha - batch.person).abs().mean() + (rendered.head - batch.head).abs().mean()
    terms = {"l1": l1, "mouth_l1": mouth, "eyes_l1": eyes, "coverage": coverage}
    total = (1 - ssim_weight) * l1 + mouth_weight * mouth + eye_weight * eyes + mask_weight * coverage
    if ssim_weight > 0:
        # D-SSIM where structure matters most and costs least: the box around the head (L1 covers the
        # whole frame; the rest of it is mostly the plate and the still torso).
        y0, y1, x0, x1 = head_box(batch.labels)
        terms["d_ssim"] = d_ssim(image[y0:y1, x0:x1], target[y0:y1, x0:x1])
        total = total + ssim_weight * terms["d_ssim"]
    terms["total"] = total
    return terms
