"""How the recogniser reads the newest frames of a live window: `python benchmarks/recogniser_context.py [AUDIO ...]`.

The live path runs the recogniser over a window that ends the look-ahead after the frames it makes final and
starts `recogniser_context_s` before them (avatar/motion/live_features.py). For windows ending `--lookahead`
seconds after a frame, with each amount of audio before it, this prints one JSON object: per file and context,
the mean L1 distance between the viseme probabilities of the frame's newest 60 ms (three recogniser frames) and
the offline ones (the whole file read in its usual pieces), over frames every 0.14 s. 0 is the offline reading.
Default files: the English speech clips of ../shared/data.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED_SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
CONTEXTS_S = (0.5, 0.75, 1.0, 1.5)


def edge_distance(wave: np.ndarray, offline: np.ndarray, context_s: float, lookahead_s: float) -> float:
    """Mean L1 distance of the windows' newest viseme probabilities from `offline` ([T, V], the whole file's)."""
    from avatar.audio import phonemes
    from avatar.motion.prior import viseme_posteriors

    tokens = phonemes.token_names()
    before, after = int(round(context_s * phonemes.RATE)), int(round(lookahead_s * phonemes.RATE))
    first = int(round(max(CONTEXTS_S) * phonemes.RATE))  # the same frames for every context
    distances = []
    for t in range(first, len(offline) - after, 7):
        piece = wave[(t - before) * phonemes.HOP: (t + 1 + after) * phonemes.HOP]
        window = phonemes.posteriorgram(piece, chunk_s=len(piece) / phonemes.SAMPLE_RATE + 1)  # one run, as a hop's
        live = viseme_posteriors(window[before - 2: before + 1], tokens)[0]
        distances.append(np.abs(live - offline[t - 2: t + 1]).sum(1).mean())
    return round(float(np.mean(distances)), 4)


def main() -> None:
    from avatar.audio.io import load_audio
    from avatar.audio.phonemes import posteriorgram, token_names
    from avatar.motion.prior import viseme_posteriors

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="*")
    parser.add_argument("--lookahead", type=float, default=0.12)
    args = parser.parse_args()
    files = [Path(a) for a in args.audio] or sorted(p for p in SHARED_SPEECH.glob("en_*") if p.is_file())
    if not files:
        sys.exit(f"no audio given and none in {SHARED_SPEECH}")
    result: dict = {"lookahead_s": args.lookahead}
    for path in files:
        wave = load_audio(path, 16000)
        offline = viseme_posteriors(posteriorgram(wave), token_names())[0]
        result[path.stem] = {f"{c:.2f}": edge_distance(wave, offline, c, args.lookahead) for c in CONTEXTS_S}
    result["mean"] = {f"{c:.2f}": round(float(np.mean([result[p.stem][f"{c:.2f}"] for p in files])), 4) for c in CONTEXTS_S}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
