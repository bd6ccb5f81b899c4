"""Stage `track`: MediaPipe Face Landmarker on every frame, twice.

Image mode (the face found anew in each frame) gives the landmarks, blendshapes and MediaPipe matrix that the
motion code is made of; video mode (the face followed from the previous frame's crop) gives `pose_landmarks`,
what the head pose is solved from. The two disagree by about 1.8 px on the lips (at 512 px): video mode leans
on the last frame's crop, so its lips sit away from where the same detector finds them in the frame alone,
while its head outline is steadier. Measured on clip 04 (preview recipe, held-out tail): image mode for
everything gave mouth LMD 1.08 px against video mode's 1.60 but lost 0.55 dB in the silhouette band; this split
gave 1.13 px, +0.28 dB full frame and +1.5 dB mouth PSNR, with the silhouette back within 0.2 dB.

Writes `landmarks.npz`: 478 landmarks in pixels (+ relative depth), 52 blendshapes, MediaPipe's facial
transformation matrix and the pose landmarks per frame. Gaps up to `track.max_gap_s` are interpolated and
flagged; when several people are in view, the largest face is followed and kept consistent over time.
"""
from __future__ import annotations

import json

import numpy as np

from avatar.errors import AvatarError
from avatar.io_utils import atomic_save_npz
from avatar.preprocess.frames import iter_frames
from avatar.preprocess.stages import StageContext

NUM_LANDMARKS = 478
NUM_BLENDSHAPES = 52


def read_manifest(ctx: StageContext) -> dict:
    return json.loads(ctx.folder.manifest.read_text())


def _face_size(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[152, :2] - landmarks[10, :2]))


def choose_face(faces: list, previous_centre: np.ndarray | None) -> int | None:
    """Index of the face to follow: the one nearest the previous choice, else the largest."""
    if not faces:
        return None
    sizes = [_face_size(f.landmarks) for f in faces]
    if previous_centre is not None and len(faces) > 1:
        distances = [np.linalg.norm(f.landmarks[:, :2].mean(0) - previous_centre) / max(s, 1e-6) for f, s in zip(faces, sizes)]
        nearest = int(np.argmin(distances))
        if distances[nearest] < 0.5:
            return nearest
    return int(np.argmax(sizes))


def fill_gaps(values: np.ndarray, found: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate runs of missing frames along axis 0.

    Returns (filled values, interpolated flags, valid flags). Gaps up to `max_gap` frames between two found
    frames are interpolated linearly; short gaps at either end hold the nearest found frame. Longer gaps
    also hold the nearest found values (so arrays stay finite) but are not valid.
    """
    count = len(found)
    filled = values.copy()
    interpolated = np.zeros(count, bool)
    valid = found.copy()
    idx = np.flatnonzero(found)
    if len(idx) == 0:
        return filled, interpolated, valid
    flat = filled.reshape(count, -1)
    start = 0
    while start < count:
        if found[start]:
            start += 1
            continue
        end = start
        while end < count and not found[end]:
            end += 1
        before, after = start - 1, end  # found neighbours (may be out of range)
        length = end - start
        if before >= 0 and after < count:
            w = (np.arange(start, end) - before) / (after - before)
            flat[start:end] = (1 - w)[:, None] * flat[before] + w[:, None] * flat[after]
        else:
            flat[start:end] = flat[after if before < 0 else before]
        if length <= max_gap:
            interpolated[start:end] = True
            valid[start:end] = True
        start = end
    return filled, interpolated, valid


def _usable(faces: list) -> list:
    return [f for f in faces if len(f.landmarks) >= NUM_LANDMARKS and len(f.blendshapes) == NUM_BLENDSHAPES]


def run_track(ctx: StageContext) -> None:
    from avatar.model_files import model_path
    from avatar.preprocess.mediapipe_tasks import FaceLandmarker, opened

    manifest = read_manifest(ctx)
    count, width, height, fps = manifest["num_frames"], manifest["width"], manifest["height"], manifest["fps"]
    several = manifest["source"].get("faces_seen", 1) > 1
    model = model_path("face_landmarker", ctx.config.track.model_path)

    landmarks = np.zeros((count, NUM_LANDMARKS, 3), np.float32)
    blendshapes = np.zeros((count, NUM_BLENDSHAPES), np.float32)
    matrices = np.tile(np.eye(4, dtype=np.float32), (count, 1, 1))
    pose_landmarks = np.zeros((count, NUM_LANDMARKS, 2), np.float32)
    found = np.zeros(count, bool)
    faces_in_view = np.zeros(count, np.int32)
    centre = None
    faces_wanted = 2 if several else 1
    with opened(FaceLandmarker(model, video=False, num_faces=faces_wanted)) as tracker, \
            opened(FaceLandmarker(model, video=True, num_faces=faces_wanted)) as follower:
        for i, rgb in ctx.progress(iter_frames(ctx.folder, range(count)), count, "track"):
            faces = _usable(tracker.detect(rgb))
            followed = _usable(follower.detect(rgb, int(round(i * 1000 / fps))))
            faces_in_view[i] = len(faces)
            chosen = choose_face(faces, centre)
            if chosen is not None:
                face = faces[chosen]
                landmarks[i] = face.landmarks[:NUM_LANDMARKS] * (width, height, width)
                blendshapes[i] = face.blendshapes
                matrices[i] = face.matrix
                found[i] = True
                centre = landmarks[i, :, :2].mean(0)
            pose_chosen = choose_face(followed, centre)  # the same person as the image-mode choice
            if pose_chosen is not None:
                pose_landmarks[i] = followed[pose_chosen].landmarks[:NUM_LANDMARKS, :2] * (width, height)
            elif found[i]:  # the follower lost the face this frame: the pose uses this frame's own landmarks
                pose_landmarks[i] = landmarks[i, :, :2]
        names = tracker.blendshape_names

    tracked_fraction = float(found.mean()) if count else 0.0
    if tracked_fraction < ctx.config.track.min_tracked_fraction:
        raise AvatarError(
            f"no face was found in {100 * (1 - tracked_fraction):.0f} % of the frames of {ctx.source.name}; "
            "avatar needs one person facing the camera for most of the video"
        )
    if (faces_in_view > 1).any():
        ctx.log.warning("track: several faces in %d frames; following the largest one", int((faces_in_view > 1).sum()))

    max_gap = int(round(ctx.config.track.max_gap_s * fps))
    landmarks, interpolated, valid = fill_gaps(landmarks, found, max_gap)
    blendshapes, _, _ = fill_gaps(blendshapes, found, max_gap)
    matrices, _, _ = fill_gaps(matrices, found, max_gap)
    pose_landmarks, _, _ = fill_gaps(pose_landmarks, found, max_gap)
    atomic_save_npz(
        ctx.folder.landmarks,
        landmarks=landmarks[:, :, :2].copy(),
        landmarks_z=landmarks[:, :, 2].copy(),
        blendshapes=blendshapes,
        blendshape_names=np.array(names or [f"blendshape_{i}" for i in range(NUM_BLENDSHAPES)]),
        mediapipe_matrix=matrices,
        pose_landmarks=pose_landmarks,
        tracked=found,
        interpolated=interpolated,
        valid=valid,
        faces_in_view=faces_in_view,
    )
