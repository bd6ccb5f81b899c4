"""The CUDA path of :func:`avatar.ops.rasterize_gaussians`: gsplat's kernels behind our signature.

gsplat's fused projection and tile rasteriser run the same model as the CPU kernels (EWA
projection with eps2d dilation, opacity-aware extents, 16x16 tiles, front-to-back blending with
early stop). Differences worth knowing: gsplat clamps alpha at 0.999 instead of 0.99, and its
projection reads K's skew entries while ours assumes zero skew.

It is built from gsplat's lower-level functions rather than `gsplat.rasterization` so that the
returned `means2d` is the very tensor the blend consumes: `means2d.retain_grad()` then yields the
2D-mean gradient densification needs, as on the CPU path. This machine has no GPU, so this path
is compile-checked by import only; it follows gsplat 1.5.3's documented signatures.
"""
from __future__ import annotations

import torch
from torch import Tensor

TILE = 16


def rasterize_gsplat(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    log_scales: Tensor,  # [N, 3]
    opacity_logits: Tensor,  # [N]
    colors: Tensor,  # [N, C]
    viewmat: Tensor,  # [4, 4]
    K: Tensor,  # [3, 3]
    width: int,
    height: int,
    background: Tensor | None,  # [C]
    near_plane: float,
    far_plane: float,
    eps2d: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Returns image [H, W, C], alpha [H, W], expected depth [H, W], radii [N, 2] int32, means2d [N, 2]."""
    from gsplat import fully_fused_projection, isect_offset_encode, isect_tiles, rasterize_to_pixels

    opacities = torch.sigmoid(opacity_logits)
    radii, means2d_batched, depths, conics, _ = fully_fused_projection(
        means, None, quats, torch.exp(log_scales), viewmat[None], K[None], width, height, eps2d=eps2d,
        near_plane=near_plane, far_plane=far_plane, opacities=opacities)
    means2d = means2d_batched[0]  # [N, 2]; everything below reads this view
    tiles_x, tiles_y = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    _, isect_ids, flatten_ids = isect_tiles(means2d[None], radii, depths, TILE, tiles_x, tiles_y)
    isect_offsets = isect_offset_encode(isect_ids, 1, tiles_x, tiles_y)
    # Depth rides along as one more channel: the blend of depth is the expected depth numerator.
    features = torch.cat([colors, depths[0][:, None]], dim=-1)
    bg = None if background is None else torch.cat([background, background.new_zeros(1)])[None]
    rendered, alphas = rasterize_to_pixels(means2d[None], conics, features[None], opacities[None], width, height,
                                           TILE, isect_offsets, flatten_ids, backgrounds=bg)
    image, depth_sum = rendered[0, ..., :-1], rendered[0, ..., -1]
    alpha = alphas[0, ..., 0]
    return image, alpha, depth_sum / alpha.clamp(min=1e-10), radii[0], means2d
