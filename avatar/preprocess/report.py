"""Stage `report`: quality.json (numbers) and preview.mp4 (landmarks, head-pose axes and masks drawn
over the video, with its audio) so a person can see at a glance whether tracking worked.

Frames of 512 pixels and more are previewed at half size: enough to judge tracking, and four times
cheaper to draw and encode."""
from __future__ import annotations

import contextlib

import numpy as np

from avatar.geometry import head_angles_deg, rotation_jitter_deg
from avatar.io_utils import atomic_write_json, load_npz
from avatar.preprocess.frames import ordered_map, read_rgb
from avatar.preprocess.segment import HEAD, MOUTH, TORSO
from avatar.preprocess.stages import StageContext
from avatar.preprocess.track import read_manifest

_TINT_LUT = np.zeros((1, 256, 3), np.uint8)  # label -> tint colour, for cv2.LUT
_TINT_LUT[0, [TORSO, HEAD, MOUTH]] = [(40, 200, 90), (60, 120, 255), (255, 60, 60)]
AXIS_CM = 6.0


def quality_report(manifest: dict, tracking: dict, features: dict, masks_nonempty: float, background_seen: float,
                   faces_in_view: np.ndarray) -> dict:
    tracked, valid = tracking["tracked"], tracking["valid"]
    use = tracked & ~tracking["interpolated"]
    residuals = tracking["stable_residuals"][use]
    width = manifest["width"]
    median_px = float(np.median(residuals)) if residuals.size else float("nan")
    ours = rotation_jitter_deg(tracking["head_pose"], use)
    raw = rotation_jitter_deg(tracking["mediapipe_head_pose"], use)
    depth = tracking["head_pose"][:, 2, 3]
    log_scale = np.log(tracking["intrinsics"][0, 0] / np.maximum(depth, 1e-6))
    scale_jitter = np.sqrt(np.mean(np.diff(log_scale, 2) ** 2)) * 100 if len(depth) > 2 else 0.0
    angles = head_angles_deg(tracking["head_pose"])
    axes = ("yaw", "pitch", "roll")
    rows = {k: int(len(features[k])) for k in ("ppg", "mel", "energy", "pitch")}
    return {
        "frames": int(len(tracked)),
        "tracked_fraction": round(float(tracked.mean()), 4),
        "interpolated_frames": int(tracking["interpolated"].sum()),
        "invalid_frames": int((~valid).sum()),
        "median_reprojection_px": round(median_px, 3),
        "median_reprojection_px_at_512": round(median_px * 512 / width, 3),
        "p90_reprojection_px": round(float(np.percentile(residuals, 90)), 3) if residuals.size else None,
        "rotation_jitter_deg": {a: round(float(v), 4) for a, v in zip(axes, ours)},
        "mediapipe_rotation_jitter_deg": {a: round(float(v), 4) for a, v in zip(axes, raw)},
        "scale_jitter_percent": round(float(scale_jitter), 4),
        "head_angle_range_deg": {a: [round(float(angles[:, i].min()), 1), round(float(angles[:, i].max()), 1)] for i, a in enumerate(axes)},
        "focal_px": round(float(tracking["intrinsics"][0, 0]), 2),
        "head_distance_cm": round(float(np.median(depth)), 2),
        "max_faces_in_view": int(faces_in_view.max(initial=0)),
        "masks_nonempty_fraction": round(masks_nonempty, 4),
        "background_observed_fraction": round(background_seen, 4),
        "feature_rows": rows,
        "feature_rows_match_frames": all(v == len(tracked) for v in rows.values()),
        "voiced_fraction": round(float((features["pitch"] > 0).mean()), 4),
    }


