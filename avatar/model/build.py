"""Building a fresh Gaussian avatar from an avatar folder's training frames (on the CPU: initialisation
reads frames and runs numpy; `GaussianAvatar.build` moves the result to the training device)."""
from __future__ import annotations

import numpy as np
import torch

from avatar.model.fields import ExpressionField, TorsoField
from avatar.model.gaussian_avatar import GaussianAvatar
from avatar.model.gaussians import GaussianSet
from avatar.model.init import SHELL_CENTRE, SHELL_RADII, initial_head, initial_torso

CPU = torch.device("cpu")


def head_box(template: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Box (head frame, cm) the expression field covers: the template and the hair shell, with room to move."""
    lo = np.minimum(template.min(0), SHELL_CENTRE - 1.2 * SHELL_RADII) - 1.0
    hi = np.maximum(template.max(0), SHELL_CENTRE + 1.2 * SHELL_RADII) + 1.0
    return tuple(lo.tolist()), tuple(hi.tolist())


def _torso_field(torso: GaussianSet) -> TorsoField:
    if len(torso):
        means = torso.means.detach()
        centre = means.mean(0)
        extent = float((means.max(0).values - means.min(0).values).max().clamp_min(1.0))
    else:
        centre, extent = torch.zeros(3, device=torso.means.device), 1.0
    return TorsoField(centre, extent)


def build_gaussian_avatar(data, cfg, seed: int = 0) -> GaussianAvatar:
    """A fresh avatar on the CPU from the training frames of `data` (an AvatarData) and `cfg` (ModelConfig)."""
    rng = np.random.default_rng(seed)
    views = data.train_ids[np.linspace(0, len(data.train_ids) - 1, min(8, len(data.train_ids))).round().astype(int)].tolist()
    head = initial_head(data, cfg.head_gaussians, views, rng)
    torso = initial_torso(data, cfg.torso_gaussians, views[:3], rng)
    box_min, box_max = head_box(data.template.numpy())
    field = ExpressionField(cfg.hash_spec(), box_min, box_max, data.motion_dim, cfg.mlp_width)
    K, side = data.intrinsics.cpu(), float(data.resolution)
    torso_view = torch.stack([K[0, 0] / side, K[0, 2] / side, K[1, 1] / side, K[1, 2] / side,
                              torch.tensor(data.torso_split, device=CPU)])
    return GaussianAvatar(head, torso, field, _torso_field(torso), data.rest_pose.cpu(), torso_view)
