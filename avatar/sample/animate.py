"""Animating and drawing the sample scene: known head motion, jaw driven by the speech, blinks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.sample.scene import SampleScene


@dataclass
class SampleMotion:
    head_angles_deg: np.ndarray  # [T, 3] yaw (about camera y), pitch (about x), roll (about z)
    head_shift_cm: np.ndarray  # [T, 3]
    jaw_open: np.ndarray  # [T] 0 closed .. 1 fully open
    blink: np.ndarray  # [T] 0 open .. 1 closed


def _rotation(rotvecs: np.ndarray) -> np.ndarray:
    """[..., 3] rotation vectors -> [..., 3, 3]."""
    from scipy.spatial.transform import Rotation

    flat = np.asarray(rotvecs, dtype=np.float64).reshape(-1, 3)
    return Rotation.from_rotvec(flat).as_matrix().reshape(*np.shape(rotvecs)[:-1], 3, 3)


def head_rotation(angles_deg: np.ndarray) -> np.ndarray:
    """[..., 3] (yaw, pitch, roll) -> [..., 3, 3] rotations in camera space (same convention as head_angles_deg)."""
    from scipy.spatial.transform import Rotation

    flat = np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3)
    return Rotation.from_euler("YXZ", flat, degrees=True).as_matrix().reshape(*np.shape(angles_deg)[:-1], 3, 3)


def make_motion(num_frames: int, fps: float, speech: np.ndarray, sample_rate: int, seed: int) -> SampleMotion:
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    angles = np.zeros((num_frames, 3))
    for axis, amplitude in enumerate((7.0, 5.0, 3.0)):
        curve = sum(rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * rng.uniform(0.1, 0.45) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3))
        angles[:, axis] = amplitude * curve / max(np.abs(curve).max(), 1e-6)
    shift = np.stack([0.6 * np.sin(2 * np.pi * 0.13 * t + rng.uniform(0, 6)), 0.3 * np.sin(2 * np.pi * 0.21 * t + rng.uniform(0, 6)), np.zeros_like(t)], 1)

    # Jaw from the loudness of each frame's speech, smoothed like a real jaw (it cannot snap open).
    per = sample_rate / fps
    level = np.array([np.sqrt(np.mean(speech[int(i * per): int((i + 1) * per)] ** 2) + 1e-12) for i in range(num_frames)])
    db = 20 * np.log10(level + 1e-9)
    target = np.clip((db + 42) / 24, 0, 1)
    jaw = np.zeros(num_frames)
    for i in range(num_frames):
        previous = jaw[i - 1] if i else 0.0
        jaw[i] = previous + (0.7 if target[i] > previous else 0.5) * (target[i] - previous)

    blink = np.zeros(num_frames)
    shape = np.array([0.3, 0.8, 1.0, 0.7, 0.3])
    frame = int(rng.uniform(0.5, 1.5) * fps)
    while frame + len(shape) < num_frames:
        blink[frame: frame + len(shape)] = shape
        frame += int(rng.uniform(2.0, 4.0) * fps)
    return SampleMotion(angles, shift, jaw, blink)


def head_motion(scene: SampleScene, motion: SampleMotion, frame: int) -> np.ndarray:
    """[4, 4] rigid transform (camera space) applied to the head at `frame`."""
    rot = head_rotation(motion.head_angles_deg[frame])
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = scene.head_pivot - rot @ scene.head_pivot + motion.head_shift_cm[frame]
    return out


def pose_vertices(scene: SampleScene, motion: SampleMotion, frame: int, max_jaw_deg: float = 8.0) -> np.ndarray:
    """[V, 3] camera-space vertices of `frame`: blink, then jaw, then the head (weighted down the neck)."""
    verts = scene.rest.copy()
    verts[scene.upper_lids] += 0.85 * motion.blink[frame] * (scene.rest[scene.lower_lids] - scene.rest[scene.upper_lids])
    jaw = np.deg2rad(max_jaw_deg) * motion.jaw_open[frame] * scene.jaw_weight
    jaw_rot = _rotation(jaw[:, None] * scene.jaw_axis)
    verts = scene.jaw_pivot + np.einsum("vij,vj->vi", jaw_rot, verts - scene.jaw_pivot)
    # The head's rotation applied in proportion to each vertex's weight (whole on the head, less down the neck).
    full = _rotation_vector(head_rotation(motion.head_angles_deg[frame]))
    rot = _rotation(scene.head_weight[:, None] * full)
    verts = scene.head_pivot + np.einsum("vij,vj->vi", rot, verts - scene.head_pivot)
    return verts + scene.head_weight[:, None] * motion.head_shift_cm[frame]


def _rotation_vector(matrix: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(matrix).as_rotvec()


def render(scene: SampleScene, verts: np.ndarray) -> np.ndarray:
    """Draw the posed scene: painter-ordered triangles textured by per-triangle affine maps over a mouth
    interior (dark, with upper teeth), at twice the size and then downsampled for smooth edges."""
    import cv2

    k = 2
    size = scene.size * k
    pix = (verts[:, :2] / verts[:, 2:3] * scene.focal + scene.size / 2) * k
    # Pixels no triangle reaches (an edge the head uncovers) show the photo as it was.
    canvas = cv2.resize(scene.texture, (size, size), interpolation=cv2.INTER_AREA)
    mouth = np.round(pix[scene.mouth] * 4).astype(np.int32)
    cv2.fillPoly(canvas, [mouth], (52, 18, 22), lineType=cv2.LINE_AA, shift=2)
    lip = pix[scene.upper_lip]
    width = np.linalg.norm(lip[-1] - lip[0])
    teeth = np.concatenate([lip, lip[::-1] + (0, 0.16 * width)])
    teeth_mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(teeth_mask, [np.round(teeth * 4).astype(np.int32)], 1, shift=2)
    mouth_mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mouth_mask, [mouth], 1, shift=2)
    canvas[(teeth_mask & mouth_mask).astype(bool)] = (226, 218, 205)

    tris = scene.triangles
    depth = verts[tris, 2].mean(1)
    ids = np.full((size, size), -1, np.int32)
    corners = np.round(pix[tris] * 16).astype(np.int32)
    for f in np.argsort(-depth).tolist():  # far to near
        cv2.fillConvexPoly(ids, corners[f], f, lineType=cv2.LINE_8, shift=4)

    # Affine map per triangle from output pixels to texture pixels.
    dst = np.concatenate([pix[tris], np.ones((len(tris), 3, 1))], 2)  # [F, 3, 3] rows are (x, y, 1)
    src = scene.rest_pixels[tris] * scene.texture_scale  # [F, 3, 2]
    det = np.linalg.det(dst)
    safe = np.where(np.abs(det) > 1e-9, 1.0, 0.0)[:, None, None]
    affine = np.linalg.solve(np.where(safe > 0, dst, np.eye(3)), src)  # [F, 3, 2]: (x, y, 1) @ A = src
    a = affine.astype(np.float32)[np.maximum(ids, 0)]  # [size, size, 3, 2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    map_x = xs * a[..., 0, 0] + ys * a[..., 1, 0] + a[..., 2, 0]
    map_y = xs * a[..., 0, 1] + ys * a[..., 1, 1] + a[..., 2, 1]
    warped = cv2.remap(scene.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    covered = (ids >= 0)[..., None]
    out = np.where(covered, warped, canvas)
    return cv2.resize(out, (scene.size, scene.size), interpolation=cv2.INTER_AREA)
