"""An avatar folder's preprocessed data at a chosen resolution and on a chosen device: the video camera,
the background plate, head poses, motion codes, and frames with their part masks, decoded on first use
and kept in memory up to a budget (never every frame as float).

Cheap parts (manifest, tracking, camera, plate) are read at construction; the motion codes (which need
an expression basis fitted over every frame's landmarks) only when first asked for, so rendering from
audio or exporting never pays for them.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from avatar.camera import Camera
from avatar.data.images import read_labels, read_matte, read_rgb
from avatar.errors import AvatarError
from avatar.face_mesh import LEFT_EYE, LIPS_OUTER, RIGHT_EYE
from avatar.data.masks import clear_background, coverage_targets
from avatar.folder import AvatarFolder
from avatar.geometry import mean_pose
from avatar.io_utils import load_npz
from avatar.motion.code import ExpressionBasis, fit_expression_basis, landmark_offsets, motion_codes

CPU = torch.device("cpu")


@dataclass
class FrameBatch:
    index: int
    image: Tensor  # [H, W, 3] float32 in [0, 1]
    labels: Tensor  # [H, W] uint8: 0 background, 1 torso, 2 head, 3 mouth interior
    person: Tensor  # [H, W] float32 in [0, 1]: alpha target of the person (soft at its outline; data/masks.py)
    head: Tensor  # [H, W] float32 in [0, 1]: alpha target of the head
    clear: Tensor  # [H, W] bool: background with nothing of the person near it (what may teach the plate)
    motion: Tensor  # [D] motion code
    head_pose: Tensor  # [4, 4] camera-from-head
    torso: Tensor  # [4] torso signal (see `AvatarData.torso`)
    mouth_box: tuple[int, int, int, int]  # x0, y0, x1, y1 around the lips, in pixels
    eye_boxes: tuple[tuple[int, int, int, int], ...]  # the same around each eye
    window: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 of the frame these pixels are (None: all)

    def cropped(self, window: tuple[int, int, int, int]) -> "FrameBatch":
        """The pixels of `window` (x0, y0, x1, y1) only, boxes moved into it (clipped; empty when outside)."""
        x0, y0, x1, y1 = window

        def inside(box):
            bx0, by0, bx1, by1 = box
            return (min(max(bx0 - x0, 0), x1 - x0), min(max(by0 - y0, 0), y1 - y0),
                    min(max(bx1 - x0, 0), x1 - x0), min(max(by1 - y0, 0), y1 - y0))

        rows, cols = slice(y0, y1), slice(x0, x1)
        return dataclasses.replace(self, image=self.image[rows, cols], labels=self.labels[rows, cols],
                                   person=self.person[rows, cols], head=self.head[rows, cols],
                                   clear=self.clear[rows, cols], mouth_box=inside(self.mouth_box),
                                   eye_boxes=tuple(inside(box) for box in self.eye_boxes), window=window)


def torso_signal(folder: AvatarFolder, size: int) -> tuple[np.ndarray, float]:
    """([T, 4] float32 torso signal: the shifts of the left and right torso halves as fractions of the frame
    side `size`, the column between the halves as a fraction of it) from the folder's torso.npz."""
    if not folder.torso.exists():
        raise AvatarError(f"{folder.root} is not fully preprocessed (torso.npz is missing); run `avatar preprocess` again")
    torso = load_npz(folder.torso)
    return (torso["shift"] / size).astype(np.float32), float(torso["region"][1]) / size


