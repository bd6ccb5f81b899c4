"""The rasteriser's torch reference is itself checked against finite differences (float64)."""
from __future__ import annotations

import torch
from torch.autograd import gradcheck

from avatar.ops import rasterize_gaussians
from avatar.ops.rasterize_ref import project_gaussians_ref

from ops_helpers import random_camera, random_gaussians, well_conditioned_seed

WIDTH, HEIGHT = 14, 11


def _scene(seed, n=3):
    means, quats, log_scales, logits, colors = random_gaussians(n, 3, seed=seed, dtype=torch.float64, spread=0.25,
                                                                log_scale_range=(-2.6, -2.0))
    viewmat, K = random_camera(WIDTH, HEIGHT, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return means, quats, log_scales, logits, colors, viewmat, K


def test_projection_reference_gradcheck():
    means, quats, log_scales, logits, _, viewmat, K = _scene(seed=0, n=4)

    def project(*args):
        return project_gaussians_ref(*args, WIDTH, HEIGHT)[:4]

    assert gradcheck(project, [t.requires_grad_(True) for t in (means, quats, log_scales, logits, viewmat, K)],
                     eps=1e-6, atol=1e-5, rtol=1e-4)


def test_rasterize_reference_gradcheck():
    def positions(seed):
        means, quats, log_scales, logits, _, viewmat, K = _scene(seed)
        return means, quats, log_scales, logits, viewmat, K, WIDTH, HEIGHT

    # Finite differences straddling an alpha or transmittance threshold would measure the jump,
    # not the derivative: use a scene well away from all of them.
    seed = well_conditioned_seed(positions, first_seed=1, min_margin=1e-3)
    means, quats, log_scales, logits, colors, viewmat, K = _scene(seed)
    background = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    inputs = [t.requires_grad_(True) for t in (means, quats, log_scales, logits, colors, viewmat, K, background)]

    def render(means, quats, log_scales, logits, colors, viewmat, K, background):
        out = rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, WIDTH, HEIGHT, background,
                                  backend="torch")
        return out.image, out.alpha, out.depth

    image = render(*inputs)[0]
    assert (image - background).abs().max() > 0.05, "the Gaussians should be visible"
    assert gradcheck(render, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)
