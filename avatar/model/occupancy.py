"""Occupancy grids of a neural field: which cells of its box can hold anything, so rays skip the rest.

A mask and two statistics per cell, all kept in the model's tensors (so a checkpoint resumes them and a trained
avatar renders with them):
- `allowed`: cells that may hold anything at all (set at initialisation from the frames' masks: a cell
  that projects onto background in a training frame is empty);
- `density`: a decaying maximum of the field's density at random points of the cell, refreshed during
  training (the instant-ngp / nerfacc recipe). A cell is occupied when it, or a neighbour, is above the
  threshold: the dilation keeps a cell whose dense part no sample point happened to hit.
- `seen`: the largest compositing weight any training sample in the cell had. Cells inside an opaque
  head are dense but never seen; a trained avatar renders without them (dilated again, for expressions
  a little beyond the trained ones), which is most of what makes CPU rendering affordable.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


def dilate(mask: Tensor, cells: int = 1) -> Tensor:
    """[G, G, G] bool grown by `cells` in every direction (a cube neighbourhood): one pass of shifted ors per axis
    (a cube is the product of three segments; 0.2 ms a 64^3 grid, where a 3-d max pool of the cube took 8.6)."""
    out = mask
    for axis in range(mask.dim()):
        size = mask.shape[axis]
        grown = out.clone()
        for k in range(1, min(cells, size - 1) + 1):
            grown.narrow(axis, k, size - k).logical_or_(out.narrow(axis, 0, size - k))
            grown.narrow(axis, 0, size - k).logical_or_(out.narrow(axis, k, size - k))
        out = grown
    return out


class OccupancyGrid(nn.Module):
    def __init__(self, box_min, box_max, resolution: int, device: torch.device = torch.device("cpu")):
        super().__init__()
        self.box_min, self.box_max = tuple(map(float, box_min)), tuple(map(float, box_max))
        self.resolution = int(resolution)
        shape = (self.resolution,) * 3
        self.register_buffer("density", torch.full(shape, -1.0, device=device))  # negative: not measured yet (occupied)
        self.register_buffer("seen", torch.zeros(shape, device=device))
        self.register_buffer("allowed", torch.ones(shape, dtype=torch.bool, device=device))
        self._occupied: tuple[tuple, Tensor] | None = None  # (what it was computed from, the mask)

    def _corner_and_cell(self, device) -> tuple[Tensor, Tensor]:
        lo, hi = torch.tensor(self.box_min, device=device), torch.tensor(self.box_max, device=device)
        return lo, (hi - lo) / self.resolution

    def cell_corners(self) -> Tensor:
        """[G^3, 3] lower corners of the cells, flat index x fastest (the grid's [z, y, x] order)."""
        g = torch.arange(self.resolution, device=self.density.device, dtype=torch.float32)
        z, y, x = torch.meshgrid(g, g, g, indexing="ij")
        lo, cell = self._corner_and_cell(self.density.device)
        return lo + torch.stack([x, y, z], -1).reshape(-1, 3) * cell

    def cells_of(self, points: Tensor) -> Tensor:
        """[N] flat cell index of points [N, 3] (clamped into the grid)."""
        lo, cell = self._corner_and_cell(points.device)
        ijk = ((points - lo) / cell).long().clamp(0, self.resolution - 1)
        return ijk[:, 0] + self.resolution * (ijk[:, 1] + self.resolution * ijk[:, 2])

    @torch.no_grad()
    def update(self, density_fn: Callable[[Tensor], Tensor], generator: torch.Generator, decay: float = 0.9,
               chunk: int = 1 << 17) -> None:
        """Measure the density `density_fn(points [N, 3]) -> [N]` at one random point of every allowed cell and keep
        max(decay * previous, measured); a cell that is not allowed holds nothing (0), whatever the field says there
        (a fifth to a third of clip 04's cells: measuring them cost training time for cells `occupied` drops anyway).
        Random draws come from the CPU `generator`, in `chunk`s of points per call of `density_fn`."""
        flat = self.density.view(-1)
        cells = torch.nonzero(self.allowed.view(-1), as_tuple=True)[0]
        corners = self.cell_corners()[cells]
        _, cell = self._corner_and_cell(flat.device)
        points = corners + torch.rand(corners.shape, generator=generator).to(flat.device) * cell
        calls = [density_fn(points[i:i + chunk]) for i in range(0, len(points), chunk)]
        measured = (torch.cat(calls) if calls else points.new_zeros(0)).float()
        previous = flat[cells]
        kept = torch.where(previous < 0, measured, torch.maximum(previous * decay, measured))
        flat.zero_().index_copy_(0, cells, kept)  # `previous` is a copy: zeroing first is safe

    @torch.no_grad()
    def record(self, points: Tensor, weights: Tensor) -> None:
        """Samples at `points` [N, 3] had compositing weights [N]: remember the largest per cell."""
        if len(points):
            self.seen.view(-1).scatter_reduce_(0, self.cells_of(points), weights.float(), "amax")

    def occupied(self, threshold: float) -> Tensor:
        """[G, G, G] bool: the cells a ray must sample while training. Kept until `density` or `allowed`
        change (a training step asks for it twice; the grid changes every 16 steps)."""
        key = (float(threshold), self.density._version, self.allowed._version, self.density.data_ptr(), self.allowed.data_ptr())
        if self._occupied is None or self._occupied[0] != key:
            self._occupied = (key, dilate((self.density > threshold) | (self.density < 0)) & self.allowed)
        return self._occupied[1]

    def visible(self, threshold: float, min_weight: float = 1e-3, margin: int = 2) -> Tensor:
        """[G, G, G] bool: the cells a trained field renders: occupied and seen (grown by `margin` cells)."""
        if not bool((self.seen > 0).any()):
            return self.occupied(threshold)
        return self.occupied(threshold) & dilate(self.seen > min_weight, margin)
