"""Stage `torso`: frames + landmarks -> torso.npz, how the shoulders and chest moved in each frame.

The torso moves on its own (breathing, shifting in the chair), not only with the head, so the head pose
cannot tell where the collar is. Each frame's region below the chin, split into a left and a right half
at the face, is matched to a reference (the median of frames spread over the training part) by phase
correlation: the sub-pixel shift of each half is the torso signal, `shift` [T, 4] = (dx, dy) of the left
half then of the right half, in pixels of the processed frame (difference of the halves: tilt and
shrugs). It is measured from the frame itself, so held-out frames get theirs the way tracking gets
their head pose; audio-driven renders stitch the person's own torso motion along with the head's.
"""
from __future__ import annotations

import numpy as np

from avatar.data.images import read_rgb
from avatar.io_utils import atomic_save_npz, load_npz
from avatar.preprocess.stages import StageContext
from avatar.preprocess.track import read_manifest

REFERENCE_FRAMES = 32
MIN_REGION_FRACTION = 0.12  # below this much frame height under the chin, no torso is measured


def torso_region(landmarks: np.ndarray, valid: np.ndarray, size: int) -> tuple[int, int] | None:
    """(first row of the region below the chin, column splitting it at the face), or None without a torso."""
    tracked = landmarks[valid] if valid.any() else landmarks
    chin_y = float(np.median(tracked[:, 152, 1]))
    face_x = float(np.median(tracked[:, 1, 0]))  # nose tip
    top = int(round(chin_y + 0.03 * size))
    if size - top < MIN_REGION_FRACTION * size:
        return None
    return top, int(np.clip(round(face_x), size // 4, 3 * size // 4))


def measure_shifts(grays: list[np.ndarray], reference: np.ndarray, split: int) -> np.ndarray:
    """[T, 4] (dx, dy) of the left and right halves of each grey image [h, w] against `reference`: phase
    correlation for the coarse shift, refined by ECC alignment (which a failed refinement leaves as it is)."""
    import cv2

    halves = ((slice(None), slice(0, split)), (slice(None), slice(split, None)))
    windows = [cv2.createHanningWindow(reference[h].shape[::-1], cv2.CV_64F) for h in halves]
    refs = [reference[h].astype(np.float32) for h in halves]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-4)
    out = np.zeros((len(grays), 4), np.float32)
    for t, gray in enumerate(grays):
        for k, h in enumerate(halves):
            part = gray[h].astype(np.float32)
            (dx, dy), _ = cv2.phaseCorrelate(refs[k].astype(np.float64), part.astype(np.float64), windows[k])
            warp = np.float32([[1, 0, dx], [0, 1, dy]])
            try:
                _, warp = cv2.findTransformECC(refs[k], part, warp, cv2.MOTION_TRANSLATION, criteria, None, 5)
            except cv2.error:
                pass  # textureless or too far: the phase-correlation shift stands
            out[t, 2 * k: 2 * k + 2] = warp[:, 2]
    return out


def run_torso(ctx: StageContext) -> None:
    import cv2

    manifest = read_manifest(ctx)
    count, size = manifest["num_frames"], manifest["width"]
    raw = load_npz(ctx.folder.landmarks)
    region = torso_region(raw["landmarks"], raw["valid"], size)
    if region is None:
        atomic_save_npz(ctx.folder.torso, shift=np.zeros((count, 4), np.float32), region=np.array([size, size // 2]))
        return
    top, split = region
    half = size >= 512  # the JPEG decoder halves the image for free; shifts are scaled back after
    factor = 2 if half else 1
    top_s, split_s = top // factor, split // factor

    def gray(i: int) -> np.ndarray:
        return cv2.cvtColor(read_rgb(ctx.folder.frame_path(i), half=half), cv2.COLOR_RGB2GRAY)[top_s:]

    train = manifest["split"]["train"]
    picks = np.linspace(train[0], train[1] - 1, min(REFERENCE_FRAMES, train[1] - train[0])).round().astype(int)
    reference = np.median(np.stack([gray(int(i)) for i in picks]), axis=0).astype(np.float32)
    grays = [gray(i) for i in ctx.progress(range(count), count, "torso")]
    shift = measure_shifts(grays, reference, split_s) * factor
    atomic_save_npz(ctx.folder.torso, shift=shift.astype(np.float32), region=np.array([top, split]))
