"""The CUDA path's glue around gsplat, run on the CPU with gsplat's CUDA functions replaced by our
torch references: checks the shapes passed between the stages, the depth channel riding along
with the colours, and that `means2d` is the tensor the blend reads (so its gradient is there)."""
from __future__ import annotations

import pytest
import torch

import avatar.ops.rasterize_gsplat as glue
from avatar.ops import rasterize_gaussians
from avatar.ops.rasterize_ref import blend_gaussians_ref, project_gaussians_ref

from ops_helpers import random_camera, random_gaussians

gsplat = pytest.importorskip("gsplat", reason="gsplat is not installed")
WIDTH, HEIGHT = 36, 28


@pytest.fixture
def cpu_gsplat(monkeypatch):
    captured = {}

    def fully_fused_projection(means, covars, quats, scales, viewmats, Ks, width, height, eps2d, near_plane,
                               far_plane, opacities):
        assert covars is None and viewmats.shape == (1, 4, 4) and Ks.shape == (1, 3, 3)
        logits = torch.log(opacities) - torch.log1p(-opacities)
        means2d, conics, depths, _, radii = project_gaussians_ref(means, quats, torch.log(scales), logits,
                                                                  viewmats[0], Ks[0], width, height, near_plane,
                                                                  far_plane, eps2d)
        captured.update(radii=radii, depths=depths)
        return radii[None], means2d[None], depths[None], conics[None], None

    def isect_tiles(means2d, radii, depths, tile_size, tiles_x, tiles_y):
        assert means2d.dim() == 3 and tile_size == 16 and (tiles_x, tiles_y) == (3, 2)
        return None, "isect_ids", "flatten_ids"

    def isect_offset_encode(isect_ids, n_images, tiles_x, tiles_y):
        return "offsets"

    def rasterize_to_pixels(means2d, conics, colors, opacities, width, height, tile_size, offsets, flatten_ids,
                            backgrounds=None):
        image, alpha, _ = blend_gaussians_ref(means2d[0], conics[0], opacities[0], captured["depths"], colors[0],
                                              captured["radii"], width, height,
                                              None if backgrounds is None else backgrounds[0])
        return image[None], alpha[None, ..., None]

    for name, fn in [("fully_fused_projection", fully_fused_projection), ("isect_tiles", isect_tiles),
                     ("isect_offset_encode", isect_offset_encode), ("rasterize_to_pixels", rasterize_to_pixels)]:
        monkeypatch.setattr(gsplat, name, fn)


def test_glue_matches_the_reference_path(cpu_gsplat):
    means, quats, log_scales, logits, colors = random_gaussians(60, 3, seed=1)
    viewmat, K = random_camera(WIDTH, HEIGHT)
    background = torch.tensor([0.3, 0.2, 0.1])
    leaves = [t.clone().requires_grad_(True) for t in (means, quats, log_scales, logits, colors)]
    image, alpha, depth, radii, means2d = glue.rasterize_gsplat(*leaves, viewmat, K, WIDTH, HEIGHT, background, 0.01,
                                                                1e10, 0.3)
    expected = rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, WIDTH, HEIGHT, background,
                                   backend="torch")
    assert image.shape == (HEIGHT, WIDTH, 3) and alpha.shape == depth.shape == (HEIGHT, WIDTH)
    assert means2d.shape == (60, 2) and radii.shape == (60, 2)
    torch.testing.assert_close(image, expected.image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alpha, expected.alpha, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(depth, expected.depth, atol=1e-4, rtol=1e-4)
    means2d.retain_grad()
    image.sum().backward()
    assert means2d.grad is not None and means2d.grad.abs().sum() > 0
    assert all(t.grad is not None for t in leaves)
