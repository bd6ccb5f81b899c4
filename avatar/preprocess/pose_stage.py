"""Stage `pose`: landmarks.npz -> tracking.npz (the data contract of a tracked video).

tracking.npz: landmarks [T, 478, 2] pixels; blendshapes [T, 52] and their names; head_pose [T, 4, 4]
camera-from-head (centimetres); intrinsics [3, 3]; head_vertices [468, 3] the person's template in head
coordinates and head_triangles [898, 3]; valid [T] (face tracked or gap interpolated); plus tracked,
interpolated, mediapipe_head_pose (MediaPipe's own matrices in the same convention, for comparison),
stable_landmarks and stable_residuals (pixels) for the quality report.
"""
from __future__ import annotations

import numpy as np

from avatar.device import resolve_device
from avatar.face_mesh import load_face_template
from avatar.geometry import intrinsics_matrix, mediapipe_to_camera
from avatar.io_utils import atomic_save_npz, load_npz
from avatar.model_files import model_path
from avatar.preprocess.pose import STABLE_LANDMARKS, solve_head_poses
from avatar.preprocess.stages import StageContext
from avatar.preprocess.track import read_manifest


def run_pose(ctx: StageContext) -> None:
    cfg = ctx.config.pose
    manifest = read_manifest(ctx)
    width, height = manifest["width"], manifest["height"]
    raw = load_npz(ctx.folder.landmarks)
    template = load_face_template(model_path("face_landmarker", ctx.config.track.model_path))
    use = raw["tracked"] & ~raw["interpolated"]
    solution = solve_head_poses(
        raw["pose_landmarks"], use, template.vertices, width, height, focal=cfg.focal_px, fit_shape=cfg.fit_template,
        smoothness=cfg.smoothness, robust_scale=cfg.robust_scale_px, iterations=cfg.iterations, log=ctx.log.info,
        device=resolve_device(ctx.config.compute.device),
    )
    atomic_save_npz(
        ctx.folder.tracking,
        landmarks=raw["landmarks"].astype(np.float32),
        blendshapes=raw["blendshapes"].astype(np.float32),
        blendshape_names=raw["blendshape_names"],
        head_pose=solution.camera_from_head(),
        intrinsics=intrinsics_matrix(solution.focal, width, height),
        head_vertices=solution.template,
        head_triangles=template.triangles,
        valid=raw["valid"],
        tracked=raw["tracked"],
        interpolated=raw["interpolated"],
        mediapipe_head_pose=mediapipe_to_camera(raw["mediapipe_matrix"]),
        stable_landmarks=STABLE_LANDMARKS.astype(np.int32),
        stable_residuals=solution.stable_residuals,
    )
