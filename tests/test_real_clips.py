"""Acceptance on real recordings from ../shared/data/video (skipped where that folder is absent)."""
import json

import cv2
import numpy as np
import pytest
from helpers import shared_file

from avatar.config import AvatarConfig
from avatar.io_utils import load_npz
from avatar.preprocess import run_preprocess

CLIPS = ["08_en_may_5s_512_25fps.mp4", "07_en_aoc_hdtf_8s_512_25fps.mp4", "04_en_obama_20s_450_25fps.mp4",
         "02_en_tedlieu_hdtf_60s_256_25fps.mp4"]


@pytest.fixture(scope="module", params=CLIPS)
def clip(request, tmp_path_factory, models):
    video = shared_file(f"video/{request.param}")
    config = AvatarConfig()
    config.report.preview = False
    return run_preprocess(video, tmp_path_factory.mktemp("real") / video.stem, config)


def test_tracking_quality(clip):
    q = json.loads(clip.quality.read_text())
    assert q["tracked_fraction"] >= 0.98
    assert q["median_reprojection_px_at_512"] <= 2.0
    for axis, value in q["rotation_jitter_deg"].items():
        assert value <= 0.5 * q["mediapipe_rotation_jitter_deg"][axis], axis


def test_rows_and_masks(clip):
    t, f = load_npz(clip.tracking), load_npz(clip.features)
    frames = len(t["valid"])
    assert all(len(f[k]) == frames for k in ("ppg", "mel", "energy", "pitch"))
    for i in np.flatnonzero(t["tracked"]):
        labels = cv2.imread(str(clip.mask_path(i)), cv2.IMREAD_GRAYSCALE)
        assert (labels == 2).any(), i
