"""Head pose solving: one focal length per video, a person-fitted head template and a smooth rigid pose
per frame, from tracked 2D landmarks and MediaPipe's canonical mesh.

1. Focal length: searched on a log grid (then refined) by the reprojection error of per-frame PnP of the
   template's stable landmarks on a sample of frames.
2. Template: each vertex of the canonical mesh moves to explain where its landmark is seen over many
   frames, with a pull back to the canonical shape (so depth the views do not show stays canonical).
3. Poses: a robust (Huber) reprojection error of the stable landmarks plus a second-difference
   smoothness prior on rotation and translation, both in pixel units, minimised jointly over all frames
   by Levenberg-Marquardt with sparse normal equations (the prior couples neighbouring frames only).
   Frames without a face get their pose from the prior alone.
Stable landmarks are those on the forehead, nose bridge, eye corners, temples and cheekbones:
never the mouth, jaw or brows, which move with expression.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avatar.geometry import FACING_CAMERA, intrinsics_matrix, project, rotvec_to_matrix

STABLE_LANDMARKS = np.array(sorted({
    # forehead
    10, 151, 9, 108, 337, 109, 338, 67, 297, 69, 299,
    # nose bridge and nose
    168, 6, 197, 195, 5, 4, 1,
    # eye corners
    33, 133, 362, 263,
    # temples and cheekbones
    127, 356, 162, 389, 21, 251, 143, 372, 117, 346, 119, 348, 121, 350, 34, 264,
}), dtype=np.int64)

FACE_RADIUS_CM = 8.0
"""Typical distance of the stable landmarks from the head's centre of rotation."""
BANDWIDTH = 17
"""Upper bandwidth of the pose system: the smoothness prior couples a frame's 6 parameters with the
next two frames' (2 * 6 + 5)."""


@dataclass
class PoseSolution:
    rotations: np.ndarray  # [T, 3, 3] camera-from-head
    translations: np.ndarray  # [T, 3] centimetres, camera space
    focal: float  # pixels
    template: np.ndarray  # [468, 3] head-frame vertices, centimetres
    stable_residuals: np.ndarray  # [T, K] reprojection error (pixels) of each stable landmark

    def camera_from_head(self) -> np.ndarray:
        out = np.tile(np.eye(4, dtype=np.float32), (len(self.rotations), 1, 1))
        out[:, :3, :3] = self.rotations
        out[:, :3, 3] = self.translations
        return out


def pnp(points2d: np.ndarray, points3d: np.ndarray, focal: float, width: int, height: int,
        guess: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Rigid pose of one frame: (rotation vector of R @ FACING_CAMERA.T, translation, RMS error px)."""
    import cv2

    K = intrinsics_matrix(focal, width, height).astype(np.float64)
    obj = points3d.astype(np.float64)
    img = points2d.astype(np.float64)
    if guess is None:
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, None, flags=cv2.SOLVEPNP_SQPNP)
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    else:
        rot = cv2.Rodrigues(np.asarray(guess[0], np.float64))[0] @ FACING_CAMERA
        rvec = cv2.Rodrigues(rot)[0]
        tvec = np.asarray(guess[1], np.float64).reshape(3, 1)
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    projected, _ = cv2.projectPoints(obj, rvec, tvec, K, None)
    rms = float(np.sqrt(((projected.reshape(-1, 2) - img) ** 2).sum(-1).mean()))
    return cv2.Rodrigues(cv2.Rodrigues(rvec)[0] @ FACING_CAMERA.T)[0].reshape(3), tvec.reshape(3), rms


def pnp_all(landmarks: np.ndarray, use: np.ndarray, template: np.ndarray, focal: float,
            width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame PnP on the stable landmarks, each frame starting from the previous one's pose.

    Frames not in `use` take the pose of the nearest frame that is.
    """
    count = len(landmarks)
    rotvecs = np.zeros((count, 3))
    translations = np.zeros((count, 3))
    guess = None
    obj = template[STABLE_LANDMARKS]
    for t in np.flatnonzero(use):
        r, tr, _ = pnp(landmarks[t, STABLE_LANDMARKS], obj, focal, width, height, guess)
        rotvecs[t], translations[t] = r, tr
        guess = (r, tr)
    idx = np.flatnonzero(use)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(count)), 0, len(idx) - 1)]
    rotvecs[~use] = rotvecs[nearest[~use]]
    translations[~use] = translations[nearest[~use]]
    return rotvecs, translations


