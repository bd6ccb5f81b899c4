"""CPU rasteriser kernels against their pure-torch twin: forward and gradients, several sizes."""
from __future__ import annotations

import pytest
import torch

from avatar.ops import blend_gaussians, project_gaussians, rasterize_gaussians
from avatar.ops.rasterize_ref import blend_gaussians_ref, project_gaussians_ref

from ops_helpers import assert_close_scaled, random_camera, random_gaussians, well_conditioned_seed

# float32 kernels vs float32 reference: outputs agree to rounding, gradients (sums over many
# pixels, replayed transmittance) to a few 1e-5 of their largest entry.
FWD_ATOL = 2e-5
GRAD_RTOL = 2e-4
NAMES = ("means", "quats", "log_scales", "opacity_logits", "colors", "viewmat", "K", "background")


def _inputs(n, width, height, channels, seed):
    means, quats, log_scales, logits, colors = random_gaussians(n, channels, seed=seed)
    viewmat, K = random_camera(width, height, generator=torch.Generator().manual_seed(seed + 1))
    background = torch.rand(channels, generator=torch.Generator().manual_seed(seed + 2))
    return [means, quats, log_scales, logits, colors, viewmat, K, background]


def _conditioned_inputs(n, width, height, channels, first_seed):
    """Fresh random scene, redrawn while any contribution sits on a blend threshold."""

    def scene(seed):
        means, quats, log_scales, logits, _, viewmat, K, _ = _inputs(n, width, height, channels, seed)
        return means, quats, log_scales, logits, viewmat, K, width, height

    return _inputs(n, width, height, channels, well_conditioned_seed(scene, first_seed))


def _render_and_grads(inputs, width, height, backend, weights, dtype=torch.float32):
    leaves = [t.to(dtype).clone().requires_grad_(True) for t in inputs]
    out = rasterize_gaussians(*leaves[:7], width, height, leaves[7], backend=backend)
    w = [x.to(dtype) for x in weights]
    loss = (out.image * w[0]).sum() + (out.alpha * w[1]).sum() + (out.depth * w[2]).sum()
    grads = torch.autograd.grad(loss, leaves)
    return out, grads


def assert_grads_match(grads_k, grads_32, grads_64):
    """The kernel's gradients must be as close to the float64 reference as float32 allows.

    Gradients summed over many pixels can cancel, so a fixed relative bound would be either too
    loose for most entries or too tight for a few; the float32 reference's own error measures
    the rounding that the same sums suffer, and the kernel may not be much worse than it.
    """
    for name, gk, g32, g64 in zip(NAMES, grads_k, grads_32, grads_64):
        assert g64.abs().max() > 0, f"{name}: the reference gradient is zero; the test would be empty"
        scale = g64.abs().max().item()
        err_32 = (g32.double() - g64).abs().max().item()
        err_k = (gk.double() - g64).abs().max().item()
        bound = max(GRAD_RTOL * scale, 5 * err_32)
        assert err_k <= bound, f"{name}: kernel error {err_k:.3g} > {bound:.3g} (float32 reference: {err_32:.3g})"


@pytest.mark.parametrize(
    "n,width,height,channels,seed",
    [
        (1, 16, 16, 3, 0),
        (3, 16, 16, 3, 9),
        (40, 33, 17, 3, 1),  # neither side a multiple of 16
        (250, 64, 48, 3, 2),
        (300, 45, 80, 1, 3),  # portrait frame, one channel
        (300, 50, 37, 4, 4),
        (200, 40, 40, 6, 5),  # more channels than one blend pass carries
    ],
)
def test_rasterize_matches_reference(kernels, n, width, height, channels, seed):
    inputs = _conditioned_inputs(n, width, height, channels, 100 * seed)
    g = torch.Generator().manual_seed(seed + 10)
    weights = (torch.randn(height, width, channels, generator=g), torch.randn(height, width, generator=g),
               torch.randn(height, width, generator=g))
    out_k, grads_k = _render_and_grads(inputs, width, height, "cpu", weights)
    _, grads_32 = _render_and_grads(inputs, width, height, "torch", weights)
    out_t, grads_64 = _render_and_grads(inputs, width, height, "torch", weights, torch.float64)

    assert out_k.image.shape == (height, width, channels)
    assert out_k.alpha.shape == out_k.depth.shape == (height, width)
    assert torch.equal(out_k.radii > 0, out_t.radii > 0)
    assert (out_k.radii - out_t.radii).abs().max() <= 1  # ceil() of a float32 vs a float64 extent
    assert (out_k.radii > 0).any(), "the scene should show something"
    torch.testing.assert_close(out_k.means2d.double(), out_t.means2d, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out_k.image.double(), out_t.image, atol=FWD_ATOL, rtol=0)
    torch.testing.assert_close(out_k.alpha.double(), out_t.alpha, atol=FWD_ATOL, rtol=0)
    torch.testing.assert_close(out_k.depth.double(), out_t.depth, atol=1e-4, rtol=1e-5)
    assert_grads_match(grads_k, grads_32, grads_64)


