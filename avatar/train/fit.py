"""Fitting an avatar model to one person's frames: the task the generic trainer runs, for any model kind.

The model supplies its training stages, parameter groups (with learning rates and decay), training hooks
(densification, for Gaussians), extra loss terms and rendering; the fit owns what every kind shares:
which frame each step sees, the photometric and coverage losses, the learning-rate schedule, per-frame
head-pose corrections in the last stage, and the state a checkpoint must hold to resume exactly.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from avatar.config import TrainConfig
from avatar.data.avatar_data import AvatarData
from avatar.geometry import rotvec_to_matrix
from avatar.model.interface import AvatarModel, Rendered
from avatar.train.checkpoint import load_optimizer_tensors, optimizer_tensors, restore_rng, rng_tensors
from avatar.train.losses import avatar_losses, psnr

CPU = torch.device("cpu")


class AvatarFit:
    def __init__(self, data: AvatarData, model: AvatarModel, cfg: TrainConfig, model_cfg):
        self.data, self.model, self.cfg = data, model, cfg
        self.stage_names = model.stage_names
        if len(cfg.stages) != len(self.stage_names) or min(cfg.stages) < 0 or sum(cfg.stages) <= 0:
            raise ValueError(f"train.stages needs {len(self.stage_names)} non-negative fractions for a {model.kind} avatar "
                             f"({', '.join(self.stage_names)})")
        fractions = np.array(cfg.stages, dtype=np.float64) / sum(cfg.stages)
        self.stage_ends = np.round(np.cumsum(fractions) * cfg.iterations).astype(int)
        # Frame order and every random draw come from this CPU generator: the same run on any device.
        self.generator = torch.Generator(device=CPU).manual_seed(cfg.seed)
        device = data.device
        self.pose_delta = torch.zeros(data.count, 6, device=device)
        self.pose_moments = torch.zeros(2, data.count, 6, device=device)
        self.pose_steps = torch.zeros(data.count, device=device)
        self.strategy = model.strategy(cfg, model_cfg)
        self.optimizer = self._make_optimizer()
        self.last_psnr = 0.0

    def _make_optimizer(self) -> torch.optim.Optimizer:
        groups = self.model.param_groups(self.cfg)
        for group in groups:
            group["base_lr"] = group["lr"]
        return torch.optim.Adam(groups, eps=1e-15, fused=True)

    def stage_at(self, step: int) -> int:
        return int(min(np.searchsorted(self.stage_ends, step, side="right"), len(self.stage_names) - 1))

    def _schedule(self, step: int) -> None:
        progress = step / max(self.cfg.iterations, 1)
        for group in self.optimizer.param_groups:
            if group["decay"] == "exponential":
                group["lr"] = group["base_lr"] * math.exp(progress * math.log(0.1))
            elif group["decay"] == "second_half":
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

    def render_frame(self, index: int, stage: int | None = None, refine: bool = False):
        batch = self.data.frame(index)
        pose, delta = self._pose(index, batch.head_pose, refine)
        rendered = self.model.render(batch.motion, pose, self.data.camera, self.data.background, stage=stage)
        return batch, delta, rendered

    def losses(self, rendered: Rendered, batch) -> dict[str, Tensor]:
        cfg = self.cfg
        terms = avatar_losses(rendered, batch, cfg.ssim_weight, cfg.mouth_weight, cfg.mask_weight)
        for name, (value, weight) in self.model.losses(rendered, cfg).items():
            terms[name] = value
            terms["total"] = terms["total"] + weight * value
        return terms

    def train_step(self, step: int) -> dict[str, float]:
        stage = self.stage_at(step)
        index = int(self.data.train_ids[torch.randint(len(self.data.train_ids), (1,), generator=self.generator)])
        refine = self.cfg.refine_poses and stage == len(self.stage_names) - 1
        batch, delta, rendered = self.render_frame(index, stage, refine)
        self.strategy.before_backward(rendered)
        losses = self.losses(rendered, batch)
        self._schedule(step)
        losses["total"].backward()
        self.strategy.after_backward(rendered, step)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if delta is not None and delta.grad is not None:
            self._step_pose(index, delta.grad)
        self.strategy.after_step(step, self.optimizer, self.generator)
        with torch.no_grad():
            self.last_psnr = float(psnr(rendered.image, batch.image))
        scalars = {k: float(v.detach()) for k, v in losses.items() if k != "total"}
        return {"loss": float(losses["total"].detach()), "psnr": self.last_psnr,
                "gaussians": float(sum(self.model.sizes().values())), **scalars}

    @torch.no_grad()
    def images(self) -> dict[str, np.ndarray]:
        out = {}
        for name, ids in (("train", self.data.train_ids), ("test", self.data.test_ids)):
            if len(ids):
                batch, _, rendered = self.render_frame(int(ids[len(ids) // 2]))
                pair = torch.cat([rendered.image.clamp(0, 1), batch.image], 1)
                out[f"render/{name}"] = (pair.cpu().numpy() * 255).astype(np.uint8)
        return out

    def state(self) -> tuple[dict[str, Tensor], dict]:
        """(tensors, plain values) a checkpoint holds: the model and what builds it again, the optimiser, the
        generators, pose corrections, the strategy's statistics and the expression basis."""
        tensors = {f"model.{k}": v for k, v in self.model.tensors().items()}
        tensors.update(optimizer_tensors(self.optimizer))
        tensors.update(rng_tensors(self.generator))
        tensors.update({"pose/delta": self.pose_delta, "pose/moments": self.pose_moments, "pose/steps": self.pose_steps})
        tensors.update({f"basis/{k}": torch.from_numpy(v) for k, v in self.data.basis.arrays().items()})
        tensors.update({f"strategy/{k}": v for k, v in self.strategy.state().items()})
        return tensors, {"kind": self.model.kind, "meta": self.model.meta()}

    def load_state(self, tensors: dict[str, Tensor], values: dict) -> None:
        """Restore a checkpoint's training state; the model must already hold its tensors (`model_from_checkpoint`)."""
        device = self.data.device
        load_optimizer_tensors(self.optimizer, {k: v.to(device) for k, v in tensors.items() if k.startswith("optim/")})
        restore_rng(tensors, self.generator)
        self.pose_delta, self.pose_moments, self.pose_steps = (tensors[f"pose/{k}"].to(device) for k in ("delta", "moments", "steps"))
        self.strategy.load_state({k[len("strategy/"):]: v for k, v in tensors.items() if k.startswith("strategy/")})


def model_from_checkpoint(cls, tensors: dict[str, Tensor], data: AvatarData, model_cfg, meta: dict) -> AvatarModel:
    """The model a checkpoint holds (prefix "model."), on the data's device."""
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return cls.from_tensors(state, meta, model_cfg, data.device)
