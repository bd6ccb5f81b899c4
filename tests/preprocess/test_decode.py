import json

import numpy as np
import pytest
from media import numbered_frame, read_frames, tone, write_video

from avatar.config import AvatarConfig
from avatar.preprocess import run_preprocess
from avatar.preprocess.decode import CropBox, SourceInfo, choose_crop, holdout_split


def _decode_only(video, out, **decode):
    cfg = AvatarConfig()
    for key, value in decode.items():
        setattr(cfg.decode, key, value)
    folder = run_preprocess(video, out, cfg, only=["decode"])
    return folder, json.loads(folder.manifest.read_text())


def _frame_values(folder, count):
    import cv2

    return [int(round(cv2.imread(str(folder.frame_path(i))).mean() / 8)) % 32 for i in range(count)]


def test_split_holds_out_the_tail():
    assert holdout_split(1500, 25, 0.1, 5.0) == {"train": [0, 1350], "test": [1350, 1500]}
    assert holdout_split(500, 25, 0.1, 5.0) == {"train": [0, 375], "test": [375, 500]}  # 5 s is 25 %
    assert holdout_split(200, 25, 0.1, 5.0) == {"train": [0, 180], "test": [180, 200]}  # too short for 5 s


def test_thirty_fps_is_resampled_by_time(tmp_path):
    video = write_video(tmp_path / "v30.mp4", numbered_frame, 96, fps=30, audio=tone(3.2))
    folder, manifest = _decode_only(video, tmp_path / "a")
    assert manifest["num_frames"] == 80 and manifest["fps"] == 25
    # Output frame k shows the source frame on screen at k/25 s: floor(k * 30 / 25).
    expected = [int(k * 30 / 25) % 32 for k in range(80)]
    assert _frame_values(folder, 80) == expected
    import soundfile

    audio, rate = soundfile.read(str(folder.audio))
    assert rate == 16000 and len(audio) == 80 * 640


def test_variable_frame_rate(tmp_path):
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.02, 0.07, 90)).round(3)  # the file stores milliseconds
    times -= times[0]
    video = write_video(tmp_path / "vfr.mp4", numbered_frame, 90, audio=tone(times[-1] + 0.05), times=times)
    folder, manifest = _decode_only(video, tmp_path / "a")
    assert abs(manifest["num_frames"] - (times[-1] * 25 + 1)) <= 1
    values = _frame_values(folder, manifest["num_frames"])
    for k, value in enumerate(values):
        source = np.searchsorted(times, k / 25 + 1e-9, side="right") - 1
        assert value == source % 32


def test_square_input_of_the_target_size_is_kept():
    info = SourceInfo(512, 512, 0, 10.0, 25.0, True)
    assert choose_crop(info, 512, [], 0.42)[0] == CropBox(0, 0, 512, 512)
    small = SourceInfo(450, 450, 0, 10.0, 25.0, True)
    assert choose_crop(small, 512, [], 0.42)[0] == CropBox(0, 0, 450, 450)  # not upscaled


def test_crop_follows_the_largest_face():
    info = SourceInfo(1920, 1080, 0, 10.0, 25.0, True)
    faces = [[(400.0, 500.0, 100.0), (1400.0, 400.0, 300.0)]] * 3
    crop, seen = choose_crop(info, 512, faces, 0.42)
    assert seen == 2 and crop.out_size == 512
    assert abs(crop.side - 300 / 0.42) <= 1 and crop.x < 1400 < crop.x + crop.side


@pytest.mark.parametrize("face_h", [300.0, 450.0, 560.0, 800.0])
def test_a_close_portrait_keeps_the_hair_and_the_chin(face_h):
    """1080x1920 portrait framing: the width limits the crop, which must still hold the head top (hair) and,
    first of all, the chin; when both cannot fit, the top is as high as the chin allows."""
    from avatar.preprocess.decode import CHIN_MARGIN, HAIR_ABOVE_FACE

    info = SourceInfo(1080, 1920, 0, 10.0, 30.0, True)
    cx, cy = 540.0, 900.0
    crop, _ = choose_crop(info, 512, [[(cx, cy, face_h)]] * 3, 0.42)
    forehead, chin = cy - face_h / 2, cy + face_h / 2
    assert crop.side <= 1080 and crop.x <= cx - face_h / 2 and cx + face_h / 2 <= crop.x + crop.side
    assert chin + CHIN_MARGIN * face_h <= crop.y + crop.side + 1
    fits = (0.5 + HAIR_ABOVE_FACE + 0.5 + CHIN_MARGIN) * face_h <= crop.side
    if fits:
        assert crop.y <= forehead - HAIR_ABOVE_FACE * face_h + 1
    else:
        assert abs(crop.y + crop.side - (chin + CHIN_MARGIN * face_h)) <= 1


def _sample_on_canvas(sample_frames, width, height, boxes):
    """Frames of `width` x `height` with the sample pasted (scaled) into each (x, y, side) box."""
    import cv2

    def frame(i):
        canvas = np.full((height, width, 3), 90, np.uint8)
        source = sample_frames[i % len(sample_frames)]
        for x, y, side in boxes:
            canvas[y: y + side, x: x + side] = cv2.resize(source, (side, side), interpolation=cv2.INTER_LINEAR)
        return canvas
    return frame


@pytest.mark.parametrize("name, width, height, boxes, fps", [
    ("portrait", 540, 960, [(20, 200, 500)], 25),
    ("uhd", 3840, 2160, [(1500, 300, 1400)], 8),
    ("two_people", 1280, 720, [(40, 60, 600), (800, 200, 440)], 25),
])
def test_large_and_odd_inputs_are_cropped_around_the_face(tmp_path, sample_video, name, width, height, boxes, fps):
    frames = read_frames(sample_video)[:90]
    count = int(3.6 * fps)
    video = write_video(tmp_path / f"{name}.mp4", _sample_on_canvas(frames, width, height, boxes), count, fps=fps, audio=tone(3.6))
    folder, manifest = _decode_only(video, tmp_path / "a")
    x, y, side = boxes[0]
    crop = manifest["crop"]
    assert manifest["width"] == manifest["height"] == min(512, crop["side"] - crop["side"] % 2)
    face_x = x + side * 0.5
    assert crop["x"] < face_x < crop["x"] + crop["side"]
    assert crop["side"] < min(width, height) or name == "portrait"
    assert manifest["num_frames"] == int(np.ceil(count / fps * 25))
    if name == "two_people":
        assert manifest["source"]["faces_seen"] == 2
