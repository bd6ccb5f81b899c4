"""The Gaussian avatar: head Gaussians in the head frame, deformed by the motion code and posed by the
head pose; torso Gaussians in camera space following the head pose; both rasterised in one depth-sorted
pass over the background plate.

The renderer never sees audio: a frame is (motion code, head pose) in, image out.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from avatar.geometry import rotvec_to_matrix
from avatar.model.fields import ExpressionField, TorsoField, pose_features
from avatar.model.gaussians import GaussianSet
from avatar.ops import deform_gaussians, rasterize_gaussians

DEFORM_MIN_Z = -3.0  # centimetres, head frame: in front of the ears
DEFORM_MAX_Y = 9.0  # below the top of the head


@dataclass
class Posed:
    """Camera-space Gaussians of one frame, head first."""

    means: Tensor  # [N, 3]
    quats: Tensor  # [N, 4]
    log_scales: Tensor  # [N, 3]
    opacity_logits: Tensor  # [N]
    colors: Tensor  # [N, 4] RGB in [0, 1] and 1 for head Gaussians, 0 for torso ones
    head_count: int
    head_offsets: Tensor | None  # [Nh, 3] expression offsets of the head means (for regularising)


@dataclass
class Rendered:
    image: Tensor  # [H, W, 3] over the background
    alpha: Tensor  # [H, W] coverage by the avatar
    head: Tensor  # [H, W] coverage by the head alone
    means2d: Tensor  # [N, 2] (retain_grad() before backward to read densification statistics)
    radii: Tensor  # [N, 2]


def _matrix_to_rotvec(rotation: Tensor) -> Tensor:
    """[3, 3] -> [3]; differentiable away from 180 degrees, enough for head poses around the rest pose."""
    cos = ((rotation.trace() - 1) / 2).clamp(-1 + 1e-6, 1 - 1e-6)
    angle = torch.acos(cos)
    axis = torch.stack([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    return axis * (angle / (2 * torch.sin(angle)).clamp_min(1e-6))


class GaussianAvatar(nn.Module):
    def __init__(self, head: GaussianSet, torso: GaussianSet, expression: ExpressionField, torso_field: TorsoField,
                 rest_pose: Tensor):
        super().__init__()
        self.head = head
        self.torso = torso
        self.expression = expression
        self.torso_field = torso_field
        self.register_buffer("rest_pose", rest_pose.float().clone())  # [4, 4] mean head pose of the training frames

    def head_pose_features(self, head_pose: Tensor) -> Tensor:
        relative = head_pose[:3, :3] @ self.rest_pose[:3, :3].T
        return pose_features(_matrix_to_rotvec(relative), head_pose[:3, 3] - self.rest_pose[:3, 3])

    def deformable(self) -> Tensor:
        """[M] indices of the head Gaussians the expression field moves: the face and the front of the head.

        The back and top of the head do not change with expression; leaving them out halves the field's cost.
        """
        means = self.head.means.detach()
        return torch.nonzero((means[:, 2] > DEFORM_MIN_Z) & (means[:, 1] < DEFORM_MAX_Y), as_tuple=True)[0]

    def encode(self) -> tuple[Tensor, Tensor]:
        """(indices, position part of the field's first layer) of the deformable head Gaussians."""
        index = self.deformable()
        return index, self.expression.encode(self.head.means[index])

    def posed(self, motion: Tensor, head_pose: Tensor, deform: bool = True, move_torso: bool = True,
              encoded: tuple[Tensor, Tensor] | None = None) -> Posed:
        """Camera-space Gaussians for one frame. `encoded` may hold `encode()` computed once (valid while
        the head means do not change, e.g. when rendering a trained avatar)."""
        head = self.head
        offsets = {}
        if deform:
            index, features = encoded if encoded is not None else self.encode()
            moved = self.expression.offsets(features, motion)
            n = len(head)
            identity = torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(n, 4)
            offsets = {
                "d_means": moved["d_means"].new_zeros(n, 3).index_copy(0, index, moved["d_means"]),
                "d_quats": identity.clone().index_copy(0, index, moved["d_quats"]),
                "d_log_scales": moved["d_log_scales"].new_zeros(n, 3).index_copy(0, index, moved["d_log_scales"]),
                "d_colors": moved["d_colors"].new_zeros(n, 3).index_copy(0, index, moved["d_colors"]),
            }
        posed_head = deform_gaussians(head.means, head.quats, head.log_scales, offsets.get("d_means"), offsets.get("d_quats"),
                                      offsets.get("d_log_scales"), head_pose[:3, :3], head_pose[:3, 3])
        head_rgb = torch.sigmoid(head.colors + offsets["d_colors"]) if deform else torch.sigmoid(head.colors)
        torso_means = self.torso.means
        if move_torso and len(self.torso):
            torso_means = torso_means + self.torso_field(torso_means, self.head_pose_features(head_pose))
        ones, zeros = head_rgb.new_ones(len(head), 1), head_rgb.new_zeros(len(self.torso), 1)
        return Posed(
            means=torch.cat([posed_head.means, torso_means]),
            quats=torch.cat([posed_head.quats, self.torso.quats]),
            log_scales=torch.cat([posed_head.log_scales, self.torso.log_scales]),
            opacity_logits=torch.cat([head.opacity_logits, self.torso.opacity_logits]),
            colors=torch.cat([torch.cat([head_rgb, ones], 1), torch.cat([torch.sigmoid(self.torso.colors), zeros], 1)]),
            head_count=len(head),
            head_offsets=offsets.get("d_means"),
        )

    def render(self, posed: Posed, intrinsics: Tensor, width: int, height: int, background: Tensor,
               viewmat: Tensor | None = None) -> Rendered:
        """Rasterise posed Gaussians over `background` ([H, W, 3] image or [3] colour)."""
        view = torch.eye(4) if viewmat is None else viewmat
        out = rasterize_gaussians(posed.means, posed.quats, posed.log_scales, posed.opacity_logits, posed.colors,
                                  view, intrinsics, width, height)
        alpha = out.alpha
        image = out.image[..., :3] + (1 - alpha)[..., None] * background
        return Rendered(image=image, alpha=alpha, head=out.image[..., 3], means2d=out.means2d, radii=out.radii)


def orbit_viewmat(centre: Tensor, yaw_deg: float = 0.0, pitch_deg: float = 0.0, zoom: float = 1.0) -> Tensor:
    """Camera-from-world matrix of a camera orbiting `centre` [3] (camera space of the video) by yaw and
    pitch, moved towards it by `zoom` (2 halves the distance)."""
    angles = torch.tensor([pitch_deg, yaw_deg, 0.0]) * torch.pi / 180
    rx = rotvec_to_matrix(torch.tensor([angles[0], 0.0, 0.0]))
    ry = rotvec_to_matrix(torch.tensor([0.0, angles[1], 0.0]))
    rot = rx @ ry
    view = torch.eye(4)
    view[:3, :3] = rot
    distance = centre[2]
    view[:3, 3] = centre - rot @ centre + torch.tensor([0.0, 0.0, -distance * (1 - 1 / zoom)])
    return view
