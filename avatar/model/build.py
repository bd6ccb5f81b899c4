"""Building a Gaussian avatar: from an avatar folder's training data, or back from saved tensors."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from avatar.config import ModelConfig
from avatar.model.avatar import GaussianAvatar
from avatar.model.fields import ExpressionField, TorsoField
from avatar.model.gaussians import ATTRIBUTES, GaussianSet
from avatar.model.init import SHELL_CENTRE, SHELL_RADII, initial_head, initial_torso
from avatar.ops import HashTriplaneSpec


def hash_spec(cfg: ModelConfig) -> HashTriplaneSpec:
    return HashTriplaneSpec(levels=cfg.hash_levels, features_per_level=cfg.hash_features,
                            log2_table_size=cfg.hash_log2_table, base_resolution=cfg.hash_base_resolution,
                            growth_factor=cfg.hash_growth)


def head_box(template: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Box (head frame, cm) the expression field covers: the template and the hair shell, with room to move."""
    lo = np.minimum(template.min(0), SHELL_CENTRE - 1.2 * SHELL_RADII) - 1.0
    hi = np.maximum(template.max(0), SHELL_CENTRE + 1.2 * SHELL_RADII) + 1.0
    return tuple(lo.tolist()), tuple(hi.tolist())


def mean_pose(poses: Tensor) -> Tensor:
    """[T, 4, 4] -> [4, 4]: chordal mean rotation, mean translation."""
    u, _, vt = torch.linalg.svd(poses[:, :3, :3].double().mean(0))
    rot = u @ torch.diag(torch.tensor([1.0, 1.0, float(torch.det(u @ vt).sign())], dtype=torch.float64)) @ vt
    out = torch.eye(4)
    out[:3, :3] = rot.float()
    out[:3, 3] = poses[:, :3, 3].mean(0)
    return out


def _torso_field(torso: GaussianSet) -> TorsoField:
    if len(torso):
        centre = torso.means.detach().mean(0)
        extent = float((torso.means.detach().max(0).values - torso.means.detach().min(0).values).max().clamp_min(1.0))
    else:
        centre, extent = torch.zeros(3), 1.0
    return TorsoField(centre, extent)


def build_avatar(data, cfg: ModelConfig, seed: int = 0) -> GaussianAvatar:
    """A fresh avatar initialised from the training frames of `data` (an AvatarData)."""
    rng = np.random.default_rng(seed)
    views = data.train_ids[np.linspace(0, len(data.train_ids) - 1, min(8, len(data.train_ids))).round().astype(int)].tolist()
    head = initial_head(data, cfg.head_gaussians, views, rng)
    torso = initial_torso(data, cfg.torso_gaussians, views[:3], rng)
    box_min, box_max = head_box(data.template.numpy())
    field = ExpressionField(hash_spec(cfg), box_min, box_max, data.motion_dim, cfg.mlp_width)
    return GaussianAvatar(head, torso, field, _torso_field(torso), mean_pose(data.head_pose[data.train_ids]))


def avatar_from_tensors(tensors: dict[str, Tensor], cfg: ModelConfig, motion_dim: int, box: tuple) -> GaussianAvatar:
    """An avatar with the shapes of saved tensors (prefix "model."), loaded with them."""
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    sets = {}
    for part in ("head", "torso"):
        sets[part] = GaussianSet.empty()
        sets[part].resize_like({name: tuple(state[f"{part}.{name}"].shape) for name in ATTRIBUTES})
    torso_field = TorsoField(state["torso_field.centre"], 1.0)
    avatar = GaussianAvatar(sets["head"], sets["torso"], ExpressionField(hash_spec(cfg), box[0], box[1], motion_dim, cfg.mlp_width),
                            torso_field, state["rest_pose"])
    avatar.load_state_dict(state)
    return avatar
