"""Pure-torch twin of the hash-grid triplane encoding (`cuda_ext/csrc/hash_triplane.h`)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

PLANES = ((0, 1), (1, 2), (0, 2))  # xy, yz, xz
HASH_PRIME = 2654435761


def plane_vertex_index(iu: Tensor, iv: Tensor, resolution: int, table_size: int) -> Tensor:
    """Table rows of grid vertices (iu, iv): dense when the level fits the table, hashed otherwise."""
    row = resolution + 1
    if row * row <= table_size:
        return iu + iv * row
    return torch.bitwise_xor(iu, iv * HASH_PRIME) & (table_size - 1)


def hash_triplane_encode_ref(
    points: Tensor,  # [N, 3]
    tables: Tensor,  # [3, L, T, F]
    resolutions: Sequence[int],  # [L] cells per side
    box_min: Sequence[float],  # [3]
    box_max: Sequence[float],  # [3]
) -> Tensor:
    """Features [N, 3 * L * F], plane-major (xy, yz, xz), then level, then feature."""
    _, levels, table_size, _ = tables.shape
    lo = torch.tensor(box_min, dtype=torch.float64, device=points.device)
    inv_extent = (1.0 / (torch.tensor(box_max, dtype=torch.float64, device=points.device) - lo)).to(points.dtype)
    x = (points - lo.to(points.dtype)) * inv_extent
    # clamp passes the gradient on [0, 1] inclusive and blocks it outside, like the kernel.
    x = x.clamp(0.0, 1.0)
    out = []
    for plane, (a0, a1) in enumerate(PLANES):
        for level in range(levels):
            res = int(resolutions[level])
            u, v = x[:, a0] * res, x[:, a1] * res
            cu = torch.floor(u.detach()).clamp(max=res - 1)
            cv = torch.floor(v.detach()).clamp(max=res - 1)
            fu, fv = (u - cu)[:, None], (v - cv)[:, None]
            iu, iv = cu.long(), cv.long()
            t = tables[plane, level]
            t00 = t[plane_vertex_index(iu, iv, res, table_size)]
            t10 = t[plane_vertex_index(iu + 1, iv, res, table_size)]
            t01 = t[plane_vertex_index(iu, iv + 1, res, table_size)]
            t11 = t[plane_vertex_index(iu + 1, iv + 1, res, table_size)]
            out.append((1 - fu) * (1 - fv) * t00 + fu * (1 - fv) * t10 + (1 - fu) * fv * t01 + fu * fv * t11)
    return torch.cat(out, dim=1) if out else points.new_zeros(points.shape[0], 0)
