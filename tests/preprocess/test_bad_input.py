"""Every way a user's input can be wrong ends with exit code 2 and one line saying what to do."""
import json
import os

import numpy as np
import pytest
from helpers import run_cli
from media import tone, write_video


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("avatar: error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _no_trusted_stage(out):
    records = out / "data" / "stages"
    return [p.name for p in records.iterdir()] if records.exists() else []


def _noise(i):
    return np.random.default_rng(i).integers(0, 255, (128, 128, 3)).astype(np.uint8)


def test_missing_file(tmp_path, models):
    _assert_one_line_error(run_cli("preprocess", tmp_path / "nope.mp4", "--out", tmp_path / "a"), "does not exist")


def test_empty_file(tmp_path, models):
    (tmp_path / "empty.mp4").write_bytes(b"")
    _assert_one_line_error(run_cli("preprocess", tmp_path / "empty.mp4", "--out", tmp_path / "a"), "empty")


def test_text_file_named_mp4(tmp_path, models):
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 20)
    result = run_cli("preprocess", tmp_path / "notes.mp4", "--out", tmp_path / "a")
    _assert_one_line_error(result, "cannot be read as a video")
    assert _no_trusted_stage(tmp_path / "a") == []


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_mp4(tmp_path, sample_video, faststart):
    from media import read_frames

    frames = read_frames(sample_video)
    full = write_video(tmp_path / "full.mp4", lambda i: frames[i], len(frames), audio=tone(len(frames) / 25), faststart=faststart)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    result = run_cli("preprocess", cut, "--out", tmp_path / "a")
    _assert_one_line_error(result)
    assert "truncated" in result.stderr
    assert "decode.json" not in _no_trusted_stage(tmp_path / "a")


def test_video_without_audio(tmp_path, models):
    video = write_video(tmp_path / "silent.mp4", _noise, 100)
    _assert_one_line_error(run_cli("preprocess", video, "--out", tmp_path / "a"), "no audio track")


def test_too_short(tmp_path, models):
    video = write_video(tmp_path / "short.mp4", _noise, 50, audio=tone(2.0))
    _assert_one_line_error(run_cli("preprocess", video, "--out", tmp_path / "a"), "2.0 s long", "at least 3 s")


def test_no_face(tmp_path, models):
    video = write_video(tmp_path / "noface.mp4", _noise, 100, audio=tone(4.0))
    out = tmp_path / "a"
    _assert_one_line_error(run_cli("preprocess", video, "--out", out), "no face was found")
    assert "track.json" not in _no_trusted_stage(out)
    assert "decode.json" in _no_trusted_stage(out)  # finished work is kept for the next run


def test_folder_of_another_video(tmp_path, sample_avatar, models):
    video = write_video(tmp_path / "other.mp4", _noise, 100, audio=tone(4.0))
    before = json.loads(sample_avatar.manifest.read_text())
    _assert_one_line_error(run_cli("preprocess", video, "--out", sample_avatar.root), "different video", "--force")
    assert json.loads(sample_avatar.manifest.read_text()) == before


def test_force_replaces_the_folder(tmp_path, sample_video):
    out = tmp_path / "a"
    video = write_video(tmp_path / "other.mp4", _noise, 100, audio=tone(4.0))
    assert run_cli("preprocess", video, "--out", out, "--only", "decode").returncode == 0
    result = run_cli("preprocess", sample_video, "--out", out, "--force", "--only", "decode")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "data" / "manifest.json").read_text())["num_frames"] == 150


def test_unwritable_output_folder(tmp_path, sample_video):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _assert_one_line_error(run_cli("preprocess", sample_video, "--out", blocker / "avatar"), "cannot write")
    if os.geteuid() != 0:  # root writes anywhere, so only a normal user can test permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _assert_one_line_error(run_cli("preprocess", sample_video, "--out", locked / "avatar"), "cannot write")