def solve_focal(landmarks: np.ndarray, use: np.ndarray, template: np.ndarray, width: int, height: int,
                samples: int = 48) -> float:
    """Focal length (pixels) that best explains the stable landmarks on a sample of frames."""
    frames = np.flatnonzero(use)
    frames = frames[np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int)]
    obj = template[STABLE_LANDMARKS]

    def error(focal: float) -> float:
        return float(np.median([pnp(landmarks[t, STABLE_LANDMARKS], obj, focal, width, height)[2] for t in frames]))

    size = max(width, height)
    grid = size * np.geomspace(0.6, 20.0, 19)
    errors = [error(f) for f in grid]
    best = int(np.argmin(errors))
    lo, hi = np.log(grid[max(best - 1, 0)]), np.log(grid[min(best + 1, len(grid) - 1)])
    for _ in range(12):  # golden-section search on log focal
        a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if error(np.exp(a)) < error(np.exp(b)):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def fit_template(landmarks: np.ndarray, use: np.ndarray, rotvecs: np.ndarray, translations: np.ndarray,
                 focal: float, width: int, height: int, template: np.ndarray, device: torch.device, pull: float = 1.0,
                 max_frames: int = 400, iterations: int = 5) -> np.ndarray:
    """Move each template vertex to where its landmark is seen, robustly over frames.

    `pull` (pixels^2 per cm^2) keeps vertices near the canonical shape where the views say little (depth
    of a frontal-only video, for instance).
    """
    frames = np.flatnonzero(use)
    frames = frames[np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)]
    n = len(template)
    K = _f64(intrinsics_matrix(focal, width, height), device)
    R = rotvec_to_matrix(_f64(rotvecs[frames], device)) @ _f64(FACING_CAMERA, device)
    t = _f64(translations[frames], device)
    seen = _f64(landmarks[frames, :n], device)  # [F, N, 2]
    base = _f64(template, device)
    offset = torch.zeros_like(base)
    for _ in range(iterations):
        verts = (base + offset).requires_grad_(False)
        cam = torch.einsum("fij,nj->fni", R, verts) + t[:, None]  # [F, N, 3]
        x, y, z = cam.unbind(-1)
        res = torch.stack([K[0, 0] * x / z + K[0, 2], K[1, 1] * y / z + K[1, 2]], -1) - seen
        # d(pixel)/d(camera point) then chain through R: [F, N, 2, 3]
        zero = torch.zeros_like(z)
        dproj = torch.stack([
            torch.stack([K[0, 0] / z, zero, -K[0, 0] * x / z**2], -1),
            torch.stack([zero, K[1, 1] / z, -K[1, 1] * y / z**2], -1),
        ], -2)
        J = dproj @ R[:, None]
        norm = res.norm(dim=-1)
        w = torch.where(norm > 2.0, 2.0 / norm.clamp_min(1e-9), torch.ones_like(norm))[..., None, None]  # Huber
        A = (J.transpose(-1, -2) @ (w * J)).mean(0) + pull * _f64(np.eye(3), device)
        b = (J.transpose(-1, -2) @ (w * res[..., None])).mean(0)[..., 0] + pull * offset
        offset = offset - torch.linalg.solve(A, b)
    return (base + offset).cpu().numpy().astype(np.float32)


