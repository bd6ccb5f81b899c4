"""`make bench`: every benchmark in this folder, each printing one JSON object.

Needs nothing outside the repository: preprocessing runs on the built-in sample made at 512x512 and
looped to 60 s; fit runs on the 60 s real clip from ../shared/data when present, else on the built-in
sample, and the avatar it makes is the one the render and lip-sync benchmarks drive.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> None:
    print(f"$ {script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="avatar-bench-") as tmp:
        sample = Path(tmp) / "sample512.mp4"
        subprocess.run([sys.executable, "-m", "avatar", "sample", "--out", str(sample), "--size", "512", "--seconds", "10"],
                       check=True, capture_output=True)
        run("preprocess.py", str(sample), "--loop-to", "60")
        run("render.py")
        avatar = str(Path(tmp) / "avatar")
        run("fit.py", "--keep", avatar)
        run("render_avatar.py", avatar)
        run("heldout.py", avatar)
        run("render_audio.py", avatar)
        run("lipsync.py", avatar)
        run("batch.py", avatar)
        run("gpu_check.py", "--avatar", avatar)  # {"cuda": false, ...} on a machine without CUDA


if __name__ == "__main__":
    main()
