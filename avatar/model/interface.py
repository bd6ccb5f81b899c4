"""The avatar model interface: what training, eval, rendering, export and the viewer may ask of any kind
of avatar (`gaussian`, `nerf`). A kind is a subclass of `AvatarModel` registered in `avatar.model.registry`.

A model renders one frame from (motion code, head pose, `Camera`) over a background; everything else a
caller needs is here too: a cached inference state (`prepare`), parameter groups with learning rates
and decay schedules, training hooks (a `TrainingStrategy`), extra loss terms, and its tensors for saving
plus a constructor back from them.
"""
from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from avatar.camera import Camera
from avatar.errors import AvatarError


PARTS = frozenset({"head", "torso"})
"""What an avatar is made of; a render may show a subset (the viewer's head and torso toggles)."""


@dataclass
class Rendered:
    """One rendered frame. Kinds may return a subclass carrying what their own training hooks need."""

    image: Tensor  # [H, W, 3] over the background
    alpha: Tensor  # [H, W] coverage by the avatar
    head: Tensor | None  # [H, W] coverage by the head alone (training reads it; None when rendered without gradients)
    timings: dict[str, float] = field(default_factory=dict, kw_only=True)  # host milliseconds per step (renders without gradients)


class TrainingStrategy:
    """Hooks a fit calls around each optimisation step (densification and pruning, for Gaussians).
    The default does nothing; its state goes into checkpoints."""

    def before_backward(self, rendered: Rendered) -> None:
        """After the forward pass, before `backward()` (e.g. ask for the gradients the strategy reads)."""

    def after_backward(self, rendered: Rendered, step: int) -> None:
        """After `backward()`, before the optimiser step (gradients are there)."""

    def after_step(self, step: int, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        """After the optimiser step; may change the model's parameters (and edit the optimiser to match)."""

    def state(self) -> dict[str, Tensor]:
        return {}

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        """Restore what `state` returned (names without the checkpoint's prefix)."""


class AvatarModel(nn.Module, ABC):
    kind: ClassVar[str]
    """The name saved with the model (`model.kind`), by which loading finds the class."""
    stage_names: ClassVar[tuple[str, ...]]
    """Training stages, in order, as the progress bar shows them; `train.stages` gives their lengths."""
    patch_size: ClassVar[int] = 0
    """Side in pixels of the square patch a training step renders when `train.patch` is 0; 0: the whole frame."""

    @classmethod
    @abstractmethod
    def build(cls, data, cfg, seed: int, device: torch.device) -> "AvatarModel":
        """A fresh model initialised from the training frames of `data` (an AvatarData) with `cfg` (ModelConfig)."""

    @classmethod
    @abstractmethod
    def from_tensors(cls, tensors: dict[str, Tensor], meta: dict, cfg, device: torch.device) -> "AvatarModel":
        """The model saved as `tensors()` and `meta()`, built with `cfg` (ModelConfig), on `device`."""

    @abstractmethod
    def meta(self) -> dict:
        """Plain values (JSON) that `from_tensors` needs beside the tensors."""

    def tensors(self) -> dict[str, Tensor]:
        """Every tensor that defines the trained model, by name."""
        return dict(self.state_dict())

    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.parameters(), self.buffers())).device

    @abstractmethod
    def prepare(self) -> Any:
        """State computed once for rendering many frames with fixed parameters (pass it to `render`)."""

    @abstractmethod
    def render(self, motion: Tensor, head_pose: Tensor, camera: Camera, background: Tensor, *,
               torso: Tensor | None = None, stage: int | None = None, prepared: Any = None,
               parts: frozenset[str] = PARTS) -> Rendered:
        """One frame. motion [D], head_pose [4, 4] camera-from-head, background [H, W, 3] or [3]; torso [4]
        the torso signal (`AvatarData.torso`; None: the torso at rest); `stage` (training) renders what that
        stage trains, None everything; `prepared` from `prepare()`; `parts` the parts to show (of `PARTS`)."""

    @abstractmethod
    def param_groups(self, cfg) -> list[dict]:
        """Optimiser groups from `cfg` (TrainConfig): each has "params", "lr", a unique "name" (checkpoints
        key the optimiser state by it) and "decay": None, "exponential" (tenfold over the run) or
        "second_half" (tenfold over the second half)."""

    def strategy(self, train_cfg, model_cfg, data) -> TrainingStrategy:
        """The training hooks of this kind for these settings (TrainConfig, ModelConfig) and training frames
        (an AvatarData)."""
        return TrainingStrategy()

    def losses(self, rendered: Rendered, cfg) -> dict[str, tuple[Tensor, float]]:
        """Kind-specific loss terms (regularisers): name -> (value, weight)."""
        return {}

    def sizes(self) -> dict[str, int]:
        """How big the model is, by part (e.g. Gaussians per set), for logs and reports."""
        return {}

    def splats(self, motion: Tensor, head_pose: Tensor):
        """Camera-space Gaussians of one frame (for PLY export); only kinds made of Gaussians have them."""
        raise AvatarError(f"a {self.kind} avatar has no Gaussians to export; PLY export is for gaussian avatars")
