"""Train the learned mouth prior shipped in the package: `python scripts/train_prior.py [VIDEO ...] [--work DIR]`.

Preprocesses each talking clip into DIR (cached: a second run reuses it), trains the offline and live nets on
the clips' training parts (their held-out tails stay out) and writes avatar/motion/prior.safetensors and
prior.json (its checksum and, per clip, the tail's per-channel r of the hand prior and the learned one).
Without VIDEO it uses every clip in ../shared/data/video. Deterministic for a given set of clips and seed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = ROOT.parent / "shared" / "data" / "video"


def main() -> None:
    from avatar.config import AvatarConfig
    from avatar.motion.learned_prior import PRIOR_FILE, PRIOR_META
    from avatar.motion.prior_training import save_prior, train_prior
    from avatar.preprocess import run_preprocess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "prior", help="where the clips are preprocessed")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=PRIOR_FILE, help="the safetensors file (its .json goes beside it)")
    args = parser.parse_args()
    videos = args.videos or sorted(SHARED_VIDEOS.glob("*.mp4"))
    if not videos:
        sys.exit(f"no videos given and none in {SHARED_VIDEOS}")
    folders = [run_preprocess(v, args.work / v.stem, AvatarConfig()) for v in videos]
    prior, report = train_prior(folders, args.steps, args.seed)
    report["videos"] = [v.name for v in videos]
    meta = PRIOR_META if args.out == PRIOR_FILE else args.out.with_suffix(".json")
    save_prior(prior, report, args.out, meta)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
