"""The viewer window's speed while it plays speech: `python benchmarks/viewer.py [AVATAR_DIR] [--seconds 10]`.

Opens the real window (under Xvfb when there is no display: it re-runs itself through `xvfb-run`) twice:
1. driven by synthesised speech (the audio-driven path, motion interpolated between video frames), played
   on the silent Null clock: `fps_512` (frames shown per second at 512 x 512), `dropped_fraction` (frames
   rendered too late to show, of all rendered), mean milliseconds per step;
2. live: the same speech fed at real-time pace in 20 ms chunks, as the microphone would feed it, through
   the live audio path: `live_latency_ms_median` (from a sample entering to the frame showing its moment on
   screen), `live_fps_512`, `live_hop_ms_median` (computing one hop of the live path).
Prints one JSON object. Without AVATAR_DIR it uses the demo avatar (`make demo` makes it).
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


def _open(avatar: Path, size: int):
    from avatar.device import resolve_device
    from avatar.folder import open_avatar_folder
    from avatar.viewer.scene import Scene

    device = resolve_device("auto")
    return Scene(open_avatar_folder(avatar), device, size), device


def _play(window, seconds: float) -> float:
    import time

    for _ in range(20):  # warm up: first renders build caches
        window.tick()
        time.sleep(0.01)
    window.stats = type(window.stats)()
    window.history.clear()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        window.tick()
        time.sleep(max(0.0, 1 / 120 - (time.perf_counter() - tick)))
    return time.perf_counter() - start


def measure(avatar: Path, seconds: float, size: int) -> dict:
    from avatar.viewer.scene import Controls
    from avatar.viewer.sound import Playback
    from avatar.viewer.sources import speak_text
    from avatar.viewer.window import Window
    from avatar.viewer.worker import RenderWorker

    scene, device = _open(avatar, size)
    speech = speak_text(TEXT)
    track = scene.set_speech(speech, Controls())
    playback = Playback(sound=False)
    playback.load(track.source.wave)
    playback.loop = True
    worker = RenderWorker(scene)
    window = Window(worker, playback, "avatar benchmark")
    playback.play()
    elapsed = _play(window, seconds)
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
    }


def measure_live(avatar: Path, seconds: float, size: int) -> dict:
    import threading
    import time

    import numpy as np

    from avatar.viewer.sources import speak_text

    from avatar.viewer.live import LiveFeed
    from avatar.viewer.scene import Controls
    from avatar.viewer.window import Window
    from avatar.viewer.worker import RenderWorker

    wave = speak_text(TEXT).wave
    scene, _ = _open(avatar, size)
    scene.set_live(Controls())
    feed = LiveFeed(scene)
    worker = RenderWorker(scene)
    window = Window(worker, feed.clock, "avatar benchmark (live)")
    done = threading.Event()

    def speak() -> None:  # a microphone: 20 ms of samples every 20 ms of wall time, the clip over and over
        chunk, start, sent = 320, time.perf_counter(), 0
        while not done.is_set():
            due = start + (sent + chunk) / 16000
            time.sleep(max(0.0, due - time.perf_counter()))
            feed.put(wave[np.arange(sent, sent + chunk) % len(wave)], time.perf_counter())
            sent += chunk

    speaker = threading.Thread(target=speak, daemon=True)
    speaker.start()
    elapsed = _play(window, seconds)
    done.set()
    latency = [1e3 * (wall - (feed.clock.start + position / scene.fps)) for wall, position in window.history]
    out = {f"live_fps_{size}": round(window.stats.shown / elapsed, 2),
           "live_latency_ms_median": round(float(np.median(latency)), 1) if latency else None,
           "live_latency_ms_p90": round(float(np.percentile(latency, 90)), 1) if latency else None,
           "live_hop_ms_median": round(float(np.median(feed.hop_ms)), 1) if feed.hop_ms else None,
           "live_lookahead_s": feed.motion.lookahead_s}
    speaker.join(timeout=2)
    feed.close()
    worker.close()
    window.dpg.destroy_context()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar", nargs="?", default=str(ROOT / "out" / "demo" / "avatar"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--part", choices=["file", "live"], help=argparse.SUPPRESS)  # one window per process
    args = parser.parse_args()
    if args.part:
        measure_part = measure if args.part == "file" else measure_live
        print(json.dumps(measure_part(Path(args.avatar), args.seconds, args.size)))
        return
    display = [] if os.environ.get("DISPLAY") else ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24"]
    if display and not shutil.which("xvfb-run"):
        sys.exit("no display and no xvfb-run (apt-get install xvfb)")
    result = {}
    for part in ("file", "live"):
        command = display + [sys.executable, __file__, args.avatar, "--seconds", str(args.seconds), "--size", str(args.size),
                             "--part", part]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"the {part} measurement failed: {run.stderr.strip().splitlines()[-1:] or run.returncode}")
        result.update(json.loads(run.stdout.strip().splitlines()[-1]))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