@pytest.mark.parametrize("n,seed", [(120, 7), (500, 8)])
def test_project_and_blend_stages_match_reference(kernels, n, seed):
    width, height = 48, 40
    means, quats, log_scales, logits, colors = random_gaussians(n, 3, seed=seed)
    viewmat, K = random_camera(width, height, generator=torch.Generator().manual_seed(seed))
    proj_k = project_gaussians(means, quats, log_scales, logits, viewmat, K, width, height, backend="cpu")
    proj_t = project_gaussians_ref(means, quats, log_scales, logits, viewmat, K, width, height)
    for name, a, b in zip(("means2d", "conics", "depths", "opacities"), proj_k[:4], proj_t[:4]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)
    assert torch.equal(proj_k[4], proj_t[4])

    # The blend stage alone, on the same projected inputs, with gradients to the 2D parameters.
    stage_in = [t.detach().clone() for t in proj_t[:4]] + [colors]
    leaves_k = [t.clone().requires_grad_(True) for t in stage_in]
    leaves_t = [t.clone().requires_grad_(True) for t in stage_in]
    m2, cn, op, dp, cl = leaves_k
    img_k, a_k, d_k = blend_gaussians(m2, cn, op, dp, cl, proj_t[4], width, height, backend="cpu")
    m2, cn, op, dp, cl = leaves_t
    img_t, a_t, d_t = blend_gaussians_ref(m2, cn, op, dp, cl, proj_t[4], width, height)
    torch.testing.assert_close(img_k, img_t, atol=FWD_ATOL, rtol=0)
    torch.testing.assert_close(d_k, d_t, atol=1e-4, rtol=1e-5)
    w = torch.randn_like(img_k)
    gk = torch.autograd.grad((img_k * w).sum() + a_k.sum() + d_k.sum(), leaves_k)
    gt = torch.autograd.grad((img_t * w).sum() + a_t.sum() + d_t.sum(), leaves_t)
    for name, a, b in zip(("means2d", "conics", "opacities", "depths", "colors"), gk, gt):
        assert_close_scaled(a, b, GRAD_RTOL, name)


def test_means2d_gradient_is_available_for_densification(kernels):
    inputs = _inputs(150, 40, 32, 3, seed=11)
    out = rasterize_gaussians(*[t.requires_grad_(True) for t in inputs[:7]], 40, 32, backend="cpu")
    out.means2d.retain_grad()
    out.image.sum().backward()
    grad = out.means2d.grad
    assert grad is not None and grad.shape == (150, 2)
    visible = out.radii[:, 0] > 0
    assert grad[visible].abs().sum() > 0
    assert torch.all(grad[~visible] == 0)


def test_backward_is_deterministic(kernels):
    inputs = _inputs(600, 64, 64, 3, seed=12)
    weights = (torch.randn(64, 64, 3), torch.randn(64, 64), torch.randn(64, 64))
    _, first = _render_and_grads(inputs, 64, 64, "cpu", weights)
    _, second = _render_and_grads(inputs, 64, 64, "cpu", weights)
    for name, a, b in zip(NAMES, first, second):
        assert torch.equal(a, b), name


def test_thread_count_does_not_change_results(kernels):
    inputs = _inputs(500, 64, 48, 3, seed=13)
    weights = (torch.randn(48, 64, 3), torch.randn(48, 64), torch.randn(48, 64))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        out1, g1 = _render_and_grads(inputs, 64, 48, "cpu", weights)
        torch.set_num_threads(2)
        out2, g2 = _render_and_grads(inputs, 64, 48, "cpu", weights)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out1.image, out2.image)
    for name, a, b in zip(NAMES, g1, g2):
        assert torch.equal(a, b), name


def test_a_render_without_gradients_is_the_training_render(kernels):
    """Without gradients the blend skips what backward replays (and tests for stopped blocks less often);
    the pixels must be exactly those of the training forward pass, dense scenes (pixels that stop) included."""
    for n, seed in ((400, 14), (6000, 15)):
        inputs = _inputs(n, 96, 80, 3, seed=seed)
        with torch.no_grad():
            fast = rasterize_gaussians(*inputs[:7], 96, 80, inputs[7], backend="cpu")
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        replayed = rasterize_gaussians(*leaves[:7], 96, 80, leaves[7], backend="cpu")
        for name in ("image", "alpha", "depth"):
            assert torch.equal(getattr(fast, name), getattr(replayed, name).detach()), name
        assert float(replayed.alpha.detach().max()) > 0.999  # some pixels saturate
