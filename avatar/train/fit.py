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
from avatar.errors import AvatarError
from avatar.geometry import rotvec_to_matrix
from avatar.model.interface import AvatarModel, Rendered
from avatar.model.plate import PlateEstimate
from avatar.train.checkpoint import load_optimizer_tensors, optimizer_tensors, restore_rng, rng_tensors
from avatar.train.losses import avatar_losses, psnr
from avatar.train.per_frame import PerFrameParameters

CPU = torch.device("cpu")


class AvatarFit:
    def __init__(self, data: AvatarData, model: AvatarModel, cfg: TrainConfig, model_cfg):
        self.data, self.model, self.cfg = data, model, cfg
        self.stage_names = model.stage_names
        if len(cfg.stages) != len(self.stage_names) or min(cfg.stages) < 0 or sum(cfg.stages) <= 0:
            raise AvatarError(f"train.stages needs {len(self.stage_names)} non-negative fractions for a {model.kind} avatar "
                              f"({', '.join(self.stage_names)})")
        if min(cfg.patch_mouth, cfg.patch_eyes) < 0 or cfg.patch_mouth + cfg.patch_eyes > 1:
            raise AvatarError(f"train.patch_mouth ({cfg.patch_mouth}) and train.patch_eyes ({cfg.patch_eyes}) are shares of "
                              "the training patches: each at least 0, together at most 1")
        fractions = np.array(cfg.stages, dtype=np.float64) / sum(cfg.stages)
        self.stage_ends = np.round(np.cumsum(fractions) * cfg.iterations).astype(int)
        # Frame order and every random draw come from this CPU generator: the same run on any device.
        self.generator = torch.Generator(device=CPU).manual_seed(cfg.seed)
        device = data.device
        # Per-frame corrections of the last stage, for training frames only: head pose (rotation vector,
        # translation) and colour (a 3x4 affine offset from identity: exposure and white balance drift).
        self.pose_delta = PerFrameParameters(data.count, (6,), device, lr=2e-4, pull=1e-2)
        self.colour = PerFrameParameters(data.count, (3, 4), device, lr=1e-2, pull=1e-1)
        self.strategy = model.strategy(cfg, model_cfg, data)
        # The plate's correction, estimated where frames show background (None: the static plate as it is).
        self.plate = PlateEstimate(data.background) if cfg.learn_background else None
        self.optimizer = self._make_optimizer()
        self.motion_spread = data.motion[torch.from_numpy(data.train_ids).to(data.motion.device)].std(0)
        self.patch = cfg.patch if cfg.patch > 0 else model.patch_size  # 0: whole frames
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

    def pick_window(self, batch) -> tuple[int, int, int, int] | None:
        """The patch (x0, y0, x1, y1) a training step renders, or None for the whole frame. Patches are
        centred on the lips (`train.patch_mouth` of the time), on an eye (`train.patch_eyes`), else on a pixel of
        the person or, one time in ten, anywhere (background that teaches the plate and empty coverage)."""
        side = min(self.patch, self.data.resolution)
        if side <= 0 or side >= self.data.resolution:
            return None
        g = self.generator
        draw = float(torch.rand((), generator=g, device=g.device))
        if draw < self.cfg.patch_mouth:
            box = batch.mouth_box
        elif draw < self.cfg.patch_mouth + self.cfg.patch_eyes:
            box = batch.eye_boxes[int(draw * 1000) % len(batch.eye_boxes)]
        else:
            box = None
        if box is not None and box[2] > box[0]:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        else:
            where = torch.nonzero(batch.person > 0.5) if draw < 0.9 else None
            if where is not None and len(where):
                cy, cx = where[int(torch.randint(len(where), (1,), generator=g, device=g.device))].tolist()
            else:
                cx, cy = (torch.rand(2, generator=g, device=g.device) * self.data.resolution).tolist()
        jitter = ((torch.rand(2, generator=g, device=g.device) - 0.5) * side / 2).tolist()
        x0 = int(min(max(cx + jitter[0] - side / 2, 0), self.data.resolution - side))
        y0 = int(min(max(cy + jitter[1] - side / 2, 0), self.data.resolution - side))
        return x0, y0, x0 + side, y0 + side

    def render_frame(self, index: int, stage: int | None = None, refine: bool = False, noise: bool = False,
                     patch: bool = False):
        """(frame, {correction name: its differentiable row}, rendered); `refine` applies the frame's own
        pose and colour corrections (training frames in the last stage; never for held-out frames), `noise`
        perturbs its motion code (`train.motion_noise`, training steps only), `patch` renders only the
        window `pick_window` chooses (for kinds that train on patches) and returns the frame cut to it
        (`batch.window`)."""
        batch = self.data.frame(index)
        window = self.pick_window(batch) if patch else None
        camera, plate = self.data.camera, self.data.background if self.plate is None else self.plate.plate()
        if window is not None:
            x0, y0, x1, y1 = window
            batch, camera, plate = batch.cropped(window), camera.cropped(x0, y0, x1 - x0, y1 - y0), plate[y0:y1, x0:x1]
        pose, rows, motion = batch.head_pose, {}, batch.motion
        if noise and self.cfg.motion_noise > 0:
            draw = torch.randn(motion.shape, generator=self.generator, device=CPU).to(motion.device)
            motion = motion + self.cfg.motion_noise * self.motion_spread * draw
        if refine and self.cfg.refine_poses:
            rows["pose"] = delta = self.pose_delta.row(index)
            pose = pose.clone()
            pose[:3, :3] = rotvec_to_matrix(delta[:3]) @ batch.head_pose[:3, :3]
            pose[:3, 3] = batch.head_pose[:3, 3] + delta[3:]
        rendered = self.model.render(motion, pose, camera, plate, torso=batch.torso, stage=stage)
        if refine and self.cfg.learn_colour:
            rows["colour"] = colour = self.colour.row(index)
            rendered.image = rendered.image + rendered.image @ colour[:, :3].T + colour[:, 3]
        return batch, rows, rendered

    def losses(self, rendered: Rendered, batch) -> dict[str, Tensor]:
        cfg = self.cfg
        terms = avatar_losses(rendered, batch, cfg.ssim_weight, cfg.mouth_weight, cfg.eye_weight, cfg.mask_weight)
        for name, (value, weight) in self.model.losses(rendered, cfg).items():
            terms[name] = value
            terms["total"] = terms["total"] + weight * value
        return terms

    def train_step(self, step: int) -> dict[str, float]:
        stage = self.stage_at(step)
        index = int(self.data.train_ids[torch.randint(len(self.data.train_ids), (1,), generator=self.generator)])
        batch, rows, rendered = self.render_frame(index, stage, refine=stage == len(self.stage_names) - 1, noise=True,
                                                  patch=True)
        self.strategy.before_backward(rendered)
        losses = self.losses(rendered, batch)
        self._schedule(step)
        losses["total"].backward()
        self.strategy.after_backward(rendered, step)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        for name, row in rows.items():
            if row.grad is not None:
                {"pose": self.pose_delta, "colour": self.colour}[name].step(index, row.grad)
        self.strategy.after_step(step, self.optimizer, self.generator)
        if self.plate is not None:
            self.plate.update(batch.image, batch.clear, rendered.alpha.detach(), batch.window)
        with torch.no_grad():
            self.last_psnr = float(psnr(rendered.image, batch.image))
        scalars = {k: float(v.detach()) for k, v in losses.items() if k != "total"}
        return {"loss": float(losses["total"].detach()), "psnr": self.last_psnr,
                "size": float(sum(self.model.sizes().values())), **scalars}

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
        tensors.update({**self.pose_delta.state("pose"), **self.colour.state("colour")})
        tensors.update({f"basis/{k}": torch.from_numpy(v) for k, v in self.data.basis.arrays().items()})
        tensors.update({f"strategy/{k}": v for k, v in self.strategy.state().items()})
        if self.plate is not None:
            tensors.update({"plate/residual": self.plate.residual, "plate/weight": self.plate.weight})
        return tensors, {"kind": self.model.kind, "meta": self.model.meta()}

    def load_state(self, tensors: dict[str, Tensor], values: dict) -> None:
        """Restore a checkpoint's training state; the model must already hold its tensors (`model_from_checkpoint`)."""
        device = self.data.device
        load_optimizer_tensors(self.optimizer, {k: v.to(device) for k, v in tensors.items() if k.startswith("optim/")})
        restore_rng(tensors, self.generator)
        self.pose_delta.load_state(tensors, "pose")
        self.colour.load_state(tensors, "colour")
        self.strategy.load_state({k[len("strategy/"):]: v for k, v in tensors.items() if k.startswith("strategy/")})
        if self.plate is not None and "plate/residual" in tensors:
            self.plate.residual = tensors["plate/residual"].to(device)
            self.plate.weight = tensors["plate/weight"].to(device)


def model_from_checkpoint(cls, tensors: dict[str, Tensor], data: AvatarData, model_cfg, meta: dict) -> AvatarModel:
    """The model a checkpoint holds (prefix "model."), on the data's device."""
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return cls.from_tensors(state, meta, model_cfg, data.device)
