"""`make bench`: every benchmark in this folder, each printing one JSON object.

The preprocessing benchmark runs on the built-in sample made at 512x512 and looped to 60 s, so it needs
nothing outside the repository.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(*args: str) -> None:
    print(f"$ {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, *args], check=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="avatar-bench-") as tmp:
        sample = Path(tmp) / "sample512.mp4"
        subprocess.run([sys.executable, "-m", "avatar", "sample", "--out", str(sample), "--size", "512", "--seconds", "10"],
                       check=True, capture_output=True)
        run(str(HERE / "preprocess.py"), str(sample), "--loop-to", "60")
    for script in sorted(HERE.glob("*.py")):
        if script.name not in ("run_all.py", "preprocess.py"):
            run(str(script))


if __name__ == "__main__":
    main()
