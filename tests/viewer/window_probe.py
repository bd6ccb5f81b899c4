"""Drives the real viewer window on a display and reports what it showed (test_window.py runs it under Xvfb).

python window_probe.py AVATAR AUDIO OUT_DIR  ->  OUT_DIR/report.json and the screenshots it names.
"""
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from avatar.folder import open_avatar_folder
from avatar.viewer.scene import Controls, Scene
from avatar.viewer.sound import Playback
from avatar.viewer.sources import audio_file
from avatar.viewer.window import Window
from avatar.viewer.worker import RenderWorker

SIZE = 128


def settle(window: Window, limit_s: float = 20.0) -> None:
    """Tick until the frame on screen is the one the current controls and clock ask for."""
    end = time.perf_counter() + limit_s
    while time.perf_counter() < end:
        window.tick()
        shown = window.shown
        if (shown is not None and shown[1] == window.controls and not window.pending and window.worker.idle
                and abs(shown[0] - window.playback.position()) < 1e-3):
            for _ in range(3):  # the texture reaches the frame buffer a frame later
                window.tick(draw=True)
            return
        time.sleep(0.005)
    raise TimeoutError("the window never showed the requested frame")


def screenshot(window: Window, path: Path) -> np.ndarray:
    window.screenshot(path, wait_ticks=1)
    for _ in range(8):
        window.tick(draw=True)
        if path.exists():
            break
        time.sleep(0.02)
    image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return image[:SIZE, :SIZE]


def main(avatar: str, audio: str, out: str) -> None:
    out = Path(out)
    scene = Scene(open_avatar_folder(avatar), torch.device("cpu"), SIZE)
    track = scene.set_speech(audio_file(Path(audio)), Controls())
    playback = Playback(sound=False)
    playback.load(track.source.wave)
    worker = RenderWorker(scene)
    window = Window(worker, playback, "probe")
    report = {"backend": playback.backend, "duration": playback.duration}

    playback.seek(0.6)
    settle(window)
    shot = screenshot(window, out / "base.png")
    expected = worker.submit(lambda s: s.render(0.6 * s.fps, window.controls).image).result()
    report["base_vs_render_max"] = int(np.abs(shot.astype(int) - expected).max())
    report["base_vs_render_mean"] = float(np.abs(shot.astype(float) - expected).mean())
    np.save(out / "base.npy", shot)

    for name, value in (("smile", 2.0), ("mouth_scale", 0.0)):
        tag = f"slider-{name}"
        window.dpg.set_value(tag, value)
        window.dpg.get_item_callback(tag)(tag, value)
        settle(window)
        np.save(out / f"{name}.npy", screenshot(window, out / f"{name}.png"))
        window.dpg.set_value(tag, getattr(Controls(), name))
        window.dpg.get_item_callback(tag)(tag, getattr(Controls(), name))

    window.orbit(80, 0)
    settle(window)
    np.save(out / "orbit.npy", screenshot(window, out / "orbit.png"))
    report["yaw"] = window.controls.yaw
    window.edit(yaw=0.0)

    playback.seek(0.0)
    window.toggle_play()
    start = time.perf_counter()
    samples = []
    while playback.playing and time.perf_counter() - start < playback.duration + 5:
        window.tick()
        samples.append((time.perf_counter() - start, playback.position(), window.dpg.get_value("timeline")))
        time.sleep(0.005)
    for _ in range(3):
        window.tick()
    report["play"] = {"samples": samples, "stopped": not playback.playing, "end_position": playback.position(),
                      "shown": window.stats.shown, "dropped": window.stats.dropped}
    worker.close()
    playback.close()
    window.dpg.destroy_context()
    (out / "report.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
