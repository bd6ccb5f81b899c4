import numpy as np
from media import read_audio, read_frames

from avatar.sample import LEAD_IN_S, truth_path


def test_sample_video_and_truth(sample_video):
    frames = read_frames(sample_video)
    audio, rate = read_audio(sample_video)
    assert len(frames) == 150 and frames[0].shape == (256, 256, 3)
    assert abs(len(audio) / rate - 6.0) < 0.05
    truth = np.load(truth_path(sample_video))
    assert truth["head_motion"].shape == (150, 4, 4) and truth["intrinsics"].shape == (3, 3)
    assert np.ptp(truth["head_angles_deg"], axis=0).min() > 2  # the head really moves on every axis
    lead = int(LEAD_IN_S * 25)
    assert truth["jaw_open"][:lead].max() < 0.05 and truth["jaw_open"].max() > 0.5  # closed in silence, open in speech
    assert truth["blink"].max() == 1.0
    # Frames differ where the head moves: the clip is animated, not a still.
    assert np.abs(frames[0].astype(int) - frames[60].astype(int)).mean() > 2
