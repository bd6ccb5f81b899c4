"""Batch throughput: `python benchmarks/batch.py [AVATAR_DIR]`.

Eight render jobs (espeak speech, 3-5 s each, two languages) from one avatar, run by `avatar batch` with the
local engine at 1 and 2 workers and with Ray at 2 workers, each into a fresh folder so nothing is skipped.
Prints one JSON object: audio seconds rendered per wall second for each, and Ray's start-up seconds (a local
cluster of 2 CPUs, `ray.init` to the first task's return). Default AVATAR_DIR: the demo avatar (`make demo`).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

SENTENCES = [
    ("en-us", "Good evening, and welcome to the late news."), ("fr", "Bonjour à tous, et bienvenue."),
    ("en-us", "Markets were calm today after a busy week."), ("fr", "Le temps sera doux demain matin."),
    ("en-us", "Our next guest has travelled a long way to be here."), ("fr", "Merci de nous avoir rejoints."),
    ("en-us", "Stay with us for the weather after the break."), ("fr", "À demain, même heure, même endroit."),
]


def write_jobs(folder: Path, avatar: Path) -> Path:
    from avatar.audio.io import write_wav
    from avatar.speech_synth import synthesize

    jobs = []
    for i, (voice, text) in enumerate(SENTENCES):
        samples, rate = synthesize(text, voice=voice)
        write_wav(folder / f"speech{i}.wav", samples, rate)
        jobs.append(f"{avatar},{folder / f'speech{i}.wav'},clip{i}")
    path = folder / "jobs.csv"
    path.write_text("avatar,audio,name\n" + "\n".join(jobs) + "\n")
    return path


def ray_start_seconds() -> float:
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.get(ray.remote(lambda: 0).remote())
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar", nargs="?", default="out/demo/avatar", help="a trained avatar folder")
    args = parser.parse_args()
    from avatar.batch.run import run_batch
    from avatar.folder import open_avatar_folder

    avatar = open_avatar_folder(args.avatar).root.resolve()
    result: dict = {"avatar": str(avatar), "jobs": len(SENTENCES)}
    with tempfile.TemporaryDirectory(prefix="avatar-batch-bench-") as scratch:
        work = Path(scratch)
        jobs = write_jobs(work, avatar)
        for label, engine, workers in (("local_1", "local", 1), ("local_2", "local", 2), ("ray_2", "ray", 2)):
            if engine == "ray":
                result["ray_start_seconds"] = round(ray_start_seconds(), 2)
            report = run_batch(jobs, work / label, engine, workers)
            s = report["summary"]
            if s["done"] != len(SENTENCES):
                print(f"{label}: {s['failed']} jobs failed: {report['jobs']}", file=sys.stderr)
                return 1
            result[f"audio_s_per_wall_s_{label}"] = round(s["audio_seconds_rendered"] / s["wall_seconds"], 3)
            result[f"wall_seconds_{label}"] = s["wall_seconds"]
        result["audio_seconds"] = s["audio_seconds_rendered"]
        import ray

        ray.shutdown()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
