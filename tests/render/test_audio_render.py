"""render --audio: lengths, outputs, backgrounds and every way the audio can be wrong."""
import numpy as np
import pytest
from helpers import run_cli
from media import read_audio, read_frames, tone

from avatar.audio.io import write_wav


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    from avatar.speech_synth import synthesize

    samples, rate = synthesize("Maybe the big apple pie.", voice="en-us")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    write_wav(path, samples, rate)
    return path, len(samples) / rate


def test_video_is_as_long_as_the_audio(trained_sample, speech, tmp_path):
    path, seconds = speech
    out, motion = tmp_path / "clip.mp4", tmp_path / "motion.npz"
    result = run_cli("render", trained_sample.root, "--audio", path, "--out", out, "--motion-out", motion, "--pose", "generated")
    assert result.returncode == 0, result.stderr
    frames = read_frames(out)
    audio, rate = read_audio(out)
    assert abs(len(frames) - seconds * 25) <= 1
    assert abs(len(audio) / rate - len(frames) / 25) < 0.05
    saved = np.load(motion)
    assert saved["motion"].shape[0] == len(frames) and saved["head_pose"].shape == (len(frames), 4, 4)


def test_transparent_png_sequence_and_webm(trained_sample, speech, tmp_path):
    import cv2

    path, _ = speech
    result = run_cli("render", trained_sample.root, "--audio", path, "--out", tmp_path / "seq.png", "--background", "transparent",
                     "--size", "96", "--pose", "still")
    assert result.returncode == 0, result.stderr
    first = cv2.imread(str(tmp_path / "seq" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert first.shape == (96, 96, 4) and first[..., 3].min() == 0 and first[..., 3].max() == 255
    assert (tmp_path / "seq" / "audio.wav").is_file()
    result = run_cli("render", trained_sample.root, "--audio", path, "--out", tmp_path / "alpha.webm", "--background", "transparent",
                     "--size", "96")
    assert result.returncode == 0, result.stderr
    assert len(read_frames(tmp_path / "alpha.webm")) > 10
    result = run_cli("render", trained_sample.root, "--audio", path, "--out", tmp_path / "x.mp4", "--background", "transparent")
    assert result.returncode == 2 and "transparent" in result.stderr


def test_colour_background(trained_sample, speech, tmp_path):
    path, _ = speech
    out = tmp_path / "green.mp4"
    assert run_cli("render", trained_sample.root, "--audio", path, "--out", out, "--background", "#00ff00").returncode == 0
    corner = read_frames(out)[0][:4, :4].reshape(-1, 3).mean(0)
    assert corner[1] > 200 and corner[0] < 60


@pytest.mark.parametrize("kind", ["missing", "text", "empty"])
def test_unreadable_audio_is_one_line(trained_sample, tmp_path, kind):
    path = tmp_path / "speech.wav"
    if kind == "text":
        path.write_text("not audio at all\n" * 10)
    elif kind == "empty":
        path.write_bytes(b"")
    result = run_cli("render", trained_sample.root, "--audio", path, "--out", tmp_path / "o.mp4")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("avatar: error:"), result.stderr


def test_silent_audio_needs_the_users_word(trained_sample, tmp_path):
    quiet = tmp_path / "quiet.wav"
    write_wav(quiet, tone(2.0) * 1e-4, 16000)
    result = run_cli("render", trained_sample.root, "--audio", quiet, "--out", tmp_path / "o.mp4")
    assert result.returncode == 2 and "silent" in result.stderr and "--allow-silence" in result.stderr
    out = tmp_path / "closed.mp4"
    result = run_cli("render", trained_sample.root, "--audio", quiet, "--out", out, "--allow-silence", "--pose", "still",
                     "--motion-out", tmp_path / "m.npz")
    assert result.returncode == 0 and "silent" in result.stdout
    mouth = np.load(tmp_path / "m.npz")["mouth"]
    assert np.allclose(mouth[:, 0], 0) and len(read_frames(out)) == 50


def test_new_speech_gets_the_features_preprocessing_made(sample_avatar, sample_video, tmp_path):
    """Render and eval compute features with the avatar's own audio settings, never the defaults."""
    import shutil

    from avatar.audio import SAMPLE_RATE
    from avatar.audio.io import load_audio
    from avatar.config import AvatarConfig
    from avatar.folder import AvatarFolder
    from avatar.io_utils import load_npz
    from avatar.preprocess import run_preprocess
    from avatar.render.audio_render import speech_features

    folder = AvatarFolder(tmp_path / "avatar")
    shutil.copytree(sample_avatar.root, folder.root, ignore=shutil.ignore_patterns("model", "eval", "logs"))
    cfg = AvatarConfig()
    cfg.audio.mel_bins, cfg.audio.pitch_min_hz, cfg.audio.chunk_s = 40, 90.0, 3.0
    run_preprocess(sample_video, folder.root, cfg, only=["audio"])
    made = load_npz(folder.features)
    assert made["mel"].shape[1] == 40
    wave = load_audio(folder.audio, SAMPLE_RATE)
    again = speech_features(folder, wave, len(made["mel"]))
    for name in ("ppg", "mel", "energy", "pitch"):
        np.testing.assert_allclose(getattr(again, name), made[name], atol=1e-5, err_msg=name)
