"""The preprocessed built-in sample: the data contract, the solved poses against ground truth, caching."""
import json

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from avatar.config import AvatarConfig
from avatar.io_utils import load_npz
from avatar.preprocess import run_preprocess
from avatar.sample import truth_path


def test_manifest_contract(sample_avatar, sample_video):
    from avatar.io_utils import sha256_file

    m = json.loads(sample_avatar.manifest.read_text())
    assert (m["fps"], m["num_frames"], m["width"], m["height"], m["audio_sample_rate"]) == (25, 150, 256, 256, 16000)
    assert m["duration_s"] == 6.0 and m["source_sha256"] == sha256_file(sample_video)
    assert m["split"] == {"train": [0, 135], "test": [135, 150]}


def test_tracking_contract(sample_avatar):
    t = load_npz(sample_avatar.tracking)
    shapes = {"landmarks": (150, 478, 2), "blendshapes": (150, 52), "blendshape_names": (52,), "head_pose": (150, 4, 4),
              "intrinsics": (3, 3), "head_vertices": (468, 3), "valid": (150,)}
    for key, shape in shapes.items():
        assert t[key].shape == shape, key
    assert t["landmarks"].dtype == np.float32 and t["valid"].dtype == bool and t["valid"].all()
    assert "jawOpen" in t["blendshape_names"].tolist()
    np.testing.assert_allclose(t["head_pose"][:, 3], np.tile([0, 0, 0, 1], (150, 1)))
    assert np.isfinite(t["head_pose"]).all()


def test_features_and_masks(sample_avatar):
    f = load_npz(sample_avatar.features)
    assert f["ppg"].shape == (150, 191) and f["mel"].shape == (150, 80) and f["energy"].shape == f["pitch"].shape == (150,)
    np.testing.assert_allclose(f["ppg"].sum(1), 1, atol=1e-4)
    labels = [cv2.imread(str(sample_avatar.mask_path(i)), cv2.IMREAD_GRAYSCALE) for i in range(0, 150, 10)]
    assert all((m == 2).any() and (m == 1).any() for m in labels)
    assert cv2.imread(str(sample_avatar.background)).shape == (256, 256, 3)


def test_quality_report_and_preview(sample_avatar):
    import av

    q = json.loads(sample_avatar.quality.read_text())
    assert q["tracked_fraction"] >= 0.98 and q["feature_rows_match_frames"] and q["masks_nonempty_fraction"] == 1.0
    assert q["median_reprojection_px_at_512"] <= 2.0
    assert q["max_faces_in_view"] == 1  # counted while tracking (a square video skips the crop's face sampling)
    with av.open(str(sample_avatar.preview)) as container:
        assert container.streams.video[0].frames == 150 and len(container.streams.audio) == 1


def test_solved_rotation_matches_ground_truth(sample_avatar, sample_video):
    """Within 2 degrees on average, up to the constant rotation between the template's and the sample's head frames."""
    solved = load_npz(sample_avatar.tracking)["head_pose"][:, :3, :3].astype(np.float64)
    truth = np.load(truth_path(sample_video))["head_motion"][:, :3, :3].astype(np.float64)
    offset = Rotation.from_matrix(np.einsum("tji,tjk->tik", truth, solved)).mean().as_matrix()
    error = Rotation.from_matrix(np.einsum("tij,jk,tlk->til", truth, offset, solved)).magnitude() * 180 / np.pi
    assert error.mean() < 2.0, error.mean()


def test_second_run_reuses_every_stage(sample_avatar, sample_video):
    records = {p.name: p.read_text() for p in (sample_avatar.data / "stages").iterdir()}
    run_preprocess(sample_video, sample_avatar.root, AvatarConfig())
    assert {p.name: p.read_text() for p in (sample_avatar.data / "stages").iterdir()} == records
    assert set(records) == {f"{s}.json" for s in ("decode", "track", "matte", "audio", "pose", "segment", "torso", "report")}


def test_motion_landmarks_are_each_frames_own_and_the_pose_ones_follow_the_face(sample_avatar):
    """`landmarks` are what the detector finds in the frame alone (image mode); `pose_landmarks`, what the
    pose is solved from, come from following the face (video mode) and lie on the same face."""
    from avatar.model_files import model_path
    from avatar.preprocess.frames import iter_frames
    from avatar.preprocess.mediapipe_tasks import FaceLandmarker, opened

    raw = load_npz(sample_avatar.landmarks)
    assert raw["pose_landmarks"].shape == (150, 478, 2) and np.isfinite(raw["pose_landmarks"]).all()
    gap = np.linalg.norm(raw["pose_landmarks"] - raw["landmarks"], axis=-1)
    assert np.median(gap) < 3.0 and gap.max() > 0  # the same face, found two ways
    with opened(FaceLandmarker(model_path("face_landmarker"), video=False)) as tracker:
        for i, rgb in iter_frames(sample_avatar, [0, 77, 149]):
            found = tracker.detect(rgb)[0].landmarks[:478, :2] * (rgb.shape[1], rgb.shape[0])
            np.testing.assert_allclose(found, raw["landmarks"][i], atol=1e-3)
