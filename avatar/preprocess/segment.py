"""Stage `segment`: person mattes + landmarks -> per-frame part labels and a static background plate.

Labels (masks/*.png, one byte per pixel): 0 background, 1 torso (neck, shoulders, clothes), 2 head (face
and hair), 3 mouth interior. The head is the part of the person above the jaw line, extended sideways at
ear level, plus the face oval itself (so a tracked frame always has a head); the mouth interior is the
inside of the inner lip contour. The background plate is the per-pixel median of sampled frames where
the (dilated) person is absent; pixels the person always covers are inpainted.
"""
from __future__ import annotations

import numpy as np

from avatar.data.images import read_matte
from avatar.face_mesh import FACE_OVAL, JAW_LINE, LIPS_INNER
from avatar.io_utils import atomic_dir, atomic_path, load_npz
from avatar.preprocess.frames import ordered_map, read_rgb
from avatar.preprocess.stages import StageContext
from avatar.preprocess.track import read_manifest

BACKGROUND, TORSO, HEAD, MOUTH = 0, 1, 2, 3


def head_region(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: the half-plane-like region above the jaw line, extended sideways at ear level."""
    import cv2

    h, w = shape
    jaw = landmarks[list(JAW_LINE)].astype(np.float64)
    up = landmarks[10] - landmarks[152]
    face_height = np.linalg.norm(up) + 1e-6
    up = up / face_height
    jaw = jaw - up * 0.02 * face_height  # a little below the chin edge, which the tracker places tightly
    out_right = jaw[0] - jaw[-1]
    out_right = out_right / (np.linalg.norm(out_right) + 1e-6)
    far = 4.0 * max(h, w)
    polygon = np.concatenate([
        [jaw[0] + far * out_right + far * up, jaw[0] + far * out_right],
        jaw,
        [jaw[-1] - far * out_right, jaw[-1] - far * out_right + far * up],
    ])
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
    return mask.astype(bool)


def _polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
    return mask.astype(bool)


def part_labels(person: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """[H, W] uint8 labels from a boolean person mask and one frame's landmarks [478, 2] (pixels)."""
    shape = person.shape
    face = _polygon_mask(landmarks[list(FACE_OVAL)], shape)
    head = (person & head_region(landmarks, shape)) | face
    labels = np.where(person, TORSO, BACKGROUND).astype(np.uint8)
    labels[head] = HEAD
    labels[_polygon_mask(landmarks[list(LIPS_INNER)], shape) & head] = MOUTH
    return labels


def background_plate(frames: list[np.ndarray], covered: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of the frames where the pixel is not covered; holes inpainted.

    Returns (RGB uint8 [H, W, 3], [H, W] bool: pixel seen uncovered at least once).
    """
    import cv2

    stack = np.stack(frames)  # [N, H, W, 3] uint8
    hidden = np.stack(covered)  # [N, H, W] bool
    h, w = stack.shape[1:3]
    seen_count = (~hidden).sum(0)  # [H, W]
    seen = seen_count > 0
    plate = np.zeros((h, w, 3), np.uint8)
    for top in range(0, h, 64):  # rows in chunks keep the sorted copy small
        rows = slice(top, min(top + 64, h))
        # Hidden samples sort last (value 256); the median of the n seen ones is then at (n - 1) // 2.
        values = np.where(hidden[:, rows, :, None], np.uint16(256), stack[:, rows].astype(np.uint16))
        values.sort(axis=0)
        middle = np.maximum(seen_count[rows] - 1, 0) // 2
        median = np.take_along_axis(values, middle[None, :, :, None].repeat(3, -1), axis=0)[0]
        plate[rows] = np.where(seen[rows, :, None], median, 0).astype(np.uint8)
    holes = ~seen
    if holes.any() and seen.any():
        scale = 4 if min(h, w) >= 128 else 1
        small = cv2.resize(plate, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
        # A small cell with any hole pixel in it is a hole: its average holds the hole's black, which would
        # otherwise stay in the fill as a dark outline of the person.
        small_holes = (cv2.resize(holes.astype(np.float32), (w // scale, h // scale), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
        filled = cv2.inpaint(small, small_holes, 5, cv2.INPAINT_TELEA)
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
        plate[holes] = filled[holes]
    return plate, seen


def run_segment(ctx: StageContext) -> None:
    import cv2

    manifest = read_manifest(ctx)
    count = manifest["num_frames"]
    cfg = ctx.config.segment
    landmarks = load_npz(ctx.folder.landmarks)["landmarks"]
    sample_ids = set(np.linspace(0, count - 1, min(cfg.background_samples, count)).round().astype(int).tolist())
    samples, covered = [], []
    size = manifest["width"]
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(2, size // 40) + 1,) * 2)
    with atomic_dir(ctx.folder.masks) as out:

        def segment(i: int) -> tuple[np.ndarray, np.ndarray] | None:
            matte = read_matte(ctx.folder.matte_path(i), (manifest["width"], manifest["height"]))
            labels = part_labels(matte >= round(cfg.threshold * 255), landmarks[i])
            cv2.imwrite(str(out / f"{i:06d}.png"), labels)
            if i not in sample_ids:
                return None
            return read_rgb(ctx.folder.frame_path(i)), cv2.dilate(((matte > 25) | (labels > 0)).astype(np.uint8), grow).astype(bool)

        for sample in ctx.progress(ordered_map(segment, range(count), threads=2), count, "segment"):
            if sample is not None:
                samples.append(sample[0])
                covered.append(sample[1])
    plate, seen = background_plate(samples, covered)
    ctx.log.info("segment: background plate observed on %.1f %% of its pixels", 100 * seen.mean())
    with atomic_path(ctx.folder.background_seen) as tmp:
        cv2.imwrite(str(tmp), seen.astype(np.uint8) * 255)
    with atomic_path(ctx.folder.background) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(plate, cv2.COLOR_RGB2BGR))
