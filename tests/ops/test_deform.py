"""Fused Gaussian deformation: kernels vs torch twin, the twin vs finite differences and vs
rotation matrices, defaults and bad input."""
from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from avatar.ops import deform_gaussians
from avatar.ops.deform_ref import deform_gaussians_ref, rotmat_to_quat
from avatar.ops.rasterize_ref import quat_to_rotmat

from ops_helpers import assert_close_scaled

NAMES = ("means", "quats", "log_scales", "d_means", "d_quats", "d_log_scales", "rotation", "translation")


def _axis_angle(axis, angle, dtype=torch.float64):
    axis = torch.tensor(axis, dtype=dtype)
    axis = axis / axis.norm()
    K = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]], dtype=dtype)
    return torch.linalg.matrix_exp(K * angle)


# One rotation for each branch of rotmat_to_quat: positive trace, then x, y, z dominant.
ROTATIONS = {
    "small": _axis_angle([0.3, -0.5, 0.8], 0.4),
    "x_dominant": _axis_angle([1.0, 0.2, -0.1], 2.9),
    "y_dominant": _axis_angle([0.1, 1.0, 0.3], 3.0),
    "z_dominant": _axis_angle([-0.2, 0.1, 1.0], 2.8),
}


def _inputs(n, seed, rotation="small", dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.1
    quats = torch.randn(n, 4, generator=g)
    log_scales = torch.randn(n, 3, generator=g) - 4
    d_means = torch.randn(n, 3, generator=g) * 0.01
    d_quats = torch.tensor([1.0, 0, 0, 0]) + 0.2 * torch.randn(n, 4, generator=g)
    d_log_scales = torch.randn(n, 3, generator=g) * 0.1
    translation = torch.tensor([0.02, -0.05, 0.6])
    tensors = [means, quats, log_scales, d_means, d_quats, d_log_scales, ROTATIONS[rotation].float(), translation]
    return [t.to(dtype) for t in tensors]


@pytest.mark.parametrize("rotation", list(ROTATIONS))
@pytest.mark.parametrize("n", [0, 1, 257, 5000])
def test_kernel_matches_reference(kernels, n, rotation):
    inputs = _inputs(n, seed=n, rotation=rotation)
    leaves_k = [t.clone().requires_grad_(True) for t in inputs]
    leaves_t = [t.clone().requires_grad_(True) for t in inputs]
    out_k = deform_gaussians(*leaves_k, backend="cpu")
    out_t = deform_gaussians(*leaves_t, backend="torch")
    for a, b in zip(out_k, out_t):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=g) for t in out_k]
    sum((o * w).sum() for o, w in zip(out_k, weights)).backward()
    sum((o * w).sum() for o, w in zip(out_t, weights)).backward()
    for name, a, b in zip(NAMES, leaves_k, leaves_t):
        if n == 0:
            assert a.grad is None or a.grad.abs().sum() == 0
            continue
        assert_close_scaled(a.grad, b.grad, 1e-5, name)


@pytest.mark.parametrize("rotation", list(ROTATIONS))
def test_reference_gradcheck(rotation):
    inputs = [t.requires_grad_(True) for t in _inputs(4, seed=2, rotation=rotation, dtype=torch.float64)]
    assert gradcheck(deform_gaussians_ref, inputs, eps=1e-7, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("rotation", list(ROTATIONS))
def test_pose_quaternion_is_the_rotation(rotation):
    R = ROTATIONS[rotation]
    q = rotmat_to_quat(R)
    assert q.norm().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(quat_to_rotmat(q), R, atol=1e-12, rtol=0)


def test_posed_rotation_composes_matrices(backend):
    """Independent of quaternion algebra: R(quats') = R_pose R(d_quats) R(quats)."""
    means, quats, log_scales, d_means, d_quats, d_log_scales, R, t = _inputs(50, seed=3, rotation="y_dominant")
    out = deform_gaussians(means, quats, log_scales, d_means, d_quats, d_log_scales, R, t, backend=backend)
    expected = R @ quat_to_rotmat(d_quats) @ quat_to_rotmat(quats)
    torch.testing.assert_close(quat_to_rotmat(out.quats), expected, atol=2e-6, rtol=0)
    torch.testing.assert_close(out.means, (means + d_means) @ R.T + t, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.quats.norm(dim=-1), torch.ones(50), atol=1e-6, rtol=0)


def test_defaults_are_identity(backend):
    means, quats, log_scales = _inputs(20, seed=4)[:3]
    out = deform_gaussians(means, quats, log_scales, backend=backend)
    torch.testing.assert_close(out.means, means)
    torch.testing.assert_close(out.quats, quats / quats.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(out.log_scales, log_scales)


def test_non_contiguous_inputs(backend):
    inputs = _inputs(40, seed=5)
    strided = [torch.cat([t, t], -1)[..., t.shape[-1]:] if t.dim() == 2 else t for t in inputs[:6]] + inputs[6:]
    assert not strided[0].is_contiguous()
    a = deform_gaussians(*inputs, backend=backend)
    b = deform_gaussians(*strided, backend=backend)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=0, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_nan_is_rejected_by_name(name):
    args = dict(zip(NAMES, _inputs(5, seed=6)))
    args[name] = args[name].clone()
    args[name].view(-1)[0] = math.nan
    with pytest.raises(ValueError, match=f"`{name}` contains NaN"):
        deform_gaussians(**args)


def test_wrong_shape_is_rejected_by_name():
    args = dict(zip(NAMES, _inputs(5, seed=7)))
    args["d_quats"] = args["d_quats"][:, :3]
    with pytest.raises(ValueError, match="`d_quats` must have shape"):
        deform_gaussians(**args)
