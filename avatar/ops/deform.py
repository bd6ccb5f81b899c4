"""Fused Gaussian deformation: the public op and its autograd glue.

Canonical Gaussians plus predicted offsets, posed by a rigid transform, in one pass over the
Gaussians (see `cuda_ext/csrc/deform.h` for the formulas). The torch twin is
:func:`avatar.ops.deform_ref.deform_gaussians_ref`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from avatar.ops import _backend, _extension
from avatar.ops._checks import check_finite, check_float, check_same_device, check_shape
from avatar.ops.deform_ref import deform_gaussians_ref, rotmat_to_quat

OP = "deform_gaussians"


class DeformedGaussians(NamedTuple):
    means: Tensor  # [N, 3] R (means + d_means) + t
    quats: Tensor  # [N, 4] unit, normalize(q(R) * d_quats * quats)
    log_scales: Tensor  # [N, 3] log_scales + d_log_scales


def _f32(t: Tensor) -> Tensor:
    return t.detach().to(torch.float32).contiguous()


class _DeformGaussians(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, log_scales, d_means, d_quats, d_log_scales, rotation, translation, pose_quat):
        inputs = [_f32(t) for t in (means, quats, log_scales, d_means, d_quats, d_log_scales)]
        pose = [_f32(t) for t in (rotation, translation, pose_quat)]
        ctx.save_for_backward(inputs[0], inputs[1], inputs[3], inputs[4], *pose)
        with torch.cuda.device_of(inputs[0]):
            return tuple(_extension.load().deform_fwd(*inputs, *pose, _extension.stream_handle(inputs[0])))

    @staticmethod
    def backward(ctx, v_means, v_quats, v_log_scales):
        means, quats, d_means, d_quats, rotation, translation, pose_quat = ctx.saved_tensors
        grads = [torch.zeros_like(ref) if g is None else _f32(g)
                 for g, ref in ((v_means, means), (v_quats, quats), (v_log_scales, d_means))]
        with torch.cuda.device_of(means):
            vm, vq, vs, vdm, vdq, vds, v_pose = _extension.load().deform_bwd(
                means, quats, d_means, d_quats, rotation, translation, pose_quat, *grads,
                _extension.stream_handle(means))
        v_pose = v_pose.to(rotation.device)
        return vm, vq, vs, vdm, vdq, vds, v_pose[:9].reshape(3, 3), v_pose[9:12], v_pose[12:16]


def deform_gaussians(
    means: Tensor,  # [N, 3] canonical centres
    quats: Tensor,  # [N, 4] canonical rotations (w, x, y, z), any norm
    log_scales: Tensor,  # [N, 3]
    d_means: Tensor | None = None,  # [N, 3] offsets in the canonical frame (None: zero)
    d_quats: Tensor | None = None,  # [N, 4] rotation offsets applied in the canonical frame, any norm
    #                                  (None: identity); predict identity + residual, not a residual
    d_log_scales: Tensor | None = None,  # [N, 3] (None: zero)
    rotation: Tensor | None = None,  # [3, 3] rigid pose rotation (None: identity); must be a rotation
    translation: Tensor | None = None,  # [3] rigid pose translation (None: zero)
    *,
    backend: str | None = None,  # auto | cpu | cuda | torch
) -> DeformedGaussians:
    """Offsets, then pose: means' = R (means + d_means) + t, quats' = normalize(q(R) d_quats quats),
    log_scales' = log_scales + d_log_scales. Differentiable in every tensor input, the pose
    included. Raises ValueError naming the argument on a wrong shape or a NaN/inf value."""
    check_shape(OP, "means", means, (None, 3))
    n = means.shape[0]
    dtype, device = means.dtype, means.device
    if d_means is None:
        d_means = torch.zeros(n, 3, dtype=dtype, device=device)
    if d_quats is None:
        d_quats = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype, device=device).expand(n, 4)
    if d_log_scales is None:
        d_log_scales = torch.zeros(n, 3, dtype=dtype, device=device)
    if rotation is None:
        rotation = torch.eye(3, dtype=dtype, device=device)
    if translation is None:
        translation = torch.zeros(3, dtype=dtype, device=device)
    tensors = {"means": means, "quats": quats, "log_scales": log_scales, "d_means": d_means, "d_quats": d_quats,
               "d_log_scales": d_log_scales, "rotation": rotation, "translation": translation}
    shapes = {"means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "d_means": (n, 3), "d_quats": (n, 4),
              "d_log_scales": (n, 3), "rotation": (3, 3), "translation": (3,)}
    for name, t in tensors.items():
        check_shape(OP, name, t, shapes[name])
        check_float(OP, name, t)
    check_same_device(OP, tensors)
    check_finite(OP, tensors)
    which = _backend.resolve(OP, backend, device, dtype)
    if which == "torch":
        return DeformedGaussians(*deform_gaussians_ref(*tensors.values()))
    pose_quat = rotmat_to_quat(rotation)
    return DeformedGaussians(*_DeformGaussians.apply(*tensors.values(), pose_quat))
