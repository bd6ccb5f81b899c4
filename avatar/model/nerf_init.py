"""Where a fresh NeRF avatar starts: a density prior from the tracking and the masks, taught to the fields
before the first training step.

A fresh field is a uniform fog; every ray would march the whole box until training carved it, which on a
CPU costs hours. Instead, per cell of each occupancy grid:
- outside the visual hull (the cell projects onto pixels that are not that part, grown a little, in any of
  a few training frames): empty, never sampled;
- inside the head shape (the hair/skull shell and the face template) or the torso slab: dense, so rays
  stop at its surface;
- in a band around the shape inside the hull (big hair, a hat, a raised collar): a faint density just above
  the occupancy threshold, still sampled, which training grows where the frames need it;
- elsewhere inside the hull (in front of the face, behind the shoulders): empty, but allowed, so a grid
  update finds it again if training puts density there.
The hull itself becomes the grids' `allowed` mask.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avatar.model.init import SHELL_CENTRE, SHELL_RADII
from avatar.model.occupancy import dilate

CPU = torch.device("cpu")
DENSE = 4.0  # per centimetre: a ray stops within about 2 cm
HULL_GROW_PX = 0.03  # labels grown by this fraction of the frame side before carving
BAND_CM = 3.0  # the faint band around the prior shape
VIEWS = 12


def _grown(mask: Tensor, pixels: int) -> Tensor:
    return F.max_pool2d(mask.float()[None, None], 2 * pixels + 1, stride=1, padding=pixels)[0, 0] > 0


def _hull(points_of_view, masks: list[Tensor], K: Tensor) -> Tensor:
    """[N] bool: points that project onto the mask in every view where they are in the image.
    points_of_view(k) -> camera-space points [N, 3] in view k."""
    keep = None
    for k, mask in enumerate(masks):
        p = points_of_view(k)
        z = p[:, 2].clamp_min(1e-3)
        u = (p[:, 0] / z * K[0, 0] + K[0, 2]).floor().long()
        v = (p[:, 1] / z * K[1, 1] + K[1, 2]).floor().long()
        h, w = mask.shape
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (p[:, 2] > 0)
        hit = torch.ones_like(inside)
        hit[inside] = mask[v[inside], u[inside]]
        keep = hit if keep is None else keep & hit
    return keep


def _prior(grid, hull: Tensor, shape: Tensor, faint: float) -> Tensor:
    """[G^3] densities: DENSE in the shape, `faint` in a band around it, 0 elsewhere; all 0 outside the hull."""
    g = grid.resolution
    cell = float(min(b - a for a, b in zip(grid.box_min, grid.box_max))) / g
    band = dilate(shape.view(g, g, g), max(1, int(round(BAND_CM / cell)))).reshape(-1)
    return torch.where(hull, torch.where(shape, DENSE, torch.where(band, faint, 0.0)), 0.0)


def _centres(grid) -> Tensor:
    half = (torch.tensor(grid.box_max, device=CPU) - torch.tensor(grid.box_min, device=CPU)) / (2 * grid.resolution)
    return grid.cell_corners().cpu() + half


def density_priors(model, data) -> tuple[Tensor, Tensor]:
    """([G^3] head-grid prior, [G^3] torso-grid prior) of densities per cell centre, flat index x fastest;
    sets each grid's `allowed` mask to its visual hull."""
    ids = data.train_ids[np.linspace(0, len(data.train_ids) - 1, min(VIEWS, len(data.train_ids))).round().astype(int)]
    frames = [data.frame(int(i)) for i in ids]
    grow = max(1, int(round(HULL_GROW_PX * data.resolution)))
    K = data.intrinsics.cpu()
    faint = 3.0 * model.threshold
    priors = []

    head_grid = model.head_grid
    centres = _centres(head_grid)
    poses = [data.head_pose[int(i)].cpu() for i in ids]
    masks = [_grown(f.labels.cpu() >= 2, grow) for f in frames]
    hull = _hull(lambda k: centres @ poses[k][:3, :3].T + poses[k][:3, 3], masks, K)
    shell = (((centres.numpy() - SHELL_CENTRE) / (SHELL_RADII * 1.05)) ** 2).sum(1) < 1
    template = data.template.cpu()
    near_face = torch.cdist(centres, template).amin(1) < 1.5
    shape = torch.from_numpy(shell) | near_face
    priors.append(_prior(head_grid, hull, shape, faint))
    head_grid.allowed.copy_(dilate(hull.view_as(head_grid.allowed)))

    torso_grid = model.torso_grid
    centres = _centres(torso_grid)
    masks = [_grown(f.labels.cpu() >= 1, grow) for f in frames]
    hull = _hull(lambda k: centres, masks, K)
    depth = float(data.rest_pose[2, 3])
    slab = (centres[:, 2] > depth - 4.0) & (centres[:, 2] < depth + 12.0)
    torso_only = _hull(lambda k: centres, [_grown(f.labels.cpu() == 1, grow) for f in frames], K)
    priors.append(_prior(torso_grid, hull, slab & torso_only, faint))
    torso_grid.allowed.copy_(dilate(hull.view_as(torso_grid.allowed)))
    return priors[0], priors[1]


def teach_density(field_density, params: list[Tensor], grid, prior: Tensor, generator: torch.Generator,
                  steps: int = 150, batch: int = 1 << 15) -> float:
    """Fit `field_density(points [N, 3]) -> [N]` to the per-cell `prior` [G^3] at random points of the
    grid's box (squared error of log densities, so empty means well below the occupancy threshold);
    returns the last loss."""
    optimizer = torch.optim.Adam(params, lr=1e-2)
    device = prior.device
    lo, hi = torch.tensor(grid.box_min, device=device), torch.tensor(grid.box_max, device=device)
    loss = torch.zeros((), device=device)
    for _ in range(steps):
        points = lo + torch.rand(batch, 3, generator=generator).to(device) * (hi - lo)
        target = prior[grid.cells_of(points)]
        loss = ((torch.log(field_density(points) + 1e-3) - torch.log(target + 1e-3)) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return float(loss.detach())
