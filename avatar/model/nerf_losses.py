"""Regularisers of the NeRF avatar's training."""
from __future__ import annotations

import torch
from torch import Tensor


def distortion(offsets: Tensor, ray_ids: Tensor, t: Tensor, delta: Tensor, weights: Tensor) -> Tensor:
    """Mean over rays of the distortion of their weights (mip-NeRF 360): the sum over pairs of samples of
    w_i w_j |m_i - m_j| plus 1/3 of the sum of w_i^2 delta_i, in the units of t, for samples packed by ray
    and in depth order along each (m: interval midpoints). Small when each ray's light ends in one thin
    surface, large for a fog; computed in O(samples) with running sums in float64."""
    rays = len(offsets) - 1
    if len(t) == 0 or rays == 0:
        return weights.sum() * 0
    w = weights.double()
    m = (t + 0.5 * delta).double()
    start = offsets[:-1][ray_ids]

    def before(values: Tensor) -> Tensor:  # sum of the values of the earlier samples of the same ray
        running = torch.cumsum(values, 0) - values
        return running - running[start]

    pairs = 2 * (w * (m * before(w) - before(w * m)))
    inside = w * w * delta.double() / 3
    per_ray = torch.zeros(rays, dtype=torch.float64, device=t.device).index_add(0, ray_ids, pairs + inside)
    return per_ray.mean().to(weights.dtype)
