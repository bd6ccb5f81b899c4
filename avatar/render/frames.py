"""Turning (motion code, head pose) into images with a trained avatar, fast, through any `Camera`.

The model's inference state is prepared once (for Gaussians, the expression field's position part: the
canonical Gaussians do not move after training); each frame then pays only for what the motion changes.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from avatar.camera import Camera
from avatar.model.interface import PARTS, AvatarModel, Rendered


class FrameRenderer:
    def __init__(self, model: AvatarModel, camera: Camera, background: Tensor | None = None):
        """`camera` is the default view; `background` [H, W, 3] (of the camera's size) or [3], black if None."""
        self.model = model
        self.camera = camera.to(model.device)
        zeros = torch.zeros(3, device=model.device)
        self.background = zeros if background is None else background.float().to(model.device)
        self.black = zeros
        with torch.no_grad():
            self.prepared = model.prepare()

    def _render(self, motion: Tensor, head_pose: Tensor, camera: Camera | None, torso: Tensor | None, background: Tensor,
                parts: frozenset[str]):
        device = self.model.device
        return self.model.render(motion.float().to(device), head_pose.float().to(device),
                                 self.camera if camera is None else camera.to(device), background,
                                 torso=None if torso is None else torso.float().to(device), prepared=self.prepared,
                                 parts=parts)

    @torch.no_grad()
    def render(self, motion: Tensor, head_pose: Tensor, camera: Camera | None = None, torso: Tensor | None = None,
               background: Tensor | None = None, parts: frozenset[str] = PARTS) -> Tensor:
        """[H, W, 3] float image in [0, 1] over the background (default: the renderer's), seen by `camera`
        (default: the renderer's); `torso` [4] is the torso signal (None: the torso at rest)."""
        return self.render_full(motion, head_pose, camera, torso, background, parts).image.clamp(0, 1)

    @torch.no_grad()
    def render_full(self, motion: Tensor, head_pose: Tensor, camera: Camera | None = None, torso: Tensor | None = None,
                    background: Tensor | None = None, parts: frozenset[str] = PARTS) -> Rendered:
        """As `render`, with the model's whole answer (coverage, timings); the image is not clamped."""
        return self._render(motion, head_pose, camera, torso, self.background if background is None else background, parts)

    @torch.no_grad()
    def render_with_alpha(self, motion: Tensor, head_pose: Tensor, camera: Camera | None = None,
                          torso: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """([H, W, 3] straight (not premultiplied) colour, [H, W] alpha) of the avatar alone."""
        out = self._render(motion, head_pose, camera, torso, self.black, PARTS)
        alpha = out.alpha.clamp(0, 1)
        return (out.image / alpha.clamp_min(1e-4)[..., None]).clamp(0, 1), alpha


def to_uint8(image: Tensor) -> np.ndarray:
    """[H, W, C] floats in [0, 1] -> uint8 (rounded), computed where the image is (a GPU sends a quarter of the bytes)."""
    return (image * 255 + 0.5).to(torch.uint8).cpu().numpy()
