"""The NeRF avatar's regularisers: the distortion loss against its pairwise definition."""
from __future__ import annotations

import torch

from avatar.model.nerf_losses import distortion


def packed_rays(counts: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    counts_t = torch.tensor(counts)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts_t.cumsum(0)])
    ray_ids = torch.repeat_interleave(torch.arange(len(counts)), counts_t)
    t = torch.cat([torch.sort(torch.rand(c, generator=g) * 10)[0] for c in counts])
    delta = torch.rand(len(t), generator=g) * 0.2
    weights = torch.rand(len(t), generator=g)
    return offsets, ray_ids, t, delta, weights


def pairwise(offsets, t, delta, weights):
    total = weights.sum() * 0
    for r in range(len(offsets) - 1):
        s = slice(int(offsets[r]), int(offsets[r + 1]))
        m, w = t[s] + delta[s] / 2, weights[s]
        total = total + (w[:, None] * w[None] * (m[:, None] - m[None]).abs()).sum() + (w**2 * delta[s]).sum() / 3
    return total / (len(offsets) - 1)


def test_distortion_matches_its_pairwise_definition_with_gradients():
    offsets, ray_ids, t, delta, weights = packed_rays([0, 3, 1, 7, 0, 4, 12])
    weights.requires_grad_(True)
    fast = distortion(offsets, ray_ids, t, delta, weights)
    slow = pairwise(offsets, t, delta, weights)
    assert torch.allclose(fast, slow, rtol=1e-5)
    (g_fast,), (g_slow,) = torch.autograd.grad(fast, weights), torch.autograd.grad(slow, weights)
    assert torch.allclose(g_fast, g_slow, rtol=1e-4, atol=1e-6)


def test_distortion_is_small_for_a_surface_and_large_for_a_fog():
    steps = torch.arange(40.0) * 0.5
    offsets = torch.tensor([0, 40])
    ray_ids = torch.zeros(40, dtype=torch.long)
    delta = torch.full((40,), 0.5)
    fog = torch.full((40,), 1 / 40)
    surface = torch.zeros(40)
    surface[20:22] = 0.5
    assert distortion(offsets, ray_ids, steps, delta, surface) < 0.1 * distortion(offsets, ray_ids, steps, delta, fog)


def test_distortion_of_no_samples_is_zero():
    empty = torch.zeros(0)
    assert float(distortion(torch.zeros(3, dtype=torch.long), empty.long(), empty, empty, empty)) == 0.0