def _skew(v: np.ndarray) -> np.ndarray:
    """[..., 3] -> [..., 3, 3] cross-product matrices."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = np.zeros_like(x)
    return np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)


def _exp_and_left_jacobian(rotvecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SO(3) exponential [T, 3, 3] and its left Jacobian [T, 3, 3] (d exp(r) = [J_l(r) dr]x exp(r))."""
    theta = np.linalg.norm(rotvecs, axis=-1)[:, None, None]
    small = theta < 1e-6
    safe = np.where(small, 1.0, theta)
    k = _skew(rotvecs)
    k2 = k @ k
    a = np.where(small, 1.0 - theta**2 / 6, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta**2 / 24, (1 - np.cos(safe)) / safe**2)
    c = np.where(small, 1.0 / 6 - theta**2 / 120, (safe - np.sin(safe)) / safe**3)
    eye = np.eye(3)
    return eye + a * k + b * k2, eye + b * k + c * k2


def _residuals(params: np.ndarray, points: np.ndarray, seen: np.ndarray, focal: float, centre: np.ndarray,
               with_jacobian: bool = True):
    """Reprojection residuals [T, K, 2] of every frame, and their Jacobian [T, K, 2, 6] w.r.t. (rotvec, t)."""
    rot, left = _exp_and_left_jacobian(params[:, :3])
    rotated = points @ (rot @ FACING_CAMERA).transpose(0, 2, 1)  # [T, K, 3]
    cam = rotated + params[:, None, 3:]
    z = np.maximum(cam[..., 2], 1e-6)
    res = focal * cam[..., :2] / z[..., None] + centre - seen
    if not with_jacobian:
        return res, None
    zero = np.zeros_like(z)
    dproj = np.stack([
        np.stack([focal / z, zero, -focal * cam[..., 0] / z**2], -1),
        np.stack([zero, focal / z, -focal * cam[..., 1] / z**2], -1),
    ], -2)  # [T, K, 2, 3]
    # d(R X)/d rotvec = -[R X]x J_l(rotvec); d(R X + t)/dt = I.
    drot = -(_skew(rotated) @ left[:, None])
    jac = np.concatenate([dproj @ drot, dproj], -1)
    return res, jac


