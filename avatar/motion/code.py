"""The motion code: what the renderer sees of a face besides its head pose.

Per frame: MediaPipe's 52 blendshapes plus a few expression coefficients measured from the landmarks
in head coordinates (the blendshapes describe the mouth only coarsely). Each landmark is moved onto its
viewing ray, next to where the rigid template says it should be, and taken back into the head frame;
its offset from the template is the expression. A PCA of those offsets over the training frames gives
the coefficients, scaled to unit variance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.face_mesh import LEFT_BROW, LEFT_EYE, LIPS_INNER, LIPS_OUTER, LOWER_FACE, RIGHT_BROW, RIGHT_EYE

EXPRESSION_LANDMARKS = np.array(sorted(set(LOWER_FACE) | set(LIPS_OUTER) | set(LIPS_INNER) | set(LEFT_EYE)
                                       | set(RIGHT_EYE) | set(LEFT_BROW) | set(RIGHT_BROW)), dtype=np.int64)
NUM_BLENDSHAPES = 52


@dataclass
class ExpressionBasis:
    mean: np.ndarray  # [K * 3] mean offset of the expression landmarks (centimetres)
    components: np.ndarray  # [P, K * 3] orthonormal principal directions
    scale: np.ndarray  # [P] standard deviation of each coefficient over the training frames

    @property
    def size(self) -> int:
        return len(self.scale)

    def coefficients(self, offsets: np.ndarray) -> np.ndarray:
        """[T, K, 3] offsets -> [T, P] unit-variance coefficients."""
        flat = offsets.reshape(len(offsets), -1) - self.mean
        return (flat @ self.components.T) / self.scale

    def offsets(self, coefficients: np.ndarray) -> np.ndarray:
        """[T, P] -> [T, K, 3]: the expression the coefficients describe."""
        flat = (coefficients * self.scale) @ self.components + self.mean
        return flat.reshape(len(coefficients), -1, 3)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"expression_mean": self.mean, "expression_components": self.components, "expression_scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "ExpressionBasis":
        return cls(np.asarray(arrays["expression_mean"]), np.asarray(arrays["expression_components"]),
                   np.asarray(arrays["expression_scale"]))


def landmark_offsets(landmarks: np.ndarray, head_pose: np.ndarray, intrinsics: np.ndarray, template: np.ndarray,
                     ids: np.ndarray = EXPRESSION_LANDMARKS) -> np.ndarray:
    """[T, K, 3] offsets (head frame, centimetres) of landmarks `ids` from the rigid template.

    landmarks [T, 478, 2] pixels; head_pose [T, 4, 4] camera-from-head; template [468, 3].
    """
    rot, trans = head_pose[:, :3, :3].astype(np.float64), head_pose[:, :3, 3].astype(np.float64)
    rays = np.concatenate([landmarks[:, ids].astype(np.float64), np.ones((len(landmarks), len(ids), 1))], -1)
    rays = rays @ np.linalg.inv(intrinsics.astype(np.float64)).T  # [T, K, 3] directions from the camera centre
    expected = np.einsum("tij,kj->tki", rot, template[ids].astype(np.float64)) + trans[:, None]
    along = (rays * expected).sum(-1, keepdims=True) / (rays * rays).sum(-1, keepdims=True)
    seen = rays * along  # the point of each ray nearest to where the template puts the landmark
    head = np.einsum("tji,tkj->tki", rot, seen - trans[:, None])
    return (head - template[ids]).astype(np.float32)


def fit_expression_basis(offsets: np.ndarray, components: int = 12) -> ExpressionBasis:
    """PCA of [T, K, 3] offsets (training frames only)."""
    flat = offsets.reshape(len(offsets), -1).astype(np.float64)
    mean = flat.mean(0)
    _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
    count = min(components, len(singular))
    scale = singular[:count] / np.sqrt(max(len(flat) - 1, 1))
    return ExpressionBasis(mean.astype(np.float32), vt[:count].astype(np.float32), np.maximum(scale, 1e-6).astype(np.float32))


def motion_codes(blendshapes: np.ndarray, offsets: np.ndarray, basis: ExpressionBasis) -> np.ndarray:
    """[T, 52 + P] float32: blendshapes then expression coefficients."""
    return np.concatenate([blendshapes, basis.coefficients(offsets)], 1).astype(np.float32)
