"""Fitting a Gaussian avatar to one person's frames: the task the generic trainer runs.

Stages (fractions of the steps from `train.stages`): a static head warm-up, then the expression field
(deformation), then the torso's pose-driven motion, then everything together with per-frame head-pose
corrections. Losses: L1 + D-SSIM on the full frame over the background plate, extra L1 around the
lips, coverage against the person and head masks, and a small penalty on expression offsets.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from avatar.config import ModelConfig, TrainConfig
from avatar.geometry import rotvec_to_matrix
from avatar.model.avatar import GaussianAvatar
from avatar.model.gaussians import GaussianSet
from avatar.train.checkpoint import load_optimizer_tensors, optimizer_tensors, restore_rng, rng_tensors
from avatar.train.data import AvatarData
from avatar.train.densify import Densifier
from avatar.train.losses import avatar_losses, psnr

STAGES = ("head warm-up", "deformation", "torso", "joint")
HEAD_EXTENT_CM = 22.0
TORSO_EXTENT_CM = 45.0


class AvatarFit:
    stage_names = STAGES

    def __init__(self, data: AvatarData, avatar: GaussianAvatar, cfg: TrainConfig, model_cfg: ModelConfig):
        self.data, self.avatar, self.cfg, self.model_cfg = data, avatar, cfg, model_cfg
        if len(cfg.stages) != len(STAGES) or min(cfg.stages) < 0 or sum(cfg.stages) <= 0:
            raise ValueError(f"train.stages needs {len(STAGES)} non-negative fractions")
        fractions = np.array(cfg.stages, dtype=np.float64) / sum(cfg.stages)
        self.stage_ends = np.round(np.cumsum(fractions) * cfg.iterations).astype(int)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.pose_delta = torch.zeros(data.count, 6)
        self.pose_moments = torch.zeros(2, data.count, 6)
        self.pose_steps = torch.zeros(data.count)
        self.densifier = Densifier({"head": avatar.head, "torso": avatar.torso}, {"head": HEAD_EXTENT_CM, "torso": TORSO_EXTENT_CM},
                                   cfg.densify_grad, model_cfg.max_gaussians)
        self.optimizer = self._make_optimizer()
        self.last_psnr = 0.0

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        lrs = {"means": cfg.lr_means, "quats": cfg.lr_quats, "log_scales": cfg.lr_scales,
               "opacity_logits": cfg.lr_opacity, "colors": cfg.lr_colors}
        field = self.avatar.expression
        groups = self.avatar.head.param_groups(lrs, "head") + self.avatar.torso.param_groups(lrs, "torso") + [
            {"params": [field.tables], "lr": 5 * cfg.lr_field, "name": "expression.tables"},
            {"params": [p for n, p in field.named_parameters() if n != "tables"], "lr": cfg.lr_field, "name": "expression.mlp"},
            {"params": list(self.avatar.torso_field.parameters()), "lr": cfg.lr_field, "name": "torso_field"},
        ]
        for group in groups:
            group["base_lr"] = group["lr"]
        return torch.optim.Adam(groups, eps=1e-15, fused=True)

    def stage_at(self, step: int) -> int:
        return int(min(np.searchsorted(self.stage_ends, step, side="right"), len(STAGES) - 1))

    def _schedule(self, step: int) -> None:
        progress = step / max(self.cfg.iterations, 1)
        for group in self.optimizer.param_groups:
            if group["name"].endswith(".means"):
                group["lr"] = group["base_lr"] * math.exp(progress * math.log(0.1))
            elif group["name"].startswith(("expression", "torso_field")):  # tenfold decay over the second half
                group["lr"] = group["base_lr"] * 0.1 ** max(0.0, 2 * progress - 1)

    def _pose(self, index: int, pose: Tensor, refine: bool) -> tuple[Tensor, Tensor | None]:
        if not refine:
            return pose, None
        delta = self.pose_delta[index].clone().requires_grad_(True)
        corrected = pose.clone()
        corrected[:3, :3] = rotvec_to_matrix(delta[:3]) @ pose[:3, :3]
        corrected[:3, 3] = pose[:3, 3] + delta[3:]
        return corrected, delta

    @torch.no_grad()
    def _step_pose(self, index: int, grad: Tensor, lr: float = 2e-4, beta1: float = 0.9, beta2: float = 0.999) -> None:
        """Adam on the one row of pose corrections this step used (the others keep their moments)."""
        m, v = self.pose_moments[0, index], self.pose_moments[1, index]
        self.pose_steps[index] += 1
        t = float(self.pose_steps[index])
        grad = grad + 1e-2 * self.pose_delta[index]  # keep corrections small
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = lr * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + 1e-12)
        self.pose_delta[index] -= step

    def render_frame(self, index: int, stage: int = len(STAGES) - 1, refine: bool = False):
        batch = self.data.frame(index)
        pose, delta = self._pose(index, batch.head_pose, refine)
        posed = self.avatar.posed(batch.motion, pose, deform=stage >= 1, move_torso=stage >= 2)
        res = self.data.resolution
        return batch, posed, delta, self.avatar.render(posed, self.data.intrinsics, res, res, self.data.background)

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        stage = self.stage_at(step)
        index = int(self.data.train_ids[torch.randint(len(self.data.train_ids), (1,), generator=self.generator)])
        refine = cfg.refine_poses and stage == 3
        batch, posed, delta, rendered = self.render_frame(index, stage, refine)
        rendered.means2d.retain_grad()
        offsets = posed.head_offsets
        losses = avatar_losses(rendered, batch, cfg.ssim_weight, cfg.mouth_weight, cfg.mask_weight, offsets, cfg.offset_weight)
        self._schedule(step)
        losses["total"].backward()
        res = self.data.resolution
        self.densifier.accumulate(rendered.means2d, rendered.radii, res, res)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if delta is not None and delta.grad is not None:
            self._step_pose(index, delta.grad)
        if (step + 1) % cfg.densify_every == 0 and step < cfg.densify_until * cfg.iterations and step > 0:
            self.densifier.step(self.optimizer, self.generator)
        with torch.no_grad():
            self.last_psnr = float(psnr(rendered.image, batch.image))
        scalars = {k: float(v.detach()) for k, v in losses.items() if k != "total"}
        return {"loss": float(losses["total"].detach()), "psnr": self.last_psnr,
                "gaussians": float(len(self.avatar.head) + len(self.avatar.torso)), **scalars}

    @torch.no_grad()
    def images(self) -> dict[str, np.ndarray]:
        out = {}
        for name, ids in (("train", self.data.train_ids), ("test", self.data.test_ids)):
            if len(ids):
                batch, _, _, rendered = self.render_frame(int(ids[len(ids) // 2]))
                pair = torch.cat([rendered.image.clamp(0, 1), batch.image], 1)
                out[f"render/{name}"] = (pair.numpy() * 255).astype(np.uint8)
        return out

    def state(self) -> tuple[dict[str, Tensor], dict]:
        tensors = {f"model.{k}": v for k, v in self.avatar.state_dict().items()}
        tensors.update(optimizer_tensors(self.optimizer))
        tensors.update(rng_tensors(self.generator))
        tensors.update({"pose/delta": self.pose_delta, "pose/moments": self.pose_moments, "pose/steps": self.pose_steps})
        tensors.update({f"basis/{k}": torch.from_numpy(v) for k, v in self.data.basis.arrays().items()})
        tensors.update({f"densify/{k}/{part}": v for k, d in (("grad", self.densifier.grad), ("seen", self.densifier.seen))
                        for part, v in d.items()})
        return tensors, {}

    def load_state(self, tensors: dict[str, Tensor], state: dict) -> None:
        model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        for part in ("head", "torso"):
            getattr(self.avatar, part).resize_like({n: tuple(model[f"{part}.{n}"].shape) for n in GaussianSet.empty().tensors()})
        self.avatar.load_state_dict(model)
        self.densifier.sets = {"head": self.avatar.head, "torso": self.avatar.torso}
        self.optimizer = self._make_optimizer()
        load_optimizer_tensors(self.optimizer, tensors)
        restore_rng(tensors, self.generator)
        self.pose_delta, self.pose_moments, self.pose_steps = tensors["pose/delta"], tensors["pose/moments"], tensors["pose/steps"]
        self.densifier.grad = {p: tensors[f"densify/grad/{p}"] for p in ("head", "torso")}
        self.densifier.seen = {p: tensors[f"densify/seen/{p}"] for p in ("head", "torso")}
