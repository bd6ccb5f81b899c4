"""The viewer window itself, on a display (Xvfb where there is none): what it shows is the library's render,
its sliders and orbit change what they should, play follows the audio clock, and bad input never opens it."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from avatar.audio.io import write_wav
from avatar.face_mesh import LIPS_OUTER

PROBE = Path(__file__).with_name("window_probe.py")
SIZE = 128


def _display_command() -> list[str]:
    if os.environ.get("DISPLAY"):
        return []
    if shutil.which("xvfb-run"):
        return ["xvfb-run", "-a", "-s", "-screen 0 1024x768x24"]
    pytest.skip("no display and no Xvfb (apt-get install xvfb) to open the viewer window on")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    from avatar.speech_synth import synthesize

    samples, rate = synthesize("Maybe the big apple pie.", voice="en-us")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    write_wav(path, samples, rate)
    return path


@pytest.fixture(scope="module")
def probe(trained_sample, speech, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe")
    result = subprocess.run(_display_command() + [sys.executable, str(PROBE), str(trained_sample.root), str(speech), str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads((out / "report.json").read_text())


def _mouth(folder) -> tuple[int, int]:
    from avatar.io_utils import load_npz

    tracking = load_npz(folder.tracking)
    width = json.loads(folder.manifest.read_text())["width"]
    x, y = tracking["landmarks"][:, list(LIPS_OUTER), :2].reshape(-1, 2).mean(0) * SIZE / width
    return int(x), int(y)


def test_window_shows_the_library_render(probe):
    _, report = probe
    assert report["backend"] == "null"
    assert report["base_vs_render_mean"] < 1.0 and report["base_vs_render_max"] <= 8, report


@pytest.mark.parametrize("slider", ["smile", "mouth_scale"])
def test_sliders_change_the_mouth_and_not_the_torso_or_background(probe, trained_sample, slider):
    out, _ = probe
    base, moved = np.load(out / "base.npy").astype(int), np.load(out / f"{slider}.npy").astype(int)
    difference = np.abs(base - moved).max(-1)
    x, y = _mouth(trained_sample)
    box = SIZE // 16
    assert difference[y - box: y + box, x - box: x + box].max() > 3
    border = SIZE // 10
    assert not (difference[-border:] > 3).any() and not (difference[:, :border] > 3).any()


def test_orbit_turns_the_view(probe):
    out, report = probe
    assert report["yaw"] != 0
    assert (np.abs(np.load(out / "base.npy").astype(int) - np.load(out / "orbit.npy")).max(-1) > 8).mean() > 0.05


def test_play_follows_the_audio_clock_and_stops_at_the_end(probe):
    _, report = probe
    play = report["play"]
    samples = np.array(play["samples"])
    wall, clock, timeline = samples.T
    assert play["stopped"] and abs(play["end_position"] - report["duration"]) < 0.05
    middle = (clock > 0.1) & (clock < report["duration"] - 0.1)
    slope = np.polyfit(wall[middle], clock[middle], 1)[0]
    assert 0.95 < slope < 1.05, slope  # the Null backend consumes samples at the real rate
    assert np.abs(timeline[middle] - clock[middle]).max() < 0.1
    assert play["shown"] > 5


def test_text_speaks_and_screenshot_exits(trained_sample, tmp_path):
    shot = tmp_path / "shot.png"
    result = subprocess.run(_display_command() + [sys.executable, "-m", "avatar", "view", str(trained_sample.root), "--text", "Hello there.",
                                       "--size", str(SIZE), "--mute", "--screenshot", str(shot), "--after", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "source: typed text" in result.stdout
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image[:SIZE, :SIZE].std() > 10


def test_bad_input_is_one_line_before_any_window(trained_sample, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_sample.root / "data", broken / "data")
    (broken / "model").mkdir()
    (broken / "model" / "config.json").write_text("{")
    (broken / "model" / "avatar.safetensors").write_bytes(b"nope")
    for folder, extra in ((tmp_path / "missing", []), (broken, []), (trained_sample.root, ["--audio", tmp_path / "none.wav"])):
        result = run_cli("view", folder, *extra, "--mute", env={"DISPLAY": ""})
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("avatar: error:"), result.stderr
    result = run_cli("view", trained_sample.root, "--mute", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert result.returncode != 0 and "xvfb-run" in result.stderr


def test_mic_opens_live_and_hears_silence_without_a_microphone(trained_sample, tmp_path):
    shot = tmp_path / "mic.png"
    result = subprocess.run(_display_command() + [sys.executable, "-m", "avatar", "view", str(trained_sample.root), "--mic",
                                                  "--size", str(SIZE), "--mute", "--screenshot", str(shot), "--after", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "source: microphone (null: no microphone" in result.stdout and shot.is_file()


def test_watch_opens_on_the_checkpoint_and_picks_up_the_finished_avatar(fitting, tmp_path):
    folder, finished = fitting
    shot = tmp_path / "watch.png"
    view = subprocess.Popen(_display_command() + [sys.executable, "-m", "avatar", "view", str(folder.root), "--watch",
                                                  "--size", str(SIZE), "--mute", "--screenshot", str(shot), "--after", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in view.stdout:  # the window is up once it names the model it shows
        lines.append(line)
        if line.startswith("model: checkpoint at step"):
            break
    for path in finished.iterdir():  # the fit ends
        shutil.move(path, folder.model / path.name)
    out, err = view.communicate(timeout=300)
    lines.append(out)
    assert view.returncode == 0, err[-2000:]
    text = "".join(lines)
    assert "source: the video's own motion" in text and "model: the trained avatar" in text and shot.is_file()
