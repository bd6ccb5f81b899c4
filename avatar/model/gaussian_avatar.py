"""The Gaussian avatar (`model.kind: gaussian`): head Gaussians in the head frame, deformed by the motion
code and posed by the head pose; torso Gaussians in camera space following the head pose; both rasterised
in one depth-sorted pass over the background plate.

The renderer never sees audio: a frame is (motion code, head pose, camera) in, image out.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from avatar.camera import Camera
from avatar.model.fields import ExpressionField, TorsoField, head_pose_features, torso_image_shift
from avatar.model.gaussians import ATTRIBUTES, GaussianSet
from avatar.model.interface import PARTS, AvatarModel, Rendered, TrainingStrategy
from avatar.ops import deform_gaussians, rasterize_gaussians

DEFORM_MIN_Z = -3.0  # centimetres, head frame: in front of the ears
DEFORM_MAX_Y = 9.0  # below the top of the head
CPU = torch.device("cpu")
PRUNE_VIEWS = 64  # training frames, evenly spaced, that decide which Gaussians are never seen


class Prepared(NamedTuple):
    """What a trained avatar's frames share: valid while the Gaussians' positions do not change."""

    index: Tensor  # [M] the deformable head Gaussians
    features: Tensor  # [M, width] position part of the expression field's first layer
    torso_basis: Tensor  # [Nt, 3, TORSO_INPUTS] the torso field's weights at the torso Gaussians


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

    def subset(self, parts: frozenset[str]) -> "Posed":
        """Only the Gaussians of `parts` ("head", "torso")."""
        keep = slice(0 if "head" in parts else self.head_count, None if "torso" in parts else self.head_count)
        return Posed(self.means[keep], self.quats[keep], self.log_scales[keep], self.opacity_logits[keep],
                     self.colors[keep], self.head_count if "head" in parts else 0,
                     self.head_offsets if "head" in parts else None)


@dataclass
class GaussianRendered(Rendered):
    means2d: Tensor  # [N, 2] projected centres (the densification strategy reads their gradient)
    radii: Tensor  # [N, 2]
    head_offsets: Tensor | None  # [Nh, 3] expression offsets of the head means


class GaussianAvatar(AvatarModel):
    kind = "gaussian"
    stage_names = ("head warm-up", "deformation", "torso", "joint")

    def __init__(self, head: GaussianSet, torso: GaussianSet, expression: ExpressionField, torso_field: TorsoField,
                 rest_pose: Tensor, torso_view: Tensor):
        super().__init__()
        self.head = head
        self.torso = torso
        self.expression = expression
        self.torso_field = torso_field
        self.register_buffer("rest_pose", rest_pose.float().clone())  # [4, 4] mean head pose of the training frames
        # [5] fx/W, cx/W, fy/H, cy/H of the video camera and the column (fraction of W) between the torso halves:
        # what turns the torso signal, measured in the image, into camera-space motion of the torso Gaussians
        self.register_buffer("torso_view", torso_view.float().clone())

    # -- construction and storage ------------------------------------------------------------------

    @classmethod
    def build(cls, data, cfg, seed: int, device: torch.device) -> "GaussianAvatar":
        from avatar.model.build import build_gaussian_avatar

        return build_gaussian_avatar(data, cfg, seed).to(device)

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], meta: dict, cfg, device: torch.device) -> "GaussianAvatar":
        sets = {}
        for part in ("head", "torso"):
            sets[part] = GaussianSet.empty(CPU)
            sets[part].resize_like({name: tuple(tensors[f"{part}.{name}"].shape) for name in ATTRIBUTES})
        field = ExpressionField(cfg.hash_spec(), meta["box_min"], meta["box_max"], int(meta["motion_dim"]), cfg.mlp_width)
        avatar = cls(sets["head"], sets["torso"], field, TorsoField(tensors["torso_field.centre"], 1.0), tensors["rest_pose"],
                     tensors["torso_view"])
        avatar.load_state_dict(tensors)
        return avatar.to(device)

    def meta(self) -> dict:
        return {"motion_dim": self.expression.motion_in.in_features, "box_min": list(self.expression.box_min),
                "box_max": list(self.expression.box_max)}

    def sizes(self) -> dict[str, int]:
        return {"head": len(self.head), "torso": len(self.torso)}

    # -- rendering ---------------------------------------------------------------------------------

    def head_pose_features(self, head_pose: Tensor) -> Tensor:
        return head_pose_features(head_pose, self.rest_pose)

    def deformable(self) -> Tensor:
        """[M] indices of the head Gaussians the expression field moves: the face and the front of the head.

        The back and top of the head do not change with expression; leaving them out halves the field's cost.
        """
        means = self.head.means.detach()
        return torch.nonzero((means[:, 2] > DEFORM_MIN_Z) & (means[:, 1] < DEFORM_MAX_Y), as_tuple=True)[0]

    def prepare(self) -> Prepared:
        index = self.deformable()
        return Prepared(index, self.expression.encode(self.head.means[index]), self.torso_field.basis(self.torso.means))

    def torso_shift(self, means: Tensor, torso: Tensor) -> Tensor:
        return torso_image_shift(means, torso, self.torso_view)

    def posed(self, motion: Tensor, head_pose: Tensor, deform: bool = True, move_torso: bool = True,
              prepared: Prepared | None = None, torso: Tensor | None = None) -> Posed:
        """Camera-space Gaussians for one frame."""
        head = self.head
        offsets = {}
        if deform:
            if prepared is None:
                index = self.deformable()
                features = self.expression.encode(head.means[index])
            else:
                index, features = prepared.index, prepared.features
            moved = self.expression.offsets(features, motion)
            n = len(head)
            identity = torch.tensor([1.0, 0.0, 0.0, 0.0], device=head.means.device).expand(n, 4)
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
            signal = torso if torso is not None else torso_means.new_zeros(4)
            torso_means = (torso_means + self.torso_shift(torso_means.detach(), signal)
                           + self.torso_field(torso_means, self.head_pose_features(head_pose), signal,
                                              None if prepared is None else prepared.torso_basis))
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

    def splats(self, motion: Tensor, head_pose: Tensor) -> Posed:
        return self.posed(motion, head_pose)

    def render(self, motion: Tensor, head_pose: Tensor, camera: Camera, background: Tensor, *,
               torso: Tensor | None = None, stage: int | None = None,
               prepared: Prepared | None = None, parts: frozenset[str] = PARTS) -> GaussianRendered:
        """Stages: 0 the static head (and still torso), 1 adds the expression field, 2 and on the torso's motion."""
        deform, move_torso = stage is None or stage >= 1, stage is None or stage >= 2
        start = time.perf_counter()
        posed = self.posed(motion, head_pose, deform, move_torso, prepared if deform else None, torso)
        if parts != PARTS:
            posed = posed.subset(parts)
        # The fourth channel (head coverage) is for training's losses; a frame rendered without gradients skips it.
        training = torch.is_grad_enabled()
        colors = posed.colors if training else posed.colors[:, :3].contiguous()
        posed_at = time.perf_counter()
        out = rasterize_gaussians(posed.means, posed.quats, posed.log_scales, posed.opacity_logits, colors,
                                  camera.viewmat, camera.intrinsics, camera.width, camera.height)
        image = torch.addcmul(out.image[..., :3], 1 - out.alpha[..., None], background)
        timings = {} if training else {"deform": 1e3 * (posed_at - start), "rasterise": 1e3 * (time.perf_counter() - posed_at)}
        return GaussianRendered(image=image, alpha=out.alpha, head=out.image[..., 3] if training else None,
                                means2d=out.means2d, radii=out.radii, head_offsets=posed.head_offsets, timings=timings)

    # -- training ----------------------------------------------------------------------------------

    def param_groups(self, cfg) -> list[dict]:
        lrs = {"means": cfg.lr_means, "quats": cfg.lr_quats, "log_scales": cfg.lr_scales,
               "opacity_logits": cfg.lr_opacity, "colors": cfg.lr_colors}
        groups = self.head.param_groups(lrs, "head") + self.torso.param_groups(lrs, "torso")
        for group in groups:
            group["decay"] = "exponential" if group["name"].endswith(".means") else None
        field = self.expression
        return groups + [
            {"params": [field.tables], "lr": 5 * cfg.lr_field, "name": "expression.tables", "decay": "second_half"},
            {"params": [p for n, p in field.named_parameters() if n != "tables"], "lr": cfg.lr_field,
             "name": "expression.mlp", "decay": "second_half"},
            {"params": list(self.torso_field.parameters()), "lr": cfg.lr_field, "name": "torso_field", "decay": "second_half"},
        ]

    def strategy(self, train_cfg, model_cfg, data) -> TrainingStrategy:
        from avatar.model.densify import DensifyStrategy

        train = data.train_ids  # numpy frame indices
        ids = [int(train[k]) for k in np.linspace(0, len(train) - 1, min(PRUNE_VIEWS, len(train))).round().astype(int)]

        def weights() -> Tensor:
            per_view = [self.contributions(data.motion[i], data.head_pose[i], data.camera, data.torso[i]) for i in ids]
            return torch.stack(per_view).amax(0) * (512**2 / (data.camera.width * data.camera.height))

        return DensifyStrategy({"head": self.head, "torso": self.torso}, train_cfg, model_cfg.max_gaussians, weights)

    def contributions(self, motion: Tensor, head_pose: Tensor, camera: Camera, torso: Tensor | None = None) -> Tensor:
        """[N] what each Gaussian (head first, then torso) adds to one frame: its blending weight (opacity times
        transmittance) summed over the pixels, in pixels. It is the gradient of the rendered coverage with
        respect to a constant one-channel colour."""
        with torch.no_grad():
            posed = self.posed(motion, head_pose, torso=torso)
        ones = posed.means.new_ones(len(posed.means), 1, requires_grad=True)
        out = rasterize_gaussians(posed.means, posed.quats, posed.log_scales, posed.opacity_logits, ones,
                                  camera.viewmat, camera.intrinsics, camera.width, camera.height)
        (weight,) = torch.autograd.grad(out.image.sum(), ones)
        return weight[:, 0]

    def losses(self, rendered: GaussianRendered, cfg) -> dict[str, tuple[Tensor, float]]:
        if rendered.head_offsets is None or cfg.offset_weight <= 0:
            return {}
        return {"offsets": ((rendered.head_offsets**2).sum(1).mean(), cfg.offset_weight)}