def draw_overlay(rgb: np.ndarray, labels: np.ndarray, landmarks: np.ndarray, stable: np.ndarray,
                 pose: np.ndarray, intrinsics: np.ndarray, valid: bool) -> np.ndarray:
    """The frame with part masks tinted, landmarks dotted (stable ones green) and the head's axes.

    `rgb` may be smaller than the frame the landmarks and intrinsics refer to (a half-size preview).
    """
    import cv2

    scale = rgb.shape[1] / labels.shape[1]
    if scale != 1:
        labels = cv2.resize(labels, rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    tint = cv2.LUT(cv2.merge([labels, labels, labels]), _TINT_LUT)
    out = rgb.copy()
    cv2.copyTo(cv2.addWeighted(rgb, 0.65, tint, 0.35, 0), labels, out)
    radius = max(1, round(rgb.shape[1] / 300))
    h, w = out.shape[:2]
    dots = np.round(landmarks[:468:2] * scale).astype(int)
    inside = (dots[:, 0] >= 0) & (dots[:, 0] < w) & (dots[:, 1] >= 0) & (dots[:, 1] < h)
    out[dots[inside, 1], dots[inside, 0]] = (255, 255, 255) if valid else (255, 80, 80)
    for dy in range(-radius + 1, radius):
        for dx in range(-radius + 1, radius):
            pts = np.round(landmarks[stable] * scale).astype(int) + (dx, dy)
            ok = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
            out[pts[ok, 1], pts[ok, 0]] = (0, 255, 0)
    origin = pose[:3, 3]
    points = np.stack([origin] + [origin + AXIS_CM * pose[:3, i] for i in range(3)])
    pix = ((points[:, :2] / points[:, 2:3]) * intrinsics[[0, 1], [0, 1]] + intrinsics[:2, 2]) * scale
    for i, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 128, 255))):
        cv2.line(out, tuple(np.round(pix[0]).astype(int)), tuple(np.round(pix[i + 1]).astype(int)), colour, radius, cv2.LINE_AA)
    return out


def run_report(ctx: StageContext) -> None:
    import cv2

    from avatar.audio.io import load_audio
    from avatar.video_writer import VideoWriter

    manifest = read_manifest(ctx)
    count, fps, width, height = manifest["num_frames"], manifest["fps"], manifest["width"], manifest["height"]
    tracking = load_npz(ctx.folder.tracking)
    features = load_npz(ctx.folder.features)
    stable = tracking["stable_landmarks"]
    nonempty = 0
    half = min(width, height) >= 512
    writer = contextlib.nullcontext()
    if ctx.config.report.preview:
        audio = load_audio(ctx.folder.audio, manifest["audio_sample_rate"])
        size = (width // 2, height // 2) if half else (width, height)
        writer = VideoWriter(ctx.folder.preview, fps, size[0] - size[0] % 2, size[1] - size[1] % 2, audio=audio,
                             sample_rate=manifest["audio_sample_rate"], crf=26, preset="ultrafast")
    with writer as preview:

        def frame(i: int) -> tuple[bool, np.ndarray | None]:
            labels = cv2.imread(str(ctx.folder.mask_path(i)), cv2.IMREAD_GRAYSCALE)
            has_head = bool(tracking["tracked"][i] and (labels == HEAD).any())
            if not preview:
                return has_head, None
            image = draw_overlay(read_rgb(ctx.folder.frame_path(i), half=half), labels, tracking["landmarks"][i], stable,
                                 tracking["head_pose"][i], tracking["intrinsics"], bool(tracking["valid"][i]))
            return has_head, image[: image.shape[0] - image.shape[0] % 2, : image.shape[1] - image.shape[1] % 2]

        for has_head, image in ctx.progress(ordered_map(frame, range(count), threads=2), count, "report"):
            nonempty += has_head
            if image is not None:
                preview.write(image)
    seen = cv2.imread(str(ctx.folder.background_seen), cv2.IMREAD_GRAYSCALE)
    report = quality_report(manifest, tracking, features, nonempty / max(1, int(tracking["tracked"].sum())), float((seen > 0).mean()),
                            load_npz(ctx.folder.landmarks)["faces_in_view"])
    atomic_write_json(ctx.folder.quality, report)
    ctx.log.info("report: %s", report)
