"""The training view of an avatar folder: frames, part masks, motion codes and head poses at a chosen
resolution, decoded on first use and kept in memory up to a budget (never every frame as float)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from avatar.errors import AvatarError
from avatar.face_mesh import LIPS_OUTER
from avatar.folder import AvatarFolder
from avatar.io_utils import load_npz
from avatar.motion.code import ExpressionBasis, fit_expression_basis, landmark_offsets, motion_codes


@dataclass
class FrameBatch:
    index: int
    image: Tensor  # [H, W, 3] float32 in [0, 1]
    labels: Tensor  # [H, W] uint8: 0 background, 1 torso, 2 head, 3 mouth interior
    motion: Tensor  # [D] motion code
    head_pose: Tensor  # [4, 4] camera-from-head
    mouth_box: tuple[int, int, int, int]  # x0, y0, x1, y1 around the lips, in pixels


class AvatarData:
    """Frames of one avatar folder at `resolution` pixels (square)."""

    def __init__(self, folder: AvatarFolder, resolution: int = 0, basis: ExpressionBasis | None = None,
                 cache_mb: float = 3000.0, expression_components: int = 12):
        for path in (folder.manifest, folder.tracking, folder.background):
            if not path.exists():
                raise AvatarError(f"{folder.root} is not preprocessed ({path.name} is missing); run `avatar preprocess` first")
        self.folder = folder
        self.manifest = json.loads(folder.manifest.read_text())
        self.size = self.manifest["width"]
        self.resolution = int(resolution or self.size)
        if self.resolution > self.size:
            self.resolution = self.size
        self.scale = self.resolution / self.size
        tracking = load_npz(folder.tracking)
        self.tracking = tracking
        self.count = self.manifest["num_frames"]
        split = self.manifest["split"]
        valid = tracking["valid"]
        self.train_ids = np.array([i for i in range(*split["train"]) if valid[i]], dtype=np.int64)
        self.test_ids = np.array([i for i in range(*split["test"]) if valid[i]], dtype=np.int64)
        if len(self.train_ids) == 0:
            raise AvatarError(f"{folder.root} has no tracked training frames")
        offsets = landmark_offsets(tracking["landmarks"], tracking["head_pose"], tracking["intrinsics"], tracking["head_vertices"])
        self.basis = basis or fit_expression_basis(offsets[self.train_ids], expression_components)
        self.motion = torch.from_numpy(motion_codes(tracking["blendshapes"], offsets, self.basis))
        self.head_pose = torch.from_numpy(tracking["head_pose"].astype(np.float32))
        K = tracking["intrinsics"].astype(np.float32).copy()
        K[:2] *= self.scale
        self.intrinsics = torch.from_numpy(K)
        self.template = torch.from_numpy(tracking["head_vertices"].astype(np.float32))
        self.triangles = torch.from_numpy(tracking["head_triangles"].astype(np.int64))
        lips = tracking["landmarks"][:, list(LIPS_OUTER)] * self.scale
        centre, half = (lips.max(1) + lips.min(1)) / 2, (lips.max(1) - lips.min(1)).max(1, keepdims=True) * 0.75
        self.mouth_boxes = np.concatenate([centre - half, centre + half], 1).round().astype(int).clip(0, self.resolution)
        self.background = self._read_rgb(folder.background)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cache_bytes = 0
        self._cache_limit = cache_mb * 2**20

    @property
    def motion_dim(self) -> int:
        return self.motion.shape[1]

    def _read_rgb(self, path) -> Tensor:
        import cv2

        half = self.resolution * 2 == self.size
        bgr = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2 if half else cv2.IMREAD_COLOR)
        if bgr is None:
            raise AvatarError(f"cannot read {path}; run `avatar preprocess` again")
        if bgr.shape[0] != self.resolution:
            bgr = cv2.resize(bgr, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).float() / 255

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        if index in self._cache:
            return self._cache[index]
        half = self.resolution * 2 == self.size
        bgr = cv2.imread(str(self.folder.frame_path(index)), cv2.IMREAD_REDUCED_COLOR_2 if half else cv2.IMREAD_COLOR)
        labels = cv2.imread(str(self.folder.mask_path(index)), cv2.IMREAD_GRAYSCALE)
        if bgr is None or labels is None:
            raise AvatarError(f"frame {index} of {self.folder.root} is missing; run `avatar preprocess` again")
        if bgr.shape[0] != self.resolution:
            bgr = cv2.resize(bgr, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA)
        if labels.shape[0] != self.resolution:
            labels = cv2.resize(labels, (self.resolution, self.resolution), interpolation=cv2.INTER_NEAREST)
        item = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), labels)
        size = item[0].nbytes + item[1].nbytes
        if self._cache_bytes + size <= self._cache_limit:
            self._cache[index] = item
            self._cache_bytes += size
        return item

    def frame(self, index: int) -> FrameBatch:
        rgb, labels = self._load(int(index))
        return FrameBatch(
            index=int(index),
            image=torch.from_numpy(rgb).float() / 255,
            labels=torch.from_numpy(labels),
            motion=self.motion[index],
            head_pose=self.head_pose[index],
            mouth_box=tuple(int(v) for v in self.mouth_boxes[index]),
        )
