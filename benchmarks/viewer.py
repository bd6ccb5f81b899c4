"""The viewer window's speed while it plays speech: `python benchmarks/viewer.py [AVATAR_DIR] [--seconds 10]`.

Opens the real window (under Xvfb when there is no display: it re-runs itself through `xvfb-run`), drives the
avatar with synthesised speech (the audio-driven path, motion interpolated between video frames), plays it on
the silent Null clock for `--seconds` and prints one JSON object: `fps_512` (frames shown per second at
512 x 512), `dropped_fraction` (frames rendered too late to show, of all rendered while playing) and the mean
milliseconds per step. Without AVATAR_DIR it uses the demo avatar (`make demo` makes it).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("Good morning, and welcome. Today we look at how the weather changes over the week, "
        "from a bright and windy Monday to a calm and quiet weekend by the sea.")


def measure(avatar: Path, seconds: float, size: int) -> dict:
    import torch

    from avatar.device import resolve_device
    from avatar.folder import open_avatar_folder
    from avatar.viewer.scene import Controls, Scene
    from avatar.viewer.sound import Playback
    from avatar.viewer.sources import speak_text
    from avatar.viewer.window import Window
    from avatar.viewer.worker import RenderWorker

    device = resolve_device("auto")
    scene = Scene(open_avatar_folder(avatar), device, size)
    track = scene.set_speech(speak_text(TEXT), Controls())
    playback = Playback(sound=False)
    playback.load(track.source.wave)
    playback.loop = True
    worker = RenderWorker(scene)
    window = Window(worker, playback, "avatar benchmark")
    for _ in range(20):  # warm up: first renders build caches
        window.tick()
        time.sleep(0.01)
    window.toggle_play()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        window.tick()
        time.sleep(max(0.0, 1 / 120 - (time.perf_counter() - tick)))
    elapsed = time.perf_counter() - start
    stats = window.stats
    worker.close()
    playback.close()
    window.dpg.destroy_context()
    rendered = stats.shown + stats.dropped
    return {
        "avatar": str(avatar),
        f"fps_{size}": round(stats.shown / elapsed, 2),
        "dropped_fraction": round(stats.dropped / max(rendered, 1), 4),
        "ms_per_step": {k: round(v, 2) for k, v in stats.timings.items()},
        "seconds": round(elapsed, 1),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "display": os.environ.get("DISPLAY", ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar", nargs="?", default=str(ROOT / "out" / "demo" / "avatar"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        if not shutil.which("xvfb-run"):
            sys.exit("no display and no xvfb-run (apt-get install xvfb)")
        sys.exit(subprocess.call(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", sys.executable, *sys.argv]))
    print(json.dumps(measure(Path(args.avatar), args.seconds, args.size), indent=2))


if __name__ == "__main__":
    main()
