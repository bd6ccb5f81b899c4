"""Pure-torch twins of volume rendering (`cuda_ext/csrc/volume.h`): marching rays through an occupancy
grid, compositing samples along them and looking values up in a volume."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

BIG = 3.4e38  # what the kernels write for "no further samples"


def ray_box_ref(origins: Tensor, dirs: Tensor, box_min: Sequence[float], box_max: Sequence[float]) -> tuple[Tensor, Tensor, Tensor]:
    """(t0, t1, hit) of rays [R, 3] through the box (slab test)."""
    lo = torch.tensor(box_min, dtype=origins.dtype, device=origins.device)
    hi = torch.tensor(box_max, dtype=origins.dtype, device=origins.device)
    flat = dirs == 0
    inv = 1.0 / torch.where(flat, torch.ones_like(dirs), dirs)
    ta, tb = (lo - origins) * inv, (hi - origins) * inv
    enter = torch.where(flat, torch.full_like(ta, -BIG), torch.minimum(ta, tb)).amax(1)
    leave = torch.where(flat, torch.full_like(tb, BIG), torch.maximum(ta, tb)).amin(1)
    inside = ((origins >= lo) & (origins <= hi)) | ~flat
    return enter, leave, (leave > enter) & inside.all(1)


def grid_cell_ref(points: Tensor, grid_res: int, box_min: Sequence[float], box_max: Sequence[float]) -> Tensor:
    """[...] flat occupancy-grid index (x fastest) of points [..., 3]; -1 outside the grid."""
    lo = torch.tensor(box_min, dtype=points.dtype, device=points.device)
    hi = torch.tensor(box_max, dtype=points.dtype, device=points.device)
    cells = ((points - lo) * (grid_res / (hi - lo)).to(points.dtype))
    inside = ((cells >= 0) & (cells < grid_res)).all(-1)
    ijk = cells.clamp(0, grid_res - 1).long()
    index = ijk[..., 0] + grid_res * (ijk[..., 1] + grid_res * ijk[..., 2])
    return torch.where(inside, index, torch.full_like(index, -1))


def march_rays_ref(origins: Tensor, dirs: Tensor, t_start: Tensor, t_stop: Tensor, grid: Tensor, box_min: Sequence[float],
                   box_max: Sequence[float], step: float, near: float, max_samples: int):
    """(offsets [R + 1], ray_ids [S], t_begin [S], t_end [S], t_next [R]) as `march_rays` defines them."""
    R, device = len(origins), origins.device
    t0, t1, hit = ray_box_ref(origins, dirs, box_min, box_max)
    begin = torch.maximum(torch.maximum(t0, torch.full_like(t0, near)), t_start)
    steps = torch.where(hit, torch.ceil((t1 - begin) / step - 0.5).clamp_min(0), torch.zeros_like(t1)).long()
    K = int(steps.max()) + 1 if R else 1
    k = torch.arange(K, device=device, dtype=origins.dtype)
    a = begin[:, None] + k * step
    mid = a + 0.5 * step
    valid = hit[:, None] & (mid < t1[:, None])
    points = origins[:, None] + mid[..., None] * dirs[:, None]
    cell = grid_cell_ref(points, grid.shape[0], box_min, box_max)
    occupied = valid & (cell >= 0) & grid.reshape(-1).bool()[cell.clamp_min(0)]
    rank = occupied.long().cumsum(1)
    keep = occupied & (rank <= max_samples)
    # Stepping stops at the first step in the box after the max_samples-th sample or at or beyond t_stop.
    stop = valid & ((rank - occupied.long() == max_samples) | (a >= t_stop[:, None]))
    first_stop = torch.where(stop, k.expand_as(a), torch.full_like(a, float(K))).amin(1).long()
    keep = keep & (k[None] < first_stop[:, None])
    t_next = torch.where(first_stop < K, a.gather(1, first_stop.clamp(max=K - 1)[:, None])[:, 0],
                         torch.full_like(t1, BIG))
    counts = keep.sum(1)
    offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    rows, cols = torch.nonzero(keep, as_tuple=True)
    return offsets, rows, a[rows, cols], a[rows, cols] + step, t_next


def march_parts_ref(origins: Tensor, dirs: Tensor, t_start: Tensor, t_stop: Tensor, grids: Sequence[Tensor],
                    boxes: Sequence[tuple[Sequence[float], Sequence[float]]], step: float, near: float, max_samples: int):
    """(offsets [R + 1], ray_ids [S], t_begin [S], t_end [S], parts [S], points [S, 3], t_next [P, R]) as
    `march_parts` defines them: each part marched on its own (one sample more than a ray can take from it, so that
    its next sample is known), merged by ray, then depth, then part, and cut at `max_samples` a ray."""
    R, P, device = origins.shape[1], len(grids), origins.device
    pieces = []
    for p, (grid, (lo, hi)) in enumerate(zip(grids, boxes)):
        _, ray_ids, t_begin, t_end, _ = march_rays_ref(origins[p], dirs[p], t_start[p], t_stop[p], grid, lo, hi, step, near,
                                                       max_samples + 1)
        mid = 0.5 * (t_begin + t_end)
        pieces.append((ray_ids, t_begin, t_end, torch.full_like(ray_ids, p), origins[p][ray_ids] + mid[:, None] * dirs[p][ray_ids]))
    ray_ids, t_begin, t_end, parts, points = (torch.cat(column) for column in zip(*pieces))
    # Parts were concatenated in order: stable sorts by depth, then by ray, leave ties to the lower part.
    order = torch.argsort(t_begin, stable=True)
    order = order[torch.argsort(ray_ids[order], stable=True)]
    ray_ids, t_begin, t_end, parts, points = (v[order] for v in (ray_ids, t_begin, t_end, parts, points))
    counts = torch.bincount(ray_ids, minlength=R)
    starts = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    keep = torch.arange(len(ray_ids), device=device) - starts[ray_ids] < max_samples
    t_next = origins.new_full((P, R), BIG)
    for p in range(P):
        left = ~keep & (parts == p)
        t_next[p].scatter_reduce_(0, ray_ids[left], t_begin[left], "amin")
    counts = torch.bincount(ray_ids[keep], minlength=R)
    offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return (offsets, ray_ids[keep], t_begin[keep], t_end[keep], parts[keep], points[keep], t_next)


def composite_ref(offsets: Tensor, sigma: Tensor, delta: Tensor, color: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(out [R, C], opacity [R], weights [S]) of packed samples (see `composite`); differentiable."""
    R = len(offsets) - 1
    counts = offsets[1:] - offsets[:-1]
    ray_ids = torch.repeat_interleave(torch.arange(R, device=sigma.device), counts)
    optical = sigma * delta
    # Transmittance from a running sum restarted at each ray (float64: long packs lose precision).
    total = torch.cumsum(optical.double(), 0)
    before_ray = torch.cat([total.new_zeros(1), total])[offsets[:-1]]
    inside = (total - optical.double() - before_ray[ray_ids]).to(sigma.dtype)
    weights = torch.exp(-inside) * (1 - torch.exp(-optical))
    out = color.new_zeros(R, color.shape[1]).index_add(0, ray_ids, weights[:, None] * color)
    opacity = weights.new_zeros(R).index_add(0, ray_ids, weights)
    return out, opacity, weights


def lookup_volume_ref(volume: Tensor, points: Tensor, box_min: Sequence[float], box_max: Sequence[float]) -> Tensor:
    """[N, C] trilinear values at points [N, 3] of a volume [C, G, G, G] ([z, y, x]) of cell centres over a box
    (border values beyond the outermost centres); differentiable."""
    lo, hi = points.new_tensor(box_min), points.new_tensor(box_max)
    where = ((points - lo) / (hi - lo) * 2 - 1).view(1, 1, 1, -1, 3)
    out = F.grid_sample(volume[None].to(points.dtype), where, align_corners=False, padding_mode="border")
    return out.view(len(volume), -1).T