def refine_poses(landmarks: np.ndarray, use: np.ndarray, rotvecs: np.ndarray, translations: np.ndarray,
                 focal: float, width: int, height: int, template: np.ndarray, smoothness: float,
                 robust_scale: float, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Joint robust + smooth refinement of every frame's pose (Levenberg-Marquardt, sparse normal equations)."""
    import scipy.linalg
    import scipy.sparse as sp

    count = len(landmarks)
    points = template[STABLE_LANDMARKS].astype(np.float64)
    seen = landmarks[:, STABLE_LANDMARKS].astype(np.float64)
    centre = np.array([width / 2, height / 2])
    frame_weight = use.astype(np.float64) / len(STABLE_LANDMARKS)
    params = np.concatenate([rotvecs, translations], 1).astype(np.float64)

    depth = float(np.median(translations[use, 2]))
    scales = np.array([focal * FACE_RADIUS_CM / depth] * 3 + [focal / depth] * 2 + [focal * FACE_RADIUS_CM / depth**2])
    if count >= 3 and smoothness > 0:
        D = sp.diags([np.ones(count - 2), -2 * np.ones(count - 2), np.ones(count - 2)], [0, 1, 2], shape=(count - 2, count))
        prior = sp.kron((D.T @ D).tocsr(), sp.diags(smoothness * scales**2)).tocsr()
    else:
        prior = sp.csr_matrix((6 * count, 6 * count))
    rows = (np.arange(count)[:, None, None] * 6 + np.arange(6)[None, :, None]).repeat(6, 2)
    cols = rows.transpose(0, 2, 1)

    def energy(p: np.ndarray) -> float:
        res, _ = _residuals(p, points, seen, focal, centre, with_jacobian=False)
        norm = np.linalg.norm(res, axis=-1)
        huber = np.where(norm > robust_scale, 2 * robust_scale * norm - robust_scale**2, norm**2)
        flat = p.reshape(-1)
        return float((huber * frame_weight[:, None]).sum() + flat @ (prior @ flat))

    damping = 1e-3
    current = energy(params)
    for _ in range(iterations):
        res, J = _residuals(params, points, seen, focal, centre)
        norm = np.linalg.norm(res, axis=-1)
        w = np.where(norm > robust_scale, robust_scale / np.maximum(norm, 1e-9), 1.0) * frame_weight[:, None]  # IRLS
        Jw = (J * w[..., None, None]).reshape(count, -1, 6).transpose(0, 2, 1)  # [T, 6, 2K]
        H = Jw @ J.reshape(count, -1, 6)
        g = (Jw @ res.reshape(count, -1, 1)).reshape(-1)
        blocks = sp.csr_matrix((H.reshape(-1), (rows.reshape(-1), cols.reshape(-1))), shape=prior.shape)
        system = (blocks + prior).tocsc()
        diag = system.diagonal()
        rhs = -(g + prior @ params.reshape(-1))
        band = np.stack([np.pad(system.diagonal(k), (k, 0)) for k in range(BANDWIDTH, -1, -1)])  # upper form
        while True:
            damped = band.copy()
            damped[-1] += damping * (diag + 1e-9)
            step = scipy.linalg.solveh_banded(damped, rhs, check_finite=False)
            candidate = params + step.reshape(count, 6)
            new = energy(candidate)
            if new <= current:
                params, damping = candidate, max(damping / 3, 1e-7)
                break
            damping *= 4
            if damping > 1e6:
                break
        improvement = current - new
        current = min(current, new)
        if damping > 1e6 or improvement < 1e-9 * max(current, 1e-12):
            break
    return params[:, :3], params[:, 3:]


def stable_residuals(landmarks: np.ndarray, rotvecs: np.ndarray, translations: np.ndarray, focal: float,
                     width: int, height: int, template: np.ndarray, device: torch.device) -> np.ndarray:
    """[T, K] reprojection error (pixels) of each stable landmark."""
    K = _f64(intrinsics_matrix(focal, width, height), device)
    R = rotvec_to_matrix(_f64(rotvecs, device)) @ _f64(FACING_CAMERA, device)
    cam = torch.einsum("tij,kj->tki", R, _f64(template[STABLE_LANDMARKS], device))
    cam = cam + _f64(translations, device)[:, None]
    return (project(cam, K) - _f64(landmarks[:, STABLE_LANDMARKS], device)).norm(dim=-1).cpu().numpy()


def solve_head_poses(landmarks: np.ndarray, use: np.ndarray, canonical: np.ndarray, width: int, height: int,
                     focal: float = 0.0, fit_shape: bool = True, smoothness: float = 4.0,
                     robust_scale: float = 1.5, iterations: int = 30, log=None,
                     device: torch.device = torch.device("cpu")) -> PoseSolution:
    """Focal length, person template and smooth per-frame head poses from landmarks [T, >=468, 2] (pixels);
    the torch parts (template fit, residuals) run on `device`."""
    say = log or (lambda *a: None)
    template = canonical.astype(np.float64)
    if focal <= 0:
        focal = solve_focal(landmarks, use, template, width, height)
        say("pose: focal length %.1f px (from landmarks)", focal)
    rotvecs, translations = pnp_all(landmarks, use, template, focal, width, height)
    for _ in range(2 if fit_shape else 1):
        if fit_shape:
            template = fit_template(landmarks, use, rotvecs, translations, focal, width, height, canonical,
                                    device).astype(np.float64)
        rotvecs, translations = refine_poses(landmarks, use, rotvecs, translations, focal, width, height, template,
                                             smoothness, robust_scale, iterations)
    rotations = rotvecs_to_numpy_matrices(rotvecs)
    residuals = stable_residuals(landmarks, rotvecs, translations, focal, width, height, template, device)
    return PoseSolution(rotations.astype(np.float32), translations.astype(np.float32), float(focal),
                        template.astype(np.float32), residuals.astype(np.float32))


def rotvecs_to_numpy_matrices(rotvecs: np.ndarray) -> np.ndarray:
    """[T, 3] head rotation vectors -> [T, 3, 3] camera-from-head rotations (numpy, float64)."""
    cpu = torch.device("cpu")
    return (rotvec_to_matrix(_f64(rotvecs, cpu)) @ _f64(FACING_CAMERA, cpu)).numpy()


def _f64(array, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64), device=device)
