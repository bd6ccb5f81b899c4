import numpy as np
import pytest

from avatar.audio.features import average_to_frames, extract_features, frame_energy, pitch_track
from avatar.audio.io import load_audio
from avatar.errors import AvatarError


def test_average_to_frames_integrates_each_frame_interval():
    values = np.arange(10, dtype=np.float64)[:, None]
    np.testing.assert_allclose(average_to_frames(values, 50, 5, 25)[:, 0], [0.5, 2.5, 4.5, 6.5, 8.5])
    # Frames past the end repeat the last value; a shifted source is honoured.
    np.testing.assert_allclose(average_to_frames(values, 50, 7, 25)[5:, 0], [9, 9])
    np.testing.assert_allclose(average_to_frames(np.ones(4), 100, 1, 25, offset_s=0.01)[0], 1.0)


def test_energy_and_pitch_of_a_tone():
    rate = 16000
    t = np.arange(rate) / rate
    wave = np.concatenate([np.zeros(rate // 2), 0.3 * np.sin(2 * np.pi * 150 * t)]).astype(np.float32)
    energy = frame_energy(wave, 37, 25)
    assert energy[:12].max() < -90 and abs(energy[20:].mean() - 20 * np.log10(0.3 / np.sqrt(2))) < 0.5
    f0 = pitch_track(wave, 60, 500)
    assert (f0[:20] == 0).all() and np.median(f0[35:]) == pytest.approx(150, rel=0.02)


def test_features_of_speech_have_one_row_per_frame():
    from avatar.speech_synth import synthesize

    speech, rate = synthesize("Pop the big balloon, mama.")
    import soxr

    wave = soxr.resample(speech, rate, 16000).astype(np.float32)
    frames = int(len(wave) / 16000 * 25) + 3  # a few frames past the end of the audio
    from avatar.config import AudioConfig

    f = extract_features(wave, frames, 25, AudioConfig())
    assert f.ppg.shape == (frames, 191) and f.mel.shape == (frames, 80) and f.energy.shape == f.pitch.shape == (frames,)
    np.testing.assert_allclose(f.ppg.sum(1), 1, atol=1e-4)
    assert (f.pitch > 0).mean() > 0.2 and np.isfinite(f.mel).all()


def test_unreadable_audio_is_explained(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_text("not audio")
    with pytest.raises(AvatarError, match="cannot be read as audio"):
        load_audio(bad, 16000)
    with pytest.raises(AvatarError, match="does not exist"):
        load_audio(tmp_path / "missing.wav", 16000)
