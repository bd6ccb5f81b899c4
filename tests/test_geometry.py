import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatar.geometry import (FACING_CAMERA, head_angles_deg, matrix_to_rotvec, mediapipe_to_camera,
                             rotation_jitter_deg, rotvec_to_matrix)


def test_rodrigues_matches_scipy():
    r = np.random.default_rng(0).normal(size=(50, 3))
    np.testing.assert_allclose(rotvec_to_matrix(torch.tensor(r)).numpy(), Rotation.from_rotvec(r).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(matrix_to_rotvec(Rotation.from_rotvec(r[:3] * 0.5).as_matrix()), r[:3] * 0.5, atol=1e-10)


@pytest.mark.parametrize("scale", [0.0, 1e-5, 1.0])
def test_rodrigues_gradients(scale):
    r = (torch.randn(4, 3, dtype=torch.float64) * scale).requires_grad_()
    assert torch.autograd.gradcheck(rotvec_to_matrix, (r,))


def test_head_angles_convention():
    np.testing.assert_allclose(head_angles_deg(FACING_CAMERA), 0, atol=1e-9)
    yaw = Rotation.from_euler("Y", 10, degrees=True).as_matrix() @ FACING_CAMERA
    np.testing.assert_allclose(head_angles_deg(yaw), [10, 0, 0], atol=1e-9)
    np.testing.assert_allclose(mediapipe_to_camera(np.eye(4))[:3, :3], FACING_CAMERA)


def test_jitter_separates_noise_from_smooth_motion():
    t = np.arange(200) / 25
    angles = np.stack([5 * np.sin(2 * np.pi * 0.3 * t), np.zeros_like(t), np.zeros_like(t)], 1)
    smooth = Rotation.from_euler("YXZ", angles, degrees=True).as_matrix() @ FACING_CAMERA
    noisy_angles = angles + np.random.default_rng(1).normal(0, 0.3, angles.shape)
    noisy = Rotation.from_euler("YXZ", noisy_angles, degrees=True).as_matrix() @ FACING_CAMERA
    assert rotation_jitter_deg(smooth).max() < 0.05  # 5 degrees at 0.3 Hz accelerates by ~0.02 deg/frame^2
    assert rotation_jitter_deg(noisy).min() > 0.5
