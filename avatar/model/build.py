"""Building a fresh avatar from an avatar folder's training frames (on the CPU: initialisation reads frames
and runs numpy; `build` of each kind moves the result to the training device)."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

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


def _views(data, count: int = 8) -> list[int]:
    """Training frames spread evenly over the training part."""
    ids = data.train_ids
    return ids[np.linspace(0, len(ids) - 1, min(count, len(ids))).round().astype(int)].tolist()


def torso_view(data) -> Tensor:
    """[5] fx/W, cx/W, fy/H, cy/H of the video camera and the column (fraction of W) between the torso halves:
    what turns the torso signal, measured in the image, into camera-space motion."""
    K, side = data.intrinsics.cpu(), float(data.resolution)
    return torch.stack([K[0, 0] / side, K[0, 2] / side, K[1, 1] / side, K[1, 2] / side,
                        torch.tensor(data.torso_split, device=CPU)])


def build_gaussian_avatar(data, cfg, seed: int = 0) -> GaussianAvatar:
    """A fresh avatar on the CPU from the training frames of `data` (an AvatarData) and `cfg` (ModelConfig)."""
    rng = np.random.default_rng(seed)
    views = _views(data)
    head = initial_head(data, cfg.head_gaussians, views, rng)
    torso = initial_torso(data, cfg.torso_gaussians, views[:3], rng)
    box_min, box_max = head_box(data.template.numpy())
    field = ExpressionField(cfg.hash_spec(), box_min, box_max, data.motion_dim, cfg.mlp_width)
    return GaussianAvatar(head, torso, field, _torso_field(torso), data.rest_pose.cpu(), torso_view(data))


def torso_box(data, head_depth: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Camera-space box (cm) that holds the torso: the pixels labelled torso (or head: the neck and the
    shoulders under long hair) in a few training frames, from 12 cm before the head's depth to 25 cm behind."""
    near, far = head_depth - 12.0, head_depth + 25.0
    xs, ys = [], []
    for i in _views(data):
        labels = data.frame(i).labels.cpu()
        v, u = torch.nonzero(labels == 1, as_tuple=True)
        if len(v):
            xs += [int(u.min()), int(u.max()) + 1]
            ys += [int(v.min()), int(v.max()) + 1]
    side = data.resolution
    if not xs:  # no torso in sight: the lower half of the frame
        xs, ys = [0, side], [side // 2, side]
    K = data.intrinsics.cpu()
    corners_u = (torch.tensor([min(xs), max(xs)], dtype=torch.float32, device=CPU) - K[0, 2]) / K[0, 0]
    corners_v = (torch.tensor([min(ys) - 0.1 * side, max(ys)], dtype=torch.float32, device=CPU) - K[1, 2]) / K[1, 1]
    x = torch.cat([corners_u * near, corners_u * far])
    y = torch.cat([corners_v * near, corners_v * far])
    return (float(x.min()) - 2, float(y.min()) - 2, near), (float(x.max()) + 2, float(y.max()) + 2, far)


def expression_warp(data, box_min, box_max):
    """The NeRF head's expression warp from the data's expression basis (on the CPU): the expression
    landmarks' mean positions in the head frame and each coefficient's displacement of them."""
    from avatar.model.nerf_fields import ExpressionWarp
    from avatar.motion.code import EXPRESSION_LANDMARKS

    basis = data.basis
    count = len(EXPRESSION_LANDMARKS)
    anchors = data.template[torch.from_numpy(EXPRESSION_LANDMARKS)] + torch.from_numpy(basis.mean).reshape(count, 3)
    modes = torch.from_numpy(basis.scale[:, None] * basis.components).reshape(basis.size, count, 3)
    return ExpressionWarp(anchors, modes, box_min, box_max)


def build_nerf_avatar(data, cfg, seed: int = 0):
    """A fresh NeRF avatar on the CPU: a head field over the head box, a torso field over the torso box."""
    from avatar.model.nerf_avatar import NerfAvatar
    from avatar.model.nerf_fields import HeadNerfField, TorsoNerfField, motion_groups
    from avatar.model.nerf_init import density_priors, teach_density

    torch.manual_seed(seed)  # the fields' linear layers draw from torch's global generator
    head_min, head_max = head_box(data.template.numpy())
    names = [str(n) for n in data.tracking["blendshape_names"]]
    head = HeadNerfField(cfg.hash_spec(), head_min, head_max, motion_groups(names, data.motion_dim), data.motion_dim,
                         cfg.mlp_width, expression_warp(data, head_min, head_max))
    rest = data.rest_pose.cpu()
    lo, hi = torso_box(data, float(rest[2, 3]))
    torso = TorsoNerfField(cfg.hash_spec(), lo, hi, torso_view(data), cfg.mlp_width)
    avatar = NerfAvatar(head, torso, cfg.nerf_grid, cfg.nerf_step_cm, rest)
    head_prior, torso_prior = density_priors(avatar, data)
    generator = torch.Generator().manual_seed(seed)
    mean = data.motion[torch.from_numpy(data.train_ids).to(data.motion.device)].mean(0).cpu()
    with torch.no_grad():
        condition = head.condition(mean)
    teach_density(lambda p: head(p, condition, True)[0], list(head.parameters()), avatar.head_grid, head_prior, generator)
    teach_density(lambda p: torso(p, None, None, True)[0], list(torso.parameters()), avatar.torso_grid, torso_prior, generator)
    with torch.no_grad():
        condition = head.condition(data.motion[int(data.train_ids[0])].cpu())
        avatar.head_grid.update(lambda p: head(p, condition, True)[0], generator)
        avatar.torso_grid.update(lambda p: torso(p, None, None, True)[0], generator)
    return avatar
