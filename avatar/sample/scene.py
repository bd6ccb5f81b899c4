"""The built-in sample's 3D scene: a public-domain portrait lifted into a textured, rigged 2.5D mesh.

The face is MediaPipe's 468-point mesh found on the photo, with its relative depth; the hair and skull
are a shell of points on an ellipsoid inside the head's silhouette; the neck, torso and background are a
grid. Every vertex knows how strongly it follows the head (1 on the head, fading down the neck, 0 on
the torso and background) and the jaw, so the scene can turn its head, open its mouth and blink.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.face_mesh import (FACE_OVAL, LEFT_EYE_LOWER_LID, LEFT_EYE_UPPER_LID, LIPS_INNER, MOUTH_CORNERS,
                              RIGHT_EYE_LOWER_LID, RIGHT_EYE_UPPER_LID)

CANONICAL_CHEEK_WIDTH_CM = 15.3
"""Distance between landmarks 234 and 454 on MediaPipe's canonical face."""
UPPER_INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)


@dataclass
class SampleScene:
    texture: np.ndarray  # [S*k, S*k, 3] uint8 RGB, the cropped photo at k times the output size
    texture_scale: float  # texture pixels per output pixel
    size: int  # output frames are size x size
    focal: float  # pixels, principal point at the centre
    rest: np.ndarray  # [V, 3] camera-space vertices at rest (centimetres)
    rest_pixels: np.ndarray  # [V, 2] their projections (output pixels)
    triangles: np.ndarray  # [F, 3] int
    head_weight: np.ndarray  # [V] 1 follows the head, 0 stays
    jaw_weight: np.ndarray  # [V] 1 follows the jaw
    upper_lids: np.ndarray  # [L] vertex ids of both upper eyelids
    lower_lids: np.ndarray  # [L] matching lower-eyelid ids
    mouth: np.ndarray  # [20] inner-lip contour vertex ids
    upper_lip: np.ndarray  # [11] upper inner-lip vertex ids, corner to corner
    head_pivot: np.ndarray  # [3] where the neck turns
    jaw_pivot: np.ndarray  # [3] where the jaw hinges
    jaw_axis: np.ndarray  # [3] unit hinge axis (towards the subject's left)

    @property
    def intrinsics(self) -> np.ndarray:
        c = self.size / 2
        return np.array([[self.focal, 0, c], [0, self.focal, c], [0, 0, 1]], np.float32)


def _crop_box(landmarks: np.ndarray, width: int, height: int, face_fraction: float = 0.42) -> tuple[int, int, int]:
    top, chin = landmarks[10, :2], landmarks[152, :2]
    face_h = float(np.linalg.norm(chin - top))
    side = int(min(width, height, round(face_h / face_fraction)))
    cx, cy = landmarks[:468, 0].mean(), (top[1] + chin[1]) / 2
    x = int(np.clip(round(cx - side / 2), 0, width - side))
    y = int(np.clip(round(cy - 0.45 * side), 0, height - side))
    return x, y, side


def _lift(pixels: np.ndarray, depth_cm: np.ndarray, focal: float, centre: float) -> np.ndarray:
    """Camera-space points that project to `pixels` at distance `depth_cm`."""
    xy = (pixels - centre) * depth_cm[:, None] / focal
    return np.concatenate([xy, depth_cm[:, None]], 1)


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    import cv2

    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) > 0 for x, y in points])


