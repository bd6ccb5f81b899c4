"""Differentiable Gaussian rasterisation: the public op and its autograd glue.

Two stages, each an autograd Function over the compiled CPU kernels with a pure-torch twin in
:mod:`avatar.ops.rasterize_ref`:

- :func:`project_gaussians`: EWA projection of 3D Gaussians (0.3 px^2 low-pass dilation,
  near/far culling, opacity-aware screen extents);
- :func:`blend_gaussians`: 16x16 tiles, per-tile depth order, front-to-back alpha blending that
  skips alpha < 1/255, clamps alpha at 0.99 and stops a pixel before its transmittance drops
  below 1e-4; the backward pass replays each tile from the back.

:func:`rasterize_gaussians` chains them (or, on CUDA, runs gsplat behind the same signature).
Camera conventions are gsplat's: OpenCV camera (x right, y down, z forward), camera-from-world
view matrix, pixel centres at (i + 0.5, j + 0.5).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from avatar.ops import _backend, _extension
from avatar.ops._checks import check_finite, check_float, check_same_device, check_shape
from avatar.ops.rasterize_ref import blend_gaussians_ref, project_gaussians_ref

OP = "rasterize_gaussians"


class RasterOutput(NamedTuple):
    image: Tensor  # [H, W, C] colours blended over the background
    alpha: Tensor  # [H, W] accumulated opacity
    depth: Tensor  # [H, W] expected depth (alpha-normalised; 0 where alpha is 0)
    radii: Tensor  # [N, 2] int32 screen half-extents in pixels (x, y); 0 for culled Gaussians
    means2d: Tensor  # [N, 2] projected centres; call .retain_grad() before backward to read the
    #                  2D-mean gradient that densification uses


def _f32(t: Tensor) -> Tensor:
    return t.detach().to(torch.float32).contiguous()


class _ProjectGaussians(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, log_scales, opacity_logits, viewmat, K, width, height, near_plane, far_plane,
                eps2d):
        ext = _extension.load()
        inputs = [_f32(t) for t in (means, quats, log_scales, opacity_logits, viewmat, K)]
        means2d, conics, depths, opacities, radii = ext.project_fwd(*inputs, width, height, near_plane, far_plane,
                                                                    eps2d)
        ctx.save_for_backward(*inputs, radii)
        ctx.settings = (width, height, near_plane, far_plane, eps2d)
        ctx.mark_non_differentiable(radii)
        return means2d, conics, depths, opacities, radii

    @staticmethod
    def backward(ctx, v_means2d, v_conics, v_depths, v_opacities, _v_radii):
        *inputs, radii = ctx.saved_tensors
        n = inputs[0].shape[0]
        zeros = inputs[0].new_zeros
        grads = [
            zeros(n, 2) if v_means2d is None else _f32(v_means2d),
            zeros(n, 3) if v_conics is None else _f32(v_conics),
            zeros(n) if v_depths is None else _f32(v_depths),
            zeros(n) if v_opacities is None else _f32(v_opacities),
        ]
        v_means, v_quats, v_log_scales, v_logits, v_viewmat, v_K = _extension.load().project_bwd(
            *inputs, *ctx.settings, radii, *grads)
        return v_means, v_quats, v_log_scales, v_logits, v_viewmat, v_K, None, None, None, None, None


class _BlendGaussians(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, depths, colors, radii, background, width, height):
        ext = _extension.load()
        inputs = [_f32(t) for t in (means2d, conics, opacities, depths, colors)]
        bg = None if background is None else _f32(background)
        # Rendering without gradients skips the per-pixel state and tile lists kept for backward.
        need_backward = any(ctx.needs_input_grad)
        image, alpha, depth, *replay = ext.blend_fwd(*inputs, radii.to(torch.int32).contiguous(), bg, width, height,
                                                     need_backward)
        if need_backward:
            ctx.save_for_backward(*inputs, depth, *replay, *([] if bg is None else [bg]))
        ctx.has_background = bg is not None
        return image, alpha, depth

    @staticmethod
    def backward(ctx, v_image, v_alpha, v_depth):
        saved = list(ctx.saved_tensors)
        bg = saved.pop() if ctx.has_background else None
        means2d, conics, opacities, depths, colors, depth, final_T, last, *bins = saved
        height, width = final_T.shape
        v_image = final_T.new_zeros(height, width, colors.shape[1]) if v_image is None else _f32(v_image)
        v_means2d, v_conics, v_opacities, v_depths, v_colors = _extension.load().blend_bwd(
            means2d, conics, opacities, depths, colors, bg, width, height, depth, final_T, last, *bins, v_image,
            None if v_alpha is None else _f32(v_alpha), None if v_depth is None else _f32(v_depth))
        v_bg = None
        if ctx.has_background and ctx.needs_input_grad[6]:
            v_bg = (final_T[..., None] * v_image).sum((0, 1))
        return v_means2d, v_conics, v_opacities, v_depths, v_colors, None, v_bg, None, None


def project_gaussians(
    means: Tensor,  # [N, 3] world-space centres
    quats: Tensor,  # [N, 4] rotations (w, x, y, z), any norm
    log_scales: Tensor,  # [N, 3] log of the standard deviations along the rotated axes
    opacity_logits: Tensor,  # [N] opacity = sigmoid(logit)
    viewmat: Tensor,  # [4, 4] camera-from-world
    K: Tensor,  # [3, 3] intrinsics
    width: int,
    height: int,
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    backend: str | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Projects Gaussians to the image: means2d [N, 2], conics [N, 3] (inverse 2D covariance
    a, b, c of [[a, b], [b, c]]), depths [N], opacities [N], radii [N, 2] int32 (0 = culled).
    Culled Gaussians have zeros in every output. Runs on the CPU kernels or the torch reference."""
    _validate_gaussians("project_gaussians", means, quats, log_scales, opacity_logits, None, viewmat, K, width,
                        height, None)
    which = _backend.resolve("project_gaussians", backend, means.device, means.dtype)
    args = (means, quats, log_scales, opacity_logits, viewmat, K, width, height, near_plane, far_plane, eps2d)
    if which == "cpu":
        return _ProjectGaussians.apply(*args)
    return project_gaussians_ref(*args)


