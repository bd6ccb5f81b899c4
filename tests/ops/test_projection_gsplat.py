"""The projection against an independent oracle: gsplat's pure-torch `_fully_fused_projection`."""
from __future__ import annotations

import pytest
import torch

from avatar.ops import project_gaussians

from ops_helpers import random_camera, random_gaussians

gsplat_impl = pytest.importorskip("gsplat.cuda._torch_impl", reason="gsplat is not installed")

WIDTH, HEIGHT = 70, 52


def _gsplat_projection(means, quats, log_scales, viewmat, K):
    covars, _ = gsplat_impl._quat_scale_to_covar_preci(quats, torch.exp(log_scales), compute_preci=False)
    radii, means2d, depths, conics, _ = gsplat_impl._fully_fused_projection(
        means, covars, viewmat[None], K[None], WIDTH, HEIGHT, eps2d=0.3, near_plane=0.01, far_plane=1e10)
    return means2d[0], conics[0], depths[0], radii[0]


def _scene(seed, n=300):
    means, quats, log_scales, _, _ = random_gaussians(n, seed=seed, dtype=torch.float64, spread=1.2)
    # Opaque Gaussians: our opacity-aware extent sqrt(2 ln(255 o)) sigma then equals gsplat's
    # 3.33 sigma (to 3e-4), so the two must agree on which Gaussians are on screen too.
    logits = torch.full((n,), 30.0, dtype=torch.float64)
    viewmat, K = random_camera(WIDTH, HEIGHT, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return means, quats, log_scales, logits, viewmat, K


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("seed", [0, 1])
def test_projection_matches_gsplat(request, backend, seed):
    if backend == "cpu":
        request.getfixturevalue("kernels")
    dtype = torch.float32 if backend == "cpu" else torch.float64
    means, quats, log_scales, logits, viewmat, K = _scene(seed)
    g_means2d, g_conics, g_depths, g_radii = _gsplat_projection(means, quats, log_scales, viewmat, K)
    means2d, conics, depths, _, radii = project_gaussians(
        *(t.to(dtype) for t in (means, quats, log_scales, logits, viewmat, K)), WIDTH, HEIGHT, backend=backend)

    ours_visible = (radii > 0).any(-1)
    theirs_visible = (g_radii > 0).any(-1)
    assert ours_visible.sum() > 50, "too few Gaussians on screen for a meaningful comparison"
    # Visibility may only differ for Gaussians whose extent touches the frame edge within 0.1 %.
    differ = ours_visible != theirs_visible
    assert differ.sum() <= 2, f"{int(differ.sum())} Gaussians differ in visibility"
    both = ours_visible & theirs_visible
    assert (radii[both] - g_radii[both]).abs().max() <= 1

    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(means2d[both].double(), g_means2d[both], **tol)
    torch.testing.assert_close(depths[both].double(), g_depths[both], **tol)
    torch.testing.assert_close(conics[both].double(), g_conics[both], **tol)


def test_projection_gradients_match_gsplat(kernels):
    """Our hand-written backward (float32 kernel) against autograd through gsplat's projection."""
    means, quats, log_scales, logits, viewmat, K = _scene(seed=3, n=200)
    leaves64 = [t.clone().requires_grad_(True) for t in (means, quats, log_scales, viewmat, K)]
    g_means2d, g_conics, g_depths, g_radii = _gsplat_projection(*leaves64)
    ours32 = [t.float().clone().requires_grad_(True) for t in (means, quats, log_scales, viewmat, K)]
    means2d, conics, depths, _, radii = project_gaussians(ours32[0], ours32[1], ours32[2], logits.float(), ours32[3],
                                                          ours32[4], WIDTH, HEIGHT, backend="cpu")
    both = ((radii > 0).any(-1) & (g_radii > 0).any(-1)).double()
    gen = torch.Generator().manual_seed(5)
    w2, wc, wd = torch.randn(200, 2, generator=gen), torch.randn(200, 3, generator=gen), torch.randn(200, generator=gen)
    # conics are ~1e-2 and means2d ~1e2: weight them so every term matters in the sum
    loss64 = ((g_means2d * w2).sum(-1) + 100 * (g_conics * wc).sum(-1) + g_depths * wd) @ both
    loss32 = ((means2d * w2).sum(-1) + 100 * (conics * wc).sum(-1) + depths * wd) @ both.float()
    grads64 = torch.autograd.grad(loss64, leaves64)
    grads32 = torch.autograd.grad(loss32, ours32)
    # gsplat's means2d also reads K's skew entries, which we take as zero: compare fx, fy, cx, cy.
    pinhole = torch.tensor([[1.0, 0, 1], [0, 1, 1], [0, 0, 0]], dtype=torch.bool)
    grads32 = list(grads32[:4]) + [grads32[4][pinhole]]
    grads64 = list(grads64[:4]) + [grads64[4][pinhole]]
    for name, a, b in zip(("means", "quats", "log_scales", "viewmat", "K"), grads32, grads64):
        scale = b.abs().max().item()
        assert scale > 0, name
        err = (a.double() - b).abs().max().item()
        assert err <= 2e-4 * scale, f"{name}: {err:.3g} vs scale {scale:.3g}"
