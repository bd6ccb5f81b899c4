"""Preprocessing speed and memory: `python benchmarks/preprocess.py VIDEO [--loop-to SECONDS]`.

Runs `avatar preprocess` on VIDEO in a fresh process (as a user would, model loading included) and
prints one JSON object: realtime_factor (video seconds per wall second), seconds_per_stage, peak_rss_mb.
`--loop-to` first makes a longer clip by playing VIDEO forwards and backwards (its audio looped), to
measure a long video at the same resolution.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def loop_video(source: Path, seconds: float, out: Path) -> Path:
    import av

    from avatar.audio.io import load_audio

    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        fps = float(container.streams.video[0].average_rate or 25)
    audio = load_audio(source, 16000)
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    count = int(seconds * fps)
    total = int(seconds * 16000)
    audio = np.tile(audio, total // max(len(audio), 1) + 1)[:total]
    h, w = frames[0].shape[:2]
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        for i in range(count):
            for packet in video.encode(av.VideoFrame.from_ndarray(frames[order[i % len(order)]], format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        for start in range(0, total, 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, start: start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--loop-to", type=float, default=0.0, help="loop the clip to this many seconds first")
    parser.add_argument("--keep", type=Path, help="keep the avatar folder here instead of a temporary one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="avatar-bench-") as tmp:
        video = args.video
        if args.loop_to:
            video = loop_video(args.video, args.loop_to, Path(tmp) / f"{args.video.stem}_loop.mp4")
        out = args.keep or Path(tmp) / "avatar"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "avatar", "preprocess", str(video), "--out", str(out)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        manifest = json.loads((out / "data" / "manifest.json").read_text())
        stages = {p.stem: json.loads(p.read_text())["seconds"] for p in sorted((out / "data" / "stages").glob("*.json"))}
        print(json.dumps({
            "video": args.video.name,
            "looped_to_s": args.loop_to or None,
            "duration_s": manifest["duration_s"],
            "frames": manifest["num_frames"],
            "size": manifest["width"],
            "wall_s": round(wall, 2),
            "realtime_factor": round(manifest["duration_s"] / wall, 3),
            "seconds_per_stage": stages,
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "cpus": os.cpu_count(),
        }, indent=2))


if __name__ == "__main__":
    main()
