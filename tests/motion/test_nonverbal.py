import numpy as np

from avatar.geometry import head_angles_deg
from avatar.motion.nonverbal import BlinkStats, PoseLibrary


def test_blink_statistics_round_trip():
    rng = np.random.default_rng(0)
    stats = BlinkStats(rate_per_min=18.0, shape=np.array([0.2, 0.7, 1.0, 0.9, 0.5, 0.2, 0.05, 0.0], np.float32))
    blink = stats.generate(25 * 120, 25, rng)
    measured = BlinkStats.measure(blink + rng.normal(0, 0.01, len(blink)), 25)
    assert abs(measured.rate_per_min - 18.0) < 0.5 * 18.0
    assert measured.shape.max() == 1.0


def _library(seconds=30, fps=25):
    from scipy.spatial.transform import Rotation

    t = np.arange(int(seconds * fps)) / fps
    angles = np.stack([6 * np.sin(0.7 * t), 3 * np.sin(1.1 * t + 1), 2 * np.sin(0.5 * t)], 1)
    poses = np.tile(np.eye(4, dtype=np.float32), (len(t), 1, 1))
    poses[:, :3, :3] = Rotation.from_euler("YXZ", angles, degrees=True).as_matrix() @ np.diag([1, -1, -1])
    poses[:, :3, 3] = [0, 0, 60]
    loud = (np.sin(0.3 * t) > 0).astype(np.float32)
    return PoseLibrary(poses, loud, poses.mean(0), fps)


def test_generated_pose_moves_and_never_repeats_a_segment_back_to_back():
    library = _library()
    loudness = np.tile(np.r_[np.ones(60), np.zeros(40)], 8).astype(np.float32)
    poses, chosen, torso = library.generate(loudness, np.random.default_rng(1))
    assert torso.shape == (len(loudness), 4)
    assert poses.shape == (len(loudness), 4, 4)
    assert all(a != b for a, b in zip(chosen, chosen[1:]))
    angles = head_angles_deg(poses)
    assert angles.std(0).max() > 1.0  # never a still head
    assert np.abs(np.diff(angles, axis=0)).max() < 2.0  # and no jumps at the seams


def test_still_and_replay():
    library = _library(4)
    assert np.allclose(library.still(10), library.rest)
    replay = library.replay(250)
    assert np.allclose(replay[:100], library.poses) and np.allclose(replay[100], library.poses[98])
