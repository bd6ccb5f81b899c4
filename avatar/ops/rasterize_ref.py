"""Pure-torch twin of the Gaussian rasteriser: the same projection and blending rules as
`cuda_ext/csrc/project.h` and `raster_blend_*.cpp`, differentiated by autograd.

It is the reference the kernels are tested against and the fallback when they cannot be built.
It runs in any dtype (float64 for gradcheck) and renders in 32x32-pixel blocks, each with only
the Gaussians whose bounding box reaches it and recomputed in the backward pass, so memory stays
bounded at full resolution (time does not: it is orders of magnitude slower than the kernels).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
TRANSMITTANCE_MIN = 1e-4
BLOCK = 32


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """quats [..., 4] (wxyz, any norm) -> rotation matrices [..., 3, 3]."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, -1).reshape(quats.shape[:-1] + (3, 3))


def project_gaussians_ref(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    log_scales: Tensor,  # [N, 3]
    opacity_logits: Tensor,  # [N]
    viewmat: Tensor,  # [4, 4]
    K: Tensor,  # [3, 3]
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Returns means2d [N, 2], conics [N, 3], depths [N], opacities [N], radii [N, 2] (int32).

    Culled Gaussians (near/far plane, alpha never reaching 1/255, off screen) get radius 0 and
    zeros everywhere else, with zero gradient.
    """
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    pc = means @ R.T + t
    x, y, z = pc.unbind(-1)
    in_depth = (z > near_plane) & (z < far_plane)
    z = torch.where(in_depth, z, torch.ones_like(z))  # keeps culled rows finite for autograd

    rot = quat_to_rotmat(quats)
    M = rot * torch.exp(log_scales)[..., None, :]
    cov_cam = R @ (M @ M.transpose(-1, -2)) @ R.T

    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    tx = z * torch.minimum(torch.maximum(x / z, -lim_x_neg), lim_x_pos)
    ty = z * torch.minimum(torch.maximum(y / z, -lim_y_neg), lim_y_pos)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * tx / z**2, zero, fy / z, -fy * ty / z**2], -1).reshape(-1, 2, 3)
    cov2d = J @ cov_cam @ J.transpose(-1, -2) + eps2d * torch.eye(2, dtype=means.dtype, device=means.device)
    a, b, c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]
    det = a * c - b * b
    ok_det = det > 0
    det = torch.where(ok_det, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], -1)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)
    opacities = torch.sigmoid(opacity_logits)

    with torch.no_grad():
        cutoff = torch.log(255.0 * opacities)
        ex = torch.sqrt(torch.clamp(2 * cutoff * a, min=0))
        ey = torch.sqrt(torch.clamp(2 * cutoff * c, min=0))
        mx, my = means2d.unbind(-1)
        on_screen = (mx + ex > 0) & (mx - ex < width) & (my + ey > 0) & (my - ey < height)
        visible = in_depth & ok_det & (cutoff > 0) & on_screen
        radii = torch.stack([torch.ceil(ex), torch.ceil(ey)], -1).to(torch.int32) * visible[:, None]

    keep = visible[:, None]
    return (
        torch.where(keep, means2d, 0.0),
        torch.where(keep, conics, 0.0),
        torch.where(visible, z, 0.0),
        torch.where(visible, opacities, 0.0),
        radii,
    )


def _blend_block(px: Tensor, py: Tensor, means2d: Tensor, conics: Tensor, opacities: Tensor, depths: Tensor,
                 colors: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Blends depth-sorted Gaussians [S] over pixels [P]: colour [P, C], T_final [P], depth [P]."""
    dx = px[:, None] - means2d[None, :, 0]
    dy = py[:, None] - means2d[None, :, 1]
    sigma = 0.5 * (conics[:, 0] * dx * dx + conics[:, 2] * dy * dy) + conics[:, 1] * dx * dy
    alpha = torch.clamp(opacities * torch.exp(-sigma), max=ALPHA_MAX)
    valid = alpha >= ALPHA_MIN
    alpha_valid = torch.where(valid, alpha, 0.0)
    # A pixel stops at the first Gaussian that would take its transmittance below 1e-4, which is
    # left out together with everything behind it. Up to that point every valid Gaussian counts,
    # so the transmittance over all valid ones decides where it happens.
    with torch.no_grad():
        T_valid = torch.cumprod(1 - alpha_valid, dim=1)
        stop = valid & (T_valid < TRANSMITTANCE_MIN)
        used = valid & (torch.cumsum(stop.to(torch.int32), dim=1) == 0)
    alpha_used = torch.where(used, alpha, 0.0)
    T_after = torch.cumprod(1 - alpha_used, dim=1)
    T_before = torch.cat([torch.ones_like(T_after[:, :1]), T_after[:, :-1]], dim=1)
    w = alpha_used * T_before
    return w @ colors, T_after[:, -1], w @ depths


def blend_gaussians_ref(
    means2d: Tensor,  # [N, 2]
    conics: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    depths: Tensor,  # [N]
    colors: Tensor,  # [N, C]
    radii: Tensor,  # [N, 2] int
    width: int,
    height: int,
    background: Tensor | None = None,  # [C]
) -> tuple[Tensor, Tensor, Tensor]:
    """Returns image [H, W, C] (over the background), alpha [H, W], expected depth [H, W]."""
    channels = colors.shape[1]
    dtype, device = means2d.dtype, means2d.device
    visible = (radii > 0).any(-1)
    ids = torch.nonzero(visible).flatten()
    order = torch.sort(depths[ids].detach(), stable=True).indices
    ids = ids[order]
    m2, cn, op, dp, cl = means2d[ids], conics[ids], opacities[ids], depths[ids], colors[ids]
    with torch.no_grad():
        # Bounding boxes of the alpha >= 1/255 ellipses, for picking each block's Gaussians.
        det = cn[:, 0] * cn[:, 2] - cn[:, 1] ** 2
        k = 2 * torch.log(255.0 * op).clamp(min=0) / det + 1e-3
        ex, ey = torch.sqrt(k * cn[:, 2]), torch.sqrt(k * cn[:, 0])
        x_lo, x_hi, y_lo, y_hi = m2[:, 0] - ex, m2[:, 0] + ex, m2[:, 1] - ey, m2[:, 1] + ey

    image = torch.zeros(height, width, channels, dtype=dtype, device=device)
    T_final = torch.ones(height, width, dtype=dtype, device=device)
    depth = torch.zeros(height, width, dtype=dtype, device=device)
    rows = []
    for y0 in range(0, height, BLOCK):
        row_parts = []
        for x0 in range(0, width, BLOCK):
            y1, x1 = min(y0 + BLOCK, height), min(x0 + BLOCK, width)
            pick = (x_hi >= x0 + 0.5) & (x_lo <= x1 - 0.5) & (y_hi >= y0 + 0.5) & (y_lo <= y1 - 0.5)
            sel = torch.nonzero(pick).flatten()
            if sel.numel() == 0:
                row_parts.append((image[y0:y1, x0:x1], T_final[y0:y1, x0:x1], depth[y0:y1, x0:x1]))
                continue
            gy, gx = torch.meshgrid(
                torch.arange(y0, y1, dtype=dtype, device=device) + 0.5,
                torch.arange(x0, x1, dtype=dtype, device=device) + 0.5,
                indexing="ij",
            )
            args = (gx.flatten(), gy.flatten(), m2[sel], cn[sel], op[sel], dp[sel], cl[sel])
            if torch.is_grad_enabled() and any(a.requires_grad for a in args):
                col, T, d = checkpoint(_blend_block, *args, use_reentrant=False)
            else:
                col, T, d = _blend_block(*args)
            shape = (y1 - y0, x1 - x0)
            row_parts.append((col.reshape(shape + (channels,)), T.reshape(shape), d.reshape(shape)))
        rows.append([torch.cat([p[i] for p in row_parts], dim=1) for i in range(3)])
    if ids.numel() == 0:
        # Nothing visible: keep the outputs in the graph (with zero gradients) like the kernels,
        # so a training step whose Gaussians all left the view still runs backward.
        anchor = sum(t.sum() for t in (means2d, conics, opacities, depths, colors)) * 0.0
        image, T_final, depth = image + anchor, T_final + anchor, depth + anchor
    elif rows:
        image = torch.cat([r[0] for r in rows], dim=0)
        T_final = torch.cat([r[1] for r in rows], dim=0)
        depth = torch.cat([r[2] for r in rows], dim=0)
    if background is not None:
        image = image + T_final[..., None] * background
    alpha = 1 - T_final
    # Expected depth; alpha is 0 exactly where nothing was blended (and then so is the sum).
    return image, alpha, depth / alpha.clamp(min=1e-10)
