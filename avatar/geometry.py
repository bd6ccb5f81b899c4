"""Rotations, camera projection and head-angle conventions shared by preprocessing, model and eval.

Cameras follow OpenCV: x right, y down, z forward; pixel (i, j) covers [i, i+1) x [j, j+1), so the image
centre is (W/2, H/2). The head frame is MediaPipe's canonical face frame: x to the subject's left, y up,
z out of the face. A head looking straight at the camera therefore has rotation `FACING_CAMERA`.
"""
from __future__ import annotations

import numpy as np
import torch

FACING_CAMERA = np.diag([1.0, -1.0, -1.0])
"""Camera-from-head rotation of a head that looks straight into the camera."""


def rotvec_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula. rotvec: [..., 3] -> [..., 3, 3]; exact gradients at zero angle too."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]  # [..., 1, 1]
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """[..., 3, 3] -> [..., 3] rotation vectors (angle < pi)."""
    from scipy.spatial.transform import Rotation

    flat = np.asarray(matrix, dtype=np.float64).reshape(-1, 3, 3)
    return Rotation.from_matrix(flat).as_rotvec().reshape(*np.shape(matrix)[:-2], 3)


def head_angles_deg(camera_from_head: np.ndarray) -> np.ndarray:
    """[..., 3, 3] (or 4x4) -> [..., 3] (yaw, pitch, roll) in degrees, zero when facing the camera.

    Yaw turns about the camera's vertical axis, pitch about its horizontal axis, roll about its
    viewing axis.
    """
    from scipy.spatial.transform import Rotation

    rot = np.asarray(camera_from_head, dtype=np.float64)[..., :3, :3]
    relative = rot @ FACING_CAMERA.T
    flat = relative.reshape(-1, 3, 3)
    angles = Rotation.from_matrix(flat).as_euler("YXZ", degrees=True)  # yaw (y), pitch (x), roll (z)
    return angles.reshape(*rot.shape[:-2], 3)


def rotation_jitter_deg(camera_from_head: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per axis (yaw, pitch, roll): RMS of the frame-to-frame second difference of the head angles."""
    angles = head_angles_deg(camera_from_head)
    second = angles[2:] - 2 * angles[1:-1] + angles[:-2]
    if valid is not None:
        ok = valid[2:] & valid[1:-1] & valid[:-2]
        second = second[ok]
    if len(second) == 0:
        return np.zeros(3)
    return np.sqrt((second**2).mean(0))


def project(points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Pinhole projection. points: [..., 3] camera space; intrinsics: [3, 3] -> [..., 2] pixels."""
    z = points[..., 2:3].clamp_min(1e-6)
    xy = points[..., :2] / z
    return xy * torch.stack([intrinsics[0, 0], intrinsics[1, 1]]) + torch.stack([intrinsics[0, 2], intrinsics[1, 2]])


def intrinsics_matrix(focal: float, width: int, height: int) -> np.ndarray:
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float32)


def mediapipe_to_camera(matrix: np.ndarray) -> np.ndarray:
    """MediaPipe facial transformation (OpenGL camera: y up, looking down -z) -> OpenCV camera-from-head."""
    flip = np.diag([1.0, -1.0, -1.0, 1.0]).astype(np.float32)
    return flip @ np.asarray(matrix, dtype=np.float32)


def mean_pose(poses: torch.Tensor) -> torch.Tensor:
    """[T, 4, 4] -> [4, 4] on the same device: chordal mean rotation, mean translation."""
    u, _, vt = torch.linalg.svd(poses[:, :3, :3].double().mean(0))
    flip = torch.ones(3, dtype=torch.float64, device=poses.device)
    flip[2] = torch.det(u @ vt).sign()
    out = torch.eye(4, device=poses.device)
    out[:3, :3] = (u @ torch.diag(flip) @ vt).float()
    out[:3, 3] = poses[:, :3, 3].mean(0)
    return out
