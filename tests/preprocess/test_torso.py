"""The torso signal: shifts of the two torso halves are measured to a fraction of a pixel, and the model
moves its torso Gaussians by exactly what the signal says."""
import numpy as np
import torch

from avatar.preprocess.torso import measure_shifts, torso_region


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random((h, w)).astype(np.float32) * 255, (0, 0), 2.0)


def test_each_half_gets_its_own_shift():
    import cv2

    h, w, split = 120, 256, 128
    reference = _texture(h, w)
    moved = np.empty_like(reference)
    for cols, (dx, dy) in ((slice(0, split), (3.0, -2.0)), (slice(split, None), (-1.5, 1.0))):
        shifted = cv2.warpAffine(reference, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT)
        moved[:, cols] = shifted[:, cols]
    shifts = measure_shifts([reference, moved], reference, split)
    np.testing.assert_allclose(shifts[0], 0, atol=0.05)
    np.testing.assert_allclose(shifts[1], [3.0, -2.0, -1.5, 1.0], atol=0.3)


def test_no_torso_below_a_chin_at_the_bottom():
    landmarks = np.zeros((10, 478, 2))
    landmarks[:, 152, 1], landmarks[:, 1, 0] = 500, 256
    assert torso_region(landmarks, np.ones(10, bool), 512) is None
    landmarks[:, 152, 1] = 300
    top, split = torso_region(landmarks, np.ones(10, bool), 512)
    assert 300 < top < 330 and split == 256


def test_the_model_moves_torso_gaussians_by_the_signal(trained_sample):
    from avatar.data.avatar_data import AvatarData
    from avatar.model.store import load_trained

    cpu = torch.device("cpu")
    model = load_trained(trained_sample, cpu).model
    data = AvatarData(trained_sample, 0, basis=load_trained(trained_sample, cpu).basis)
    means = model.torso.means.detach()
    signal = torch.tensor([0.02, -0.01, 0.02, -0.01])  # both halves: 2 % of the frame right, 1 % up
    moved = means + model.torso_shift(means, signal)
    K, side = data.intrinsics, data.resolution

    def project(p):
        return torch.stack([p[:, 0] / p[:, 2] * K[0, 0] + K[0, 2], p[:, 1] / p[:, 2] * K[1, 1] + K[1, 2]], 1)

    torch.testing.assert_close(project(moved) - project(means), torch.tensor([0.02, -0.01]).expand(len(means), 2) * side,
                               atol=1e-3, rtol=1e-4)
    assert torch.equal(model.torso_shift(means, torch.zeros(4)), torch.zeros_like(means))