def blend_gaussians(
    means2d: Tensor,  # [N, 2]
    conics: Tensor,  # [N, 3]
    opacities: Tensor,  # [N] in [0, 1]
    depths: Tensor,  # [N]
    colors: Tensor,  # [N, C]
    radii: Tensor,  # [N, 2] int, 0 = skip
    width: int,
    height: int,
    background: Tensor | None = None,  # [C]
    *,
    backend: str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Blends projected Gaussians: image [H, W, C] over the background, alpha [H, W] and the
    expected depth [H, W] (alpha-weighted mean depth; 0 where alpha is 0)."""
    op = "blend_gaussians"
    check_shape(op, "means2d", means2d, (None, 2))
    n = means2d.shape[0]
    shapes = {"conics": (n, 3), "opacities": (n,), "depths": (n,), "colors": (n, None), "radii": (n, 2)}
    tensors = {"means2d": means2d, "conics": conics, "opacities": opacities, "depths": depths, "colors": colors}
    for name, shape in shapes.items():
        check_shape(op, name, radii if name == "radii" else tensors[name], shape)
    if background is not None:
        check_shape(op, "background", background, (colors.shape[1],))
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ValueError(f"{op}: `width` and `height` must be positive ints, got {width!r} x {height!r}")
    check_same_device(op, {**tensors, "background": background})
    check_finite(op, {**tensors, "background": background})
    which = _backend.resolve(op, backend, means2d.device, means2d.dtype)
    if which == "cpu":
        return _BlendGaussians.apply(means2d, conics, opacities, depths, colors, radii, background, width, height)
    return blend_gaussians_ref(means2d, conics, opacities, depths, colors, radii, width, height, background)


def _validate_gaussians(op, means, quats, log_scales, opacity_logits, colors, viewmat, K, width, height,
                        background) -> None:
    check_shape(op, "means", means, (None, 3))
    n = means.shape[0]
    check_shape(op, "quats", quats, (n, 4))
    check_shape(op, "log_scales", log_scales, (n, 3))
    check_shape(op, "opacity_logits", opacity_logits, (n,))
    if colors is not None:
        check_shape(op, "colors", colors, (n, None))
        if colors.shape[1] < 1:
            raise ValueError(f"{op}: `colors` needs at least one channel, got shape {list(colors.shape)}")
    check_shape(op, "viewmat", viewmat, (4, 4))
    check_shape(op, "K", K, (3, 3))
    if background is not None:
        check_shape(op, "background", background, (colors.shape[1],))
    tensors = {"means": means, "quats": quats, "log_scales": log_scales, "opacity_logits": opacity_logits,
               "colors": colors, "viewmat": viewmat, "K": K, "background": background}
    for name, t in tensors.items():
        if t is not None:
            check_float(op, name, t)
    check_same_device(op, tensors)
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ValueError(f"{op}: `width` and `height` must be positive ints, got {width!r} x {height!r}")
    check_finite(op, tensors)


def rasterize_gaussians(
    means: Tensor,  # [N, 3] world-space centres
    quats: Tensor,  # [N, 4] rotations (w, x, y, z), any norm
    log_scales: Tensor,  # [N, 3] log standard deviations
    opacity_logits: Tensor,  # [N] opacity = sigmoid(logit)
    colors: Tensor,  # [N, C] any number of channels (RGB, features, ...)
    viewmat: Tensor,  # [4, 4] camera-from-world
    K: Tensor,  # [3, 3] pinhole intrinsics: fx, fy, cx, cy (skew is taken as zero)
    width: int,
    height: int,
    background: Tensor | None = None,  # [C], black when None
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    backend: str | None = None,  # auto | cpu | cuda | torch (see avatar.ops._backend)
) -> RasterOutput:
    """Renders Gaussians to an image, differentiably with respect to every tensor input
    (means, quats, log_scales, opacity_logits, colors, viewmat, K and background).

    Raises ValueError naming the argument when a shape is wrong or an input holds NaN/inf.
    """
    _validate_gaussians(OP, means, quats, log_scales, opacity_logits, colors, viewmat, K, width, height, background)
    which = _backend.resolve(OP, backend, means.device, means.dtype, via_gsplat=True)
    if which == "cuda":
        from avatar.ops.rasterize_gsplat import rasterize_gsplat

        return RasterOutput(*rasterize_gsplat(means, quats, log_scales, opacity_logits, colors, viewmat, K, width,
                                              height, background, near_plane, far_plane, eps2d))
    proj_args = (means, quats, log_scales, opacity_logits, viewmat, K, width, height, near_plane, far_plane, eps2d)
    if which == "cpu":
        means2d, conics, depths, opacities, radii = _ProjectGaussians.apply(*proj_args)
        image, alpha, depth = _BlendGaussians.apply(means2d, conics, opacities, depths, colors, radii, background,
                                                    width, height)
    else:
        means2d, conics, depths, opacities, radii = project_gaussians_ref(*proj_args)
        image, alpha, depth = blend_gaussians_ref(means2d, conics, opacities, depths, colors, radii, width, height,
                                                  background)
    return RasterOutput(image, alpha, depth, radii, means2d)
