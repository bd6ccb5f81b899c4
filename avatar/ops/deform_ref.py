"""Pure-torch twin of the fused Gaussian deformation (`cuda_ext/csrc/deform.h`), plus the
quaternion helpers both sides use."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product of quaternions [..., 4] (w, x, y, z)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Rotation matrix [3, 3] -> unit quaternion [4] (w, x, y, z), differentiable.

    Picks the numerically safe branch (largest of the trace and the diagonal) by value, so the
    gradient flows through the formula that computed the result.
    """
    m = R
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = torch.sqrt(trace + 1.0) * 2
        q = torch.stack([s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = torch.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = torch.stack([(m[2, 1] - m[1, 2]) / s, s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = torch.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = torch.stack([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s])
    else:
        s = torch.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = torch.stack([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4])
    return q


def deform_gaussians_ref(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    log_scales: Tensor,  # [N, 3]
    d_means: Tensor,  # [N, 3]
    d_quats: Tensor,  # [N, 4]
    d_log_scales: Tensor,  # [N, 3]
    rotation: Tensor,  # [3, 3]
    translation: Tensor,  # [3]
) -> tuple[Tensor, Tensor, Tensor]:
    """means' = R (means + d_means) + t, quats' = normalize(q(R) * d_quats * quats),
    log_scales' = log_scales + d_log_scales."""
    q_pose = rotmat_to_quat(rotation)
    posed_means = (means + d_means) @ rotation.T + translation
    posed_quats = F.normalize(quat_multiply(q_pose.expand_as(quats), quat_multiply(d_quats, quats)), dim=-1,
                              eps=1e-12)
    return posed_means, posed_quats, log_scales + d_log_scales
