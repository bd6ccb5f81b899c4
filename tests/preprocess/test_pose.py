import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatar.geometry import FACING_CAMERA, rotation_jitter_deg, rotvec_to_matrix
from avatar.preprocess import pose as P
from avatar.preprocess.track import fill_gaps


@pytest.fixture(scope="module")
def template(models):
    from avatar.face_mesh import load_face_template
    from avatar.model_files import model_path

    return load_face_template(model_path("face_landmarker")).vertices


def _synthetic(template, count=150, focal=900.0, size=256, noise=0.4, seed=0):
    """Landmarks of a rigid head moving smoothly in front of a known camera, with pixel noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(count) / 25
    angles = np.stack([8 * np.sin(0.9 * t), 5 * np.sin(1.3 * t + 1), 3 * np.sin(0.7 * t + 2)], 1)
    rot = Rotation.from_euler("YXZ", angles, degrees=True).as_matrix() @ FACING_CAMERA
    trans = np.stack([1.5 * np.sin(0.5 * t), 0.8 * np.cos(0.4 * t), 60 + 2 * np.sin(0.3 * t)], 1)
    cam = np.einsum("tij,kj->tki", rot, template) + trans[:, None]
    pixels = focal * cam[..., :2] / cam[..., 2:] + size / 2
    return pixels + rng.normal(0, noise, pixels.shape), rot, trans


def _angle_error(a, b):
    return Rotation.from_matrix(np.einsum("tij,tkj->tik", a, b)).magnitude() * 180 / np.pi


def test_recovers_known_poses_and_focal(template):
    landmarks, rot, trans = _synthetic(template)
    sol = P.solve_head_poses(landmarks, np.ones(len(landmarks), bool), template, 256, 256)
    assert abs(sol.focal / 900 - 1) < 0.2
    assert _angle_error(sol.rotations, rot).mean() < 0.6
    assert np.median(sol.stable_residuals) < 1.0


def test_smoothing_removes_jitter_without_lag(template):
    landmarks, rot, _ = _synthetic(template, noise=0.8)
    use = np.ones(len(landmarks), bool)
    rough = P.solve_head_poses(landmarks, use, template, 256, 256, focal=900.0, fit_shape=False, smoothness=0.0)
    smooth = P.solve_head_poses(landmarks, use, template, 256, 256, focal=900.0, fit_shape=False, smoothness=6.0)
    assert (rotation_jitter_deg(smooth.rotations) < 0.5 * rotation_jitter_deg(rough.rotations)).all()
    assert _angle_error(smooth.rotations, rot).mean() < _angle_error(rough.rotations, rot).mean()


def test_frames_without_a_face_are_bridged_by_the_prior(template):
    landmarks, rot, _ = _synthetic(template, noise=0.2)
    use = np.ones(len(landmarks), bool)
    use[60:70] = False
    landmarks[60:70] = 0.0  # whatever the tracker left there must not matter
    sol = P.solve_head_poses(landmarks, use, template, 256, 256, focal=900.0)
    assert _angle_error(sol.rotations[60:70], rot[60:70]).max() < 1.5


def test_analytic_jacobian_matches_finite_differences():
    rng = np.random.default_rng(3)
    params = np.concatenate([rng.normal(0, 0.3, (3, 3)), rng.normal(0, 1, (3, 3)) + [0, 0, 50]], 1)
    points, seen, centre = rng.normal(0, 5, (6, 3)), rng.normal(100, 5, (3, 6, 2)), np.array([128.0, 128.0])
    _, jac = P._residuals(params, points, seen, 800.0, centre)
    numeric = np.zeros_like(jac)
    for i in range(6):
        step = np.zeros_like(params)
        step[:, i] = 1e-6
        plus = P._residuals(params + step, points, seen, 800.0, centre, with_jacobian=False)[0]
        minus = P._residuals(params - step, points, seen, 800.0, centre, with_jacobian=False)[0]
        numeric[..., i] = (plus - minus) / 2e-6
    np.testing.assert_allclose(jac, numeric, atol=1e-5 * np.abs(jac).max())
    rot, _ = P._exp_and_left_jacobian(params[:, :3])
    np.testing.assert_allclose(rot, rotvec_to_matrix(torch.tensor(params[:, :3])).numpy(), atol=1e-12)


def test_fill_gaps():
    values = np.arange(10, dtype=np.float32)[:, None]
    found = np.ones(10, bool)
    found[[0, 3, 4, 7, 8, 9]] = False
    filled, interpolated, valid = fill_gaps(values, found, max_gap=2)
    np.testing.assert_allclose(filled[:, 0], [1, 1, 2, 3, 4, 5, 6, 6, 6, 6])
    assert interpolated.tolist() == [True, False, False, True, True, False, False, False, False, False]
    assert valid.tolist() == [True, True, True, True, True, True, True, False, False, False]
