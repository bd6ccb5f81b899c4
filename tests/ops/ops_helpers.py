"""Random scenes and scaled comparisons shared by the kernel tests."""
from __future__ import annotations

import math

import torch


def random_camera(width: int, height: int, dtype=torch.float32, generator=None, tilt: bool = True):
    """Camera-from-world [4, 4] looking roughly at the origin from z = -2.5, and intrinsics [3, 3]."""
    g = generator
    f = 0.9 * max(width, height)
    K = torch.tensor([[f, 0.0, width * 0.52], [0.0, f * 1.05, height * 0.47], [0.0, 0.0, 1.0]], dtype=dtype)
    viewmat = torch.eye(4, dtype=dtype)
    if tilt:
        # a small rotation so the view matrix gradient exercises its rotation block
        a = (torch.rand(3, generator=g, dtype=dtype) - 0.5) * 0.3
        S = torch.tensor([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]], dtype=dtype)
        viewmat[:3, :3] = torch.linalg.matrix_exp(S)
    viewmat[:3, 3] = torch.tensor([0.05, -0.03, 2.5], dtype=dtype)
    return viewmat, K


def random_gaussians(n: int, channels: int = 3, *, seed: int = 0, dtype=torch.float32, spread: float = 0.6,
                     log_scale_range=(-4.5, -2.0)):
    """means [N, 3], quats [N, 4], log_scales [N, 3], opacity_logits [N], colors [N, C] around the origin."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 2 * spread
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    lo, hi = log_scale_range
    log_scales = lo + (hi - lo) * torch.rand(n, 3, generator=g, dtype=dtype)
    opacity_logits = torch.randn(n, generator=g, dtype=dtype) * 1.5
    colors = torch.rand(n, channels, generator=g, dtype=dtype)
    return means, quats, log_scales, opacity_logits, colors


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, rtol: float, name: str = "") -> None:
    """max |actual - expected| <= rtol * max |expected| (plus a floor for all-zero references).

    Gradients of a rasteriser span many orders of magnitude; scaling by the largest entry checks
    every entry at the precision float32 kernels can promise, without special-casing zeros.
    """
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    a, e = actual.detach().double(), expected.detach().double()
    scale = max(e.abs().max().item() if e.numel() else 0.0, 1e-6)
    err = (a - e).abs().max().item() if e.numel() else 0.0
    assert math.isfinite(err) and err <= rtol * scale, f"{name}: max error {err:.3g} > {rtol:g} x {scale:.3g}"


def threshold_margin(means, quats, log_scales, opacity_logits, viewmat, K, width: int, height: int) -> float:
    """How far (relatively, in float64) the scene stays from the blend's discontinuities.

    Alpha is compared against 1/255 and 0.99 and transmittance against 1e-4; where a value sits
    within float32 rounding of such a threshold, a float32 kernel and any reference may honestly
    disagree about one contribution. Parity tests draw scenes whose margin is comfortably above
    that rounding, so a mismatch there means a bug, not an ambiguity.
    """
    from avatar.ops.rasterize_ref import ALPHA_MAX, ALPHA_MIN, TRANSMITTANCE_MIN, project_gaussians_ref

    d = [t.detach().double() for t in (means, quats, log_scales, opacity_logits, viewmat, K)]
    means2d, conics, depths, opacities, radii = project_gaussians_ref(*d, width, height)
    vis = torch.nonzero((radii > 0).any(-1)).flatten()
    if vis.numel() == 0:
        return math.inf
    vis = vis[torch.argsort(depths[vis], stable=True)]
    gy, gx = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                            torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    dx = gx.reshape(-1, 1) - means2d[vis, 0]
    dy = gy.reshape(-1, 1) - means2d[vis, 1]
    c = conics[vis]
    sigma = 0.5 * (c[:, 0] * dx * dx + c[:, 2] * dy * dy) + c[:, 1] * dx * dy
    raw = opacities[vis] * torch.exp(-sigma)
    margin = min((raw / ALPHA_MIN).log().abs().min().item(), (raw / ALPHA_MAX).log().abs().min().item())
    alpha = torch.where(raw >= ALPHA_MIN, raw.clamp(max=ALPHA_MAX), 0.0)
    T = torch.cumprod(1 - alpha, dim=1)
    stopped = torch.cumsum((T < TRANSMITTANCE_MIN).to(torch.int32), dim=1) > 1  # past the first stop
    relevant = (alpha > 0) & ~stopped
    if relevant.any():
        margin = min(margin, (T[relevant] / TRANSMITTANCE_MIN).log().abs().min().item())
    return margin


def well_conditioned_seed(make_scene, first_seed: int, min_margin: float = 3e-5, tries: int = 25) -> int:
    """First seed from `first_seed` whose scene (make_scene(seed) -> threshold_margin args) is
    at least `min_margin` away from every blend threshold (float32 rounding of an alpha is ~1e-6
    relative, so 3e-5 leaves a wide safety factor)."""
    for seed in range(first_seed, first_seed + tries):
        if threshold_margin(*make_scene(seed)) > min_margin:
            return seed
    raise AssertionError(f"no well-conditioned scene among seeds {first_seed}..{first_seed + tries - 1}")
