"""Neural fields that move Gaussians: the head's expression deformation and the torso's pose follow.

`ExpressionField`: hash-grid triplane features of a canonical head position, and the motion code,
through a small MLP to offsets of position, rotation, scale and colour. Its first layer is split into a
position part and a motion part, so a renderer can compute the position part once per Gaussian and
pay only for the rest each frame.

`TorsoField`: the torso Gaussians' offsets, linear in the head pose (so the neck follows the head) and the
torso signal (how the shoulders moved), with weights from a low-frequency encoding of their camera-space
position.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avatar.ops import HashTriplaneSpec, hash_triplane_encode

OFFSETS = 13  # 3 position, 4 rotation (quaternion residual), 3 log-scale, 3 colour
TORSO_SIGNAL = 4  # (dx, dy) of the left and right torso halves, fractions of the frame side
TORSO_INPUTS = 1 + 6 + TORSO_SIGNAL  # constant, head pose features, torso signal


class ExpressionField(nn.Module):
    def __init__(self, spec: HashTriplaneSpec, box_min: tuple[float, float, float], box_max: tuple[float, float, float],
                 motion_dim: int, width: int = 64):
        super().__init__()
        self.spec = spec
        self.box_min, self.box_max = tuple(map(float, box_min)), tuple(map(float, box_max))
        self.resolutions = spec.resolutions()
        self.tables = nn.Parameter(spec.init_tables(generator=torch.Generator().manual_seed(0)))
        self.position_in = nn.Linear(spec.out_features, width)
        self.motion_in = nn.Linear(motion_dim, width, bias=False)
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, OFFSETS)
        nn.init.zeros_(self.out.weight)  # start from the undeformed head
        nn.init.zeros_(self.out.bias)

    def encode(self, means: Tensor) -> Tensor:
        """[N, 3] canonical positions -> [N, width] position part of the first layer."""
        features = hash_triplane_encode(means, self.tables, self.resolutions, self.box_min, self.box_max)
        return self.position_in(features)

    def offsets(self, encoded: Tensor, motion: Tensor) -> dict[str, Tensor]:
        """encoded [N, width] (from `encode`), motion [D] -> offsets of every Gaussian."""
        h = F.relu(encoded + self.motion_in(motion), inplace=True)  # in place: fresh tensors, fewer page faults
        out = self.out(F.relu(self.hidden(h), inplace=True))
        one = torch.zeros_like(out[:, :4])
        one[:, 0] = 1.0
        return {
            "d_means": 0.5 * out[:, 0:3],  # centimetres
            "d_quats": one + 0.1 * out[:, 3:7],
            "d_log_scales": 0.1 * out[:, 7:10],
            "d_colors": 0.2 * out[:, 10:13],
        }


def pose_features(rotvec: Tensor, translation: Tensor) -> Tensor:
    """[6] head pose relative to its rest pose: rotation vector (radians) and translation (decimetres)."""
    return torch.cat([rotvec, translation / 10.0])


def _matrix_to_rotvec(rotation: Tensor) -> Tensor:
    """[3, 3] -> [3]; differentiable away from 180 degrees, enough for head poses around the rest pose."""
    cos = ((rotation.trace() - 1) / 2).clamp(-1 + 1e-6, 1 - 1e-6)
    angle = torch.acos(cos)
    axis = torch.stack([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    return axis * (angle / (2 * torch.sin(angle)).clamp_min(1e-6))


def head_pose_features(head_pose: Tensor, rest_pose: Tensor) -> Tensor:
    """[6] `pose_features` of head_pose [4, 4] relative to rest_pose [4, 4] (both camera-from-head)."""
    relative = head_pose[:3, :3] @ rest_pose[:3, :3].T
    return pose_features(_matrix_to_rotvec(relative), head_pose[:3, 3] - rest_pose[:3, 3])


def torso_image_shift(points: Tensor, torso: Tensor, torso_view: Tensor) -> Tensor:
    """[N, 3] camera-space motion at `points` [N, 3] that the torso signal [4] (image shifts of the left and
    right torso halves, fractions of the frame) describes: each point moves with the half it projects into,
    blended across the split, at its own depth. torso_view [5]: fx/W, cx/W, fy/H, cy/H of the video camera
    and the column (fraction of W) between the torso halves."""
    fx_w, cx_w, fy_h, cy_h, split = torso_view.unbind()
    x, y, z = points.unbind(1)
    u = x / z * fx_w + cx_w  # where it projects, fraction of the frame width
    right = torch.sigmoid((u - split) / 0.05)[:, None]
    shift = (1 - right) * torso[:2] + right * torso[2:]
    return torch.stack([shift[:, 0] * z / fx_w, shift[:, 1] * z / fy_h, torch.zeros_like(z)], 1)


class TorsoField(nn.Module):
    """Offsets of the torso Gaussians that are linear in the head pose and the torso signal, with weights that
    vary smoothly over the torso: offset(x) = B(x) [1, pose, signal]. Linear, because held-out and generated
    frames move the shoulders further than the training frames did (clip 04's held-out tail shifts them twice
    as far), and a field that is linear in its inputs carries the trained motion on; an MLP of the signal
    bends back outside what it saw. B depends on the position alone, so a renderer evaluates it once."""

    def __init__(self, centre: Tensor, extent: float, width: int = 32, frequencies: int = 2):
        super().__init__()
        self.register_buffer("centre", centre.float().reshape(3))
        self.register_buffer("extent", torch.tensor(float(extent), device=self.centre.device))
        self.frequencies = frequencies
        self.layers = nn.Sequential(nn.Linear(3 + 6 * frequencies, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                    nn.Linear(width, 3 * TORSO_INPUTS))
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    def basis(self, means: Tensor) -> Tensor:
        """means [N, 3] camera space -> [N, 3, TORSO_INPUTS] the offset per unit of each input (centimetres)."""
        x = (means - self.centre) / self.extent
        bands = [x] + [f(x * (2.0**k) * torch.pi) for k in range(self.frequencies) for f in (torch.sin, torch.cos)]
        return 2.0 * self.layers(torch.cat(bands, 1)).view(len(means), 3, TORSO_INPUTS)

    def forward(self, means: Tensor, pose: Tensor, torso: Tensor, basis: Tensor | None = None) -> Tensor:
        """means [N, 3] camera space, pose [6] from `pose_features`, torso [4] signal (fractions of the frame)
        -> [N, 3] offsets (centimetres); `basis` is `self.basis(means)` when the caller has it."""
        inputs = torch.cat([pose.new_ones(1), pose, 20.0 * torso])
        return (self.basis(means) if basis is None else basis) @ inputs
