"""Fit speed: `python benchmarks/fit.py [VIDEO] [--recipe preview] [avatar fit flags]`.

Runs `avatar fit` in a fresh process (preprocessing included, cached nothing), then `avatar eval`, and
prints one JSON object: fit_seconds (wall, everything), seconds_per_iter per training stage, and the
held-out PSNR. Without VIDEO it uses the 60 s real clip from ../shared/data when present, else the
built-in sample.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "02_en_tedlieu_hdtf_60s_256_25fps.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path)
    parser.add_argument("--recipe", default="preview")
    parser.add_argument("--keep", type=Path, help="keep the avatar folder here")
    args, overrides = parser.parse_known_args()  # the rest go to avatar fit, e.g. --train.iterations=2000
    with tempfile.TemporaryDirectory(prefix="avatar-bench-") as tmp:
        video = args.video
        if video is None:
            if SHARED_CLIP.is_file():
                video = SHARED_CLIP
            else:
                video = Path(tmp) / "sample.mp4"
                subprocess.run([sys.executable, "-m", "avatar", "sample", "--out", str(video), "--seconds", "20"], check=True,
                               capture_output=True)
        out = args.keep or Path(tmp) / "avatar"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "avatar", "fit", str(video), "--out", str(out), "--recipe", args.recipe,
                        *overrides], check=True, capture_output=True)
        fit_seconds = time.perf_counter() - start
        subprocess.run([sys.executable, "-m", "avatar", "eval", str(out), "--no-video"], check=True, capture_output=True)
        info = json.loads((out / "model" / "config.json").read_text())["info"]
        metrics = json.loads((out / "eval" / "metrics.json").read_text())
        preprocess = sum(json.loads(p.read_text())["seconds"] for p in (out / "data" / "stages").glob("*.json"))
        print(json.dumps({
            "video": video.name,
            "recipe": args.recipe,
            "fit_seconds": round(fit_seconds, 1),
            "preprocess_stage_seconds": round(preprocess, 1),
            "train_seconds": round(sum(info["seconds_per_stage"].values()), 1),
            "seconds_per_iter": {k: round(info["seconds_per_stage"][k] / max(n, 1), 4) for k, n in info["steps_per_stage"].items()},
            "steps": info["steps"],
            "device": info["device"],
            "sizes": info["sizes"],
            "test_psnr": metrics["psnr"],
            "test_ssim": metrics["ssim"],
            "lmd_mouth_px": metrics["lmd_mouth_px"],
            "regions_psnr": {name: scores["psnr"] for name, scores in metrics["regions"].items()},
            "regions_ssim": {name: scores["ssim"] for name, scores in metrics["regions"].items()},
            "face_colour_shift": metrics["regions"].get("face", {}).get("colour_shift"),
        }, indent=2))


if __name__ == "__main__":
    main()