class AvatarData:
    """Frames of one avatar folder at `resolution` pixels (square; 0 = as stored), tensors on `device`."""

    def __init__(self, folder: AvatarFolder, resolution: int = 0, basis: ExpressionBasis | None = None,
                 cache_mb: float = 3000.0, expression_components: int = 12, device: torch.device = CPU):
        for path in (folder.manifest, folder.tracking, folder.background):
            if not path.exists():
                raise AvatarError(f"{folder.root} is not preprocessed ({path.name} is missing); run `avatar preprocess` first")
        self.folder = folder
        self.device = torch.device(device)
        self.manifest = json.loads(folder.manifest.read_text())
        self.size = self.manifest["width"]
        self.resolution = min(int(resolution or self.size), self.size)
        self.scale = self.resolution / self.size
        self.fps = self.manifest["fps"]
        self.tracking = load_npz(folder.tracking)
        self.count = self.manifest["num_frames"]
        split, valid = self.manifest["split"], self.tracking["valid"]
        self.train_ids = np.array([i for i in range(*split["train"]) if valid[i]], dtype=np.int64)
        self.test_ids = np.array([i for i in range(*split["test"]) if valid[i]], dtype=np.int64)
        if len(self.train_ids) == 0:
            raise AvatarError(f"{folder.root} has no tracked training frames; preprocess a video where the face is visible")
        self._basis, self._expression_components = basis, expression_components
        self.head_pose = torch.from_numpy(self.tracking["head_pose"].astype(np.float32)).to(self.device)
        K = self.tracking["intrinsics"].astype(np.float32).copy()
        K[:2] *= self.scale
        self.intrinsics = torch.from_numpy(K).to(self.device)
        self.template = torch.from_numpy(self.tracking["head_vertices"].astype(np.float32))  # CPU: initialisation only
        self.triangles = torch.from_numpy(self.tracking["head_triangles"].astype(np.int64))
        self.mouth_boxes = self._boxes(LIPS_OUTER, 0.75)
        self.eye_boxes = np.stack([self._boxes(RIGHT_EYE, 0.6), self._boxes(LEFT_EYE, 0.6)], 1)  # [T, 2, 4]
        signal, self.torso_split = torso_signal(folder, self.size)
        self.torso = torch.from_numpy(signal).to(self.device)
        self.background = self._tensor(self._read(read_rgb, folder.background, "the background plate"))
        self._cache: dict[int, tuple[np.ndarray, ...]] = {}
        self._cache_bytes = 0
        self._cache_limit = cache_mb * 2**20

    def _boxes(self, points: tuple[int, ...], grow: float) -> np.ndarray:
        """[T, 4] square boxes (x0, y0, x1, y1, pixels) around landmarks `points`: half-side `grow` times their extent."""
        marks = self.tracking["landmarks"][:, list(points)] * self.scale
        centre, half = (marks.max(1) + marks.min(1)) / 2, (marks.max(1) - marks.min(1)).max(1, keepdims=True) * grow
        return np.concatenate([centre - half, centre + half], 1).round().astype(int).clip(0, self.resolution)

    @functools.cached_property
    def camera(self) -> Camera:
        """The video's camera at this resolution."""
        return Camera.of_video(self.intrinsics, self.resolution, self.resolution)

    @property
    def rest_pose(self) -> Tensor:
        """[4, 4] mean head pose of the training frames."""
        return mean_pose(self.head_pose[self.train_ids])

    @property
    def basis(self) -> ExpressionBasis:
        """The expression basis: the one given, or fitted on the training frames' landmark offsets."""
        if self._basis is None:
            self._basis = fit_expression_basis(self._landmark_offsets[self.train_ids], self._expression_components)
        return self._basis

    @functools.cached_property
    def _landmark_offsets(self) -> np.ndarray:
        t = self.tracking
        return landmark_offsets(t["landmarks"], t["head_pose"], t["intrinsics"], t["head_vertices"])

    @functools.cached_property
    def motion(self) -> Tensor:
        """[T, D] motion code of every frame (blendshapes and expression coefficients)."""
        codes = motion_codes(self.tracking["blendshapes"], self._landmark_offsets, self.basis)
        return torch.from_numpy(codes).to(self.device)

    @property
    def motion_dim(self) -> int:
        return self.tracking["blendshapes"].shape[1] + self.basis.size

    def _half(self) -> bool:
        return self.resolution * 2 == self.size

    def _read(self, reader, path, what: str) -> np.ndarray:
        try:
            if reader is read_rgb:
                return read_rgb(path, self.resolution, half=self._half())
            if reader is read_matte:
                return read_matte(path, (self.resolution, self.resolution))
            return reader(path, self.resolution)
        except FileNotFoundError:
            raise AvatarError(f"{what} of {self.folder.root} is missing or unreadable ({path.name}); "
                              "run `avatar preprocess` again") from None

    def _tensor(self, rgb: np.ndarray) -> Tensor:
        return (torch.from_numpy(rgb).to(self.device).float() / 255).contiguous()

    def _load(self, index: int) -> tuple[np.ndarray, ...]:
        """(rgb, labels, person target, head target, clear background) of a frame, as uint8 / bool arrays."""
        if index in self._cache:
            return self._cache[index]
        labels = self._read(read_labels, self.folder.mask_path(index), f"the mask of frame {index}")
        matte = self._read(read_matte, self.folder.matte_path(index), f"the matte of frame {index}")
        item = (self._read(read_rgb, self.folder.frame_path(index), f"frame {index}"), labels,
                *coverage_targets(labels, matte), clear_background(labels, matte))
        size = sum(part.nbytes for part in item)
        if self._cache_bytes + size <= self._cache_limit:
            self._cache[index] = item
            self._cache_bytes += size
        return item

    def frame(self, index: int) -> FrameBatch:
        rgb, labels, person, head, clear = self._load(int(index))
        return FrameBatch(
            index=int(index),
            image=self._tensor(rgb),
            labels=torch.from_numpy(labels).to(self.device),
            person=torch.from_numpy(person).to(self.device).float() / 255,
            head=torch.from_numpy(head).to(self.device).float() / 255,
            clear=torch.from_numpy(clear).to(self.device),
            motion=self.motion[index],
            head_pose=self.head_pose[index],
            torso=self.torso[index],
            mouth_box=tuple(int(v) for v in self.mouth_boxes[index]),
            eye_boxes=tuple(tuple(int(v) for v in box) for box in self.eye_boxes[index]),
        )
