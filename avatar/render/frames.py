"""Turning (motion code, head pose) into images with a trained avatar, fast.

The expression field's position part is computed once per avatar (the head's canonical Gaussians do
not move after training); each frame then costs the motion part of the MLP, the fused deformation and
one rasterisation.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from avatar.model.avatar import orbit_viewmat
from avatar.model.store import TrainedAvatar


class FrameRenderer:
    def __init__(self, trained: TrainedAvatar, intrinsics: Tensor, width: int, height: int,
                 background: Tensor | None = None):
        self.trained = trained
        self.avatar = trained.avatar
        self.K = intrinsics.float()
        self.width, self.height = width, height
        self.background = torch.zeros(3) if background is None else background.float()
        with torch.no_grad():
            self.encoded = self.avatar.encode()

    @torch.no_grad()
    def render(self, motion: Tensor, head_pose: Tensor, camera: tuple[float, float, float] | None = None) -> Tensor:
        """[H, W, 3] float image in [0, 1]. `camera` = (yaw degrees, pitch degrees, zoom) orbits the head."""
        posed = self.avatar.posed(motion.float(), head_pose.float(), encoded=self.encoded)
        view = None
        if camera is not None and any(np.not_equal(camera, (0.0, 0.0, 1.0))):
            view = orbit_viewmat(head_pose[:3, 3].float(), *camera)
        return self.avatar.render(posed, self.K, self.width, self.height, self.background, view).image.clamp(0, 1)

    @torch.no_grad()
    def render_with_alpha(self, motion: Tensor, head_pose: Tensor) -> tuple[Tensor, Tensor]:
        """([H, W, 3] straight (not premultiplied) colour, [H, W] alpha) of the avatar alone."""
        posed = self.avatar.posed(motion.float(), head_pose.float(), encoded=self.encoded)
        out = self.avatar.render(posed, self.K, self.width, self.height, torch.zeros(3))
        alpha = out.alpha.clamp(0, 1)
        return (out.image / alpha.clamp_min(1e-4)[..., None]).clamp(0, 1), alpha


def to_uint8(image: Tensor) -> np.ndarray:
    return (image.numpy() * 255 + 0.5).astype(np.uint8)
