"""Edge cases of the rasteriser: empty and degenerate scenes, extreme scales, bad input."""
from __future__ import annotations

import math

import pytest
import torch

from avatar.ops import rasterize_gaussians

from ops_helpers import assert_close_scaled, random_camera, random_gaussians

def _render(backend, means, quats, log_scales, logits, colors, width=40, height=30, background=None, **kw):
    viewmat, K = random_camera(width, height, tilt=False)
    return rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, width, height, background,
                               backend=backend, **kw)


def test_no_gaussians_gives_background(backend):
    bg = torch.tensor([0.2, 0.4, 0.6])
    empty = [torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 3)]
    out = _render(backend, *empty, background=bg)
    assert out.image.shape == (30, 40, 3)
    assert torch.allclose(out.image, bg.expand(30, 40, 3))
    assert torch.all(out.alpha == 0) and torch.all(out.depth == 0)
    assert out.radii.shape == (0, 2) and out.means2d.shape == (0, 2)


def test_gaussians_behind_the_camera_are_culled(backend):
    means, quats, log_scales, logits, colors = random_gaussians(50, seed=1)
    means = means.clone()
    means[:, 2] = -2.5 - means[:, 2].abs()  # camera sits at z = -2.5 looking along +z
    leaves = [t.clone().requires_grad_(True) for t in (means, quats, log_scales, logits, colors)]
    out = _render(backend, *leaves)
    assert torch.all(out.radii == 0)
    assert torch.all(out.image == 0) and torch.all(out.alpha == 0)
    out.image.sum().backward()
    for t in leaves:
        assert torch.all(t.grad == 0)


def test_gaussians_off_screen_are_culled(backend):
    means, quats, log_scales, logits, colors = random_gaussians(50, seed=2)
    means = means.clone()
    means[:, 0] += 30.0  # far to the right of the frustum
    out = _render(backend, means, quats, log_scales, logits, colors)
    assert torch.all(out.radii == 0) and torch.all(out.alpha == 0)


@pytest.mark.parametrize("opacity", [0.35, 0.8])
def test_single_gaussian_peak_is_opacity_times_colour(backend, opacity):
    # A Gaussian centred exactly on a pixel centre, in front of the camera at the principal point.
    width = height = 33
    K = torch.tensor([[40.0, 0.0, 16.5], [0.0, 40.0, 16.5], [0.0, 0.0, 1.0]])
    viewmat = torch.eye(4)
    viewmat[2, 3] = 3.0
    colour = torch.tensor([[0.9, 0.5, 0.25]])
    logit = torch.tensor([math.log(opacity / (1 - opacity))])
    out = rasterize_gaussians(torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), -2.0), logit,
                              colour, viewmat, K, width, height, backend=backend)
    peak = out.image[16, 16]
    assert torch.allclose(peak, opacity * colour[0], atol=1e-5)
    assert out.alpha[16, 16] == pytest.approx(opacity, abs=1e-5)
    assert out.depth[16, 16] == pytest.approx(3.0, abs=1e-4)
    assert torch.all(out.image <= peak + 1e-6)  # nothing brighter than the centre
    assert out.radii[0, 0] == out.radii[0, 1] > 0


def test_huge_and_tiny_scales(backend):
    means, quats, log_scales, logits, colors = random_gaussians(30, seed=3)
    log_scales = log_scales.clone()
    log_scales[:10] = 3.0  # metres wide: covers the whole frame
    log_scales[10:20] = -14.0  # far below a pixel: only the 0.3 px dilation remains
    out = _render(backend, means, quats, log_scales, logits, colors)
    assert torch.isfinite(out.image).all() and torch.isfinite(out.depth).all()
    assert (out.radii[:10] > 0).any() and (out.radii[10:20] >= 0).all()
    assert out.alpha.min() > 0.1  # the huge ones cover every pixel