def build_scene(photo: np.ndarray, landmarks: np.ndarray, person: np.ndarray, size: int,
                focal_factor: float = 3.0, texture_factor: int = 2) -> SampleScene:
    """Rig `photo` (RGB) given its 478 landmarks (x, y, z in photo pixels) and its person mask."""
    import cv2
    from scipy.spatial import Delaunay

    from avatar.preprocess.segment import head_region

    height, width = photo.shape[:2]
    x0, y0, side = _crop_box(landmarks, width, height)
    scale = size / side
    texture = cv2.resize(photo[y0:y0 + side, x0:x0 + side], (size * texture_factor,) * 2,
                         interpolation=cv2.INTER_AREA if side >= size * texture_factor else cv2.INTER_CUBIC)
    face_px = (landmarks[:468, :2] - (x0, y0)) * scale
    face_depth_px = landmarks[:468, 2] * scale
    person = cv2.resize(person[y0:y0 + side, x0:x0 + side].astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0

    focal = focal_factor * size
    centre = size / 2
    cm_per_px = CANONICAL_CHEEK_WIDTH_CM / np.linalg.norm(face_px[454] - face_px[234])
    distance = focal * cm_per_px
    face_h = np.linalg.norm(face_px[152] - face_px[10])
    face_w = np.linalg.norm(face_px[454] - face_px[234])
    rest_face = _lift(face_px, distance + face_depth_px * cm_per_px, focal, centre)

    # Hair and skull: points inside the head silhouette around the face, on an ellipsoid's front half.
    head_mask = (person & head_region(np.concatenate([face_px, np.zeros((10, 2))]), (size, size)))
    face_mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(face_mask, [np.round(face_px[list(FACE_OVAL)]).astype(np.int32)], 1)
    shell_mask = head_mask & ~cv2.dilate(face_mask, np.ones((5, 5), np.uint8)).astype(bool)
    step = max(4, size // 40)
    gy, gx = np.mgrid[step // 2: size: step, step // 2: size: step]
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
    contours, _ = cv2.findContours(head_mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=len).reshape(-1, 2)[:: max(2, step // 2)].astype(np.float64) if contours else np.zeros((0, 2))
    on_shell = shell_mask[grid[:, 1].astype(int), grid[:, 0].astype(int)]
    shell_px = np.concatenate([grid[on_shell], outline])
    head_centre = np.array([face_px[:, 0].mean(), face_px[[10, 152], 1].mean() - 0.1 * face_h])
    radii = np.array([0.75 * face_w, 0.75 * face_h])
    ellipse = np.clip(1 - (((shell_px - head_centre) / radii) ** 2).sum(1), 0, 1)
    shell_depth = distance + 2.0 - 8.0 * np.sqrt(ellipse)  # silhouette at the head's centre depth
    # Next to the face the shell takes the depth of the nearest face-outline vertices, so face and hair
    # form one continuous surface (a step in depth there would tear the texture when the head turns).
    oval = np.array(FACE_OVAL)
    gaps = np.linalg.norm(shell_px[:, None] - face_px[oval][None], axis=-1)  # [S, 36]
    nearest = np.exp(-((gaps / (0.05 * face_w)) ** 2))
    oval_depth = (nearest * rest_face[oval, 2]).sum(1) / np.maximum(nearest.sum(1), 1e-9)
    blend = np.exp(-((gaps.min(1) / (0.15 * face_w)) ** 2))
    shell_depth = blend * oval_depth + (1 - blend) * shell_depth
    rest_shell = _lift(shell_px, shell_depth, focal, centre)

    # Neck, torso and background: a grid outside the head, the neck part following the head partly.
    keep = ~cv2.dilate(head_mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)[grid[:, 1].astype(int), grid[:, 0].astype(int)]
    border = np.concatenate([[(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)],
                             [(t, 0) for t in range(step, size - 1, step)], [(t, size - 1) for t in range(step, size - 1, step)],
                             [(0, t) for t in range(step, size - 1, step)], [(size - 1, t) for t in range(step, size - 1, step)]]).astype(np.float64)
    back_px = np.concatenate([grid[keep], border])
    below_chin = (back_px[:, 1] - face_px[152, 1]) / face_h
    beside = np.abs(back_px[:, 0] - face_px[152, 0]) / face_w
    neck = np.clip(1 - below_chin / 0.5, 0, 1) * np.clip(1.2 - beside, 0, 1) * (below_chin > -0.6)
    # Background near the head follows it a little, fading with distance: a smooth stretch instead of tears.
    gap = cv2.distanceTransform((~head_mask).astype(np.uint8), cv2.DIST_L2, 5)
    near = np.exp(-gap[back_px[:, 1].astype(int), back_px[:, 0].astype(int)] / (0.15 * face_w))
    follow = np.maximum(neck, near)
    rest_back = _lift(back_px, distance + 25.0 - 20.0 * neck, focal, centre)

    rest = np.concatenate([rest_face, rest_shell, rest_back])
    pixels = np.concatenate([face_px, shell_px, back_px])
    head_weight = np.concatenate([np.ones(len(face_px) + len(shell_px)), follow])

    # Jaw: the face below the line through the mouth corners, fading towards it; the neck partly.
    a, b = face_px[MOUTH_CORNERS[0]], face_px[MOUTH_CORNERS[1]]
    normal = np.array([-(b - a)[1], (b - a)[0]]) / np.linalg.norm(b - a)
    normal = normal if normal[1] > 0 else -normal
    below = ((pixels - a) @ normal) / face_h
    lateral = np.clip(1.3 - np.abs(pixels[:, 0] - (a[0] + b[0]) / 2) / (0.5 * face_w), 0, 1)
    jaw_weight = np.clip((below + 0.02) / 0.1, 0, 1) * lateral
    jaw_weight[len(face_px):] *= head_weight[len(face_px):]
    jaw_weight[list(UPPER_INNER_LIP)] = 0.0
    jaw_weight[[88, 178, 87, 14, 317, 402, 318, 95, 324]] = 1.0

    triangles = Delaunay(pixels).simplices
    centroids = pixels[triangles].mean(1)
    in_mouth = _inside(centroids, face_px[list(LIPS_INNER)])
    u, v = pixels[triangles[:, 1]] - pixels[triangles[:, 0]], pixels[triangles[:, 2]] - pixels[triangles[:, 0]]
    area = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    triangles = triangles[~in_mouth & (np.abs(area) > 1e-3)]

    head_pivot = _lift(np.array([[face_px[152, 0], face_px[152, 1] + 0.3 * face_h]]), np.array([distance + 6.0]), focal, centre)[0]
    jaw_pivot = (rest_face[234] + rest_face[454]) / 2 + np.array([0.0, 1.0, 1.0])
    jaw_axis = (rest_face[454] - rest_face[234]) / np.linalg.norm(rest_face[454] - rest_face[234])
    return SampleScene(
        texture=texture, texture_scale=float(texture_factor), size=size, focal=float(focal), rest=rest,
        rest_pixels=pixels, triangles=triangles.astype(np.int64), head_weight=head_weight, jaw_weight=jaw_weight,
        upper_lids=np.array(RIGHT_EYE_UPPER_LID + LEFT_EYE_UPPER_LID), lower_lids=np.array(RIGHT_EYE_LOWER_LID + LEFT_EYE_LOWER_LID),
        mouth=np.array(LIPS_INNER), upper_lip=np.array(UPPER_INNER_LIP),
        head_pivot=head_pivot, jaw_pivot=jaw_pivot, jaw_axis=jaw_axis,
    )