def test_huge_and_tiny_scales_match_reference(kernels):
    means, quats, log_scales, logits, colors = random_gaussians(30, seed=4)
    log_scales = log_scales.clone()
    log_scales[:5] = 2.0
    log_scales[5:10] = -14.0
    args = [t.requires_grad_(True) for t in (means, quats, log_scales, logits, colors)]
    out_k = _render("cpu", *args)
    out_t = _render("torch", *args)
    torch.testing.assert_close(out_k.image, out_t.image, atol=2e-5, rtol=0)
    gk = torch.autograd.grad(out_k.image.sum(), args)
    gt = torch.autograd.grad(out_t.image.sum(), args)
    for name, a, b in zip(("means", "quats", "log_scales", "logits", "colors"), gk, gt):
        assert_close_scaled(a, b, 5e-4, name)


def test_non_contiguous_inputs(backend):
    means, quats, log_scales, logits, colors = random_gaussians(80, 3, seed=5)
    # Same values in strided storage: a transposed copy, a column slice, every other row.
    strided = [
        means.T.contiguous().T,
        torch.stack([quats, quats], 1)[:, 0],
        torch.cat([log_scales, log_scales], 1)[:, :3],
        torch.stack([logits, logits], 1)[:, 1],
        torch.cat([colors, colors], 1)[:, 3:],
    ]
    assert not any(t.is_contiguous() for t in strided)
    reference = _render(backend, means, quats, log_scales, logits, colors)
    out = _render(backend, *strided)
    torch.testing.assert_close(out.image, reference.image, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.depth, reference.depth, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["means", "quats", "log_scales", "opacity_logits", "colors", "viewmat", "K",
                                  "background"])
def test_nan_input_is_rejected_by_name(backend, name):
    means, quats, log_scales, logits, colors = random_gaussians(10, seed=6)
    viewmat, K = random_camera(20, 20)
    args = dict(means=means, quats=quats, log_scales=log_scales, opacity_logits=logits, colors=colors,
                viewmat=viewmat, K=K, background=torch.zeros(3))
    bad = args[name].clone()
    bad.view(-1)[0] = float("nan")
    args[name] = bad
    with pytest.raises(ValueError, match=f"`{name}` contains NaN"):
        rasterize_gaussians(**args, width=20, height=20, backend=backend)


def test_wrong_shapes_are_rejected_by_name():
    means, quats, log_scales, logits, colors = random_gaussians(10, seed=7)
    viewmat, K = random_camera(20, 20)
    with pytest.raises(ValueError, match="`quats` must have shape"):
        rasterize_gaussians(means, quats[:, :3], log_scales, logits, colors, viewmat, K, 20, 20)
    with pytest.raises(ValueError, match="`colors` must have shape"):
        rasterize_gaussians(means, quats, log_scales, logits, colors[:5], viewmat, K, 20, 20)
    with pytest.raises(ValueError, match="`background` must have shape"):
        rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, 20, 20, torch.zeros(4))
    with pytest.raises(ValueError, match="`width` and `height`"):
        rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, 0, 20)


def test_cpu_backend_refuses_float64(kernels):
    means, quats, log_scales, logits, colors = random_gaussians(5, seed=8, dtype=torch.float64)
    viewmat, K = random_camera(20, 20, dtype=torch.float64)
    with pytest.raises(ValueError, match="float32"):
        rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, 20, 20, backend="cpu")
    # auto keeps float64 on the reference rather than silently dropping precision
    out = rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, 20, 20, backend="auto")
    assert out.image.dtype == torch.float64


def test_blend_stage_rejects_bad_input_by_name():
    from avatar.ops import blend_gaussians

    n = 4
    args = dict(means2d=torch.zeros(n, 2), conics=torch.ones(n, 3), opacities=torch.full((n,), 0.5),
                depths=torch.ones(n), colors=torch.ones(n, 3), radii=torch.ones(n, 2, dtype=torch.int32))
    bad = dict(args, conics=args["conics"].clone())
    bad["conics"][1, 2] = float("nan")
    with pytest.raises(ValueError, match="`conics` contains NaN"):
        blend_gaussians(**bad, width=8, height=8)
    with pytest.raises(ValueError, match="`depths` must have shape"):
        blend_gaussians(**dict(args, depths=torch.ones(n + 1)), width=8, height=8)
