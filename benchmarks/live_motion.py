"""How closely the live audio path follows the offline one: `python benchmarks/live_motion.py AVATAR_DIR [AUDIO ...]`.

Each audio file (default: the avatar's own held-out tail, and the English speech clips of ../shared/data) is fed
to `LiveMotion` in 20 ms chunks, as a microphone would, and also driven offline; prints one JSON object with,
per file and as a mean over files, the correlation of the six prior mouth channels (`mouth_r`, per channel and
`mean`) and of the adapted code entries (`codes_r`) between the two. `nets_only` is the same with the offline
features fed to the live nets: what the nets' shorter look-ahead costs, apart from the recogniser's. `hand_r` is
the hand prior's curves as each hop computes them (its features, loudness levels and window end) against the
offline curves: what the look-ahead leaves of the audio before any net (the curves anticipate a sound by up to
about 0.26 s, so no net that sees less can follow them all the way).
The avatar folder needs only preprocessing: without a driver, one is fitted (not saved).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHUNK = 320  # 20 ms at 16 kHz
SHARED_SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


def driver_of(folder):
    import torch

    from avatar.data.avatar_data import AvatarData
    from avatar.errors import AvatarError
    from avatar.motion.driver import Driver, fit_driver

    try:
        return Driver.load(folder)
    except AvatarError:
        data = AvatarData(folder, 64, device=torch.device("cpu"))
        return fit_driver(folder, data.motion.numpy(), data.rest_pose.numpy())


def own_tail(folder) -> np.ndarray:
    from avatar.audio.io import load_audio

    manifest = json.loads(folder.manifest.read_text())
    wave = load_audio(folder.audio, 16000)
    a, b = manifest["split"]["test"]
    return wave[int(a / manifest["fps"] * 16000): int(b / manifest["fps"] * 16000)]


def correlations(a: np.ndarray, b: np.ndarray) -> list[float | None]:
    return [None if a[:, c].std() < 1e-6 or b[:, c].std() < 1e-6 else round(float(np.corrcoef(a[:, c], b[:, c])[0, 1]), 4)
            for c in range(a.shape[1])]


def together(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.corrcoef(a.ravel() - a.mean(), b.ravel() - b.mean())[0, 1]), 4)


def compare(driver, settings, fps: float, wave: np.ndarray, lookahead: float) -> dict:
    from avatar.audio.features import extract_features
    from avatar.audio.phonemes import token_names
    from avatar.motion.live import LiveMotion
    from avatar.motion.visemes import CHANNELS

    count = int(round(len(wave) / 16000 * fps))
    f = extract_features(wave, count, fps, settings)
    zeros = np.zeros(count, np.float32)
    codes, mouth = driver.speech_codes(f.ppg, token_names(), f.energy, f.pitch, fps, zeros)
    net_codes, net_mouth = driver.speech_codes(f.ppg, token_names(), f.energy, f.pitch, fps, zeros, live=True)
    live = LiveMotion(driver, settings, fps, lookahead_s=lookahead)
    out = [live.push(wave[s: s + CHUNK]) for s in range(0, len(wave), CHUNK)]
    live_codes = np.concatenate(out + [live.finish()])
    blink = live.blink[:count, None] * driver.mapping.weights[-1][None]  # the live path's own blinks; offline had none
    dims = driver.dims

    def block(m: np.ndarray, c: np.ndarray) -> dict:
        r = correlations(m, mouth)
        known = [v for v in r if v is not None]
        return {"mouth_r": {**dict(zip(CHANNELS, r)), "mean": round(float(np.mean(known)), 4)},
                "codes_r": together(c[:, dims], codes[:, dims])}
    return {"seconds": round(len(wave) / 16000, 2), **block(np.array(live.mouth), live_codes - blink),
            "nets_only": block(net_mouth, net_codes), "hand_r": hand_curves_r(wave, count, fps, settings, lookahead, f)}


def hand_curves_r(wave: np.ndarray, count: int, fps: float, settings, lookahead: float, offline) -> float:
    """Mean over the six channels of r between the hand prior's curves as the live path's hops have them and the
    offline curves of the same audio (`offline`: its `extract_features`)."""
    from avatar.audio.phonemes import token_names
    from avatar.motion.learned_prior import audio_inputs
    from avatar.motion.live_features import streamed_hops

    tokens = token_names()
    curves = [audio_inputs(h.features["ppg"], tokens, h.features["energy"], h.features["pitch"], fps, 1.0, h.levels)[1][h.new]
              for h in streamed_hops(wave, count, fps, settings, lookahead)]
    reference = audio_inputs(offline.ppg, tokens, offline.energy, offline.pitch, fps)[1]
    known = [v for v in correlations(np.concatenate(curves)[:count], reference) if v is not None]
    return round(float(np.mean(known)), 4)


def main() -> None:
    from avatar.audio.io import load_audio
    from avatar.folder import AvatarFolder, preprocessed_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar")
    parser.add_argument("audio", nargs="*")
    parser.add_argument("--lookahead", type=float, default=0.12)
    args = parser.parse_args()
    folder = AvatarFolder(Path(args.avatar))
    driver, settings = driver_of(folder), preprocessed_config(folder).audio
    fps = json.loads(folder.manifest.read_text())["fps"]
    sources = {"own_tail": own_tail(folder)}
    files = [Path(a) for a in args.audio] or sorted(p for p in SHARED_SPEECH.glob("en_*") if p.is_file())
    sources.update({p.stem: load_audio(p, 16000) for p in files})
    result = {name: compare(driver, settings, fps, wave, args.lookahead) for name, wave in sources.items()}
    result["mean"] = {"mouth_r": round(float(np.mean([r["mouth_r"]["mean"] for r in result.values()])), 4),
                      "codes_r": round(float(np.mean([r["codes_r"] for r in result.values()])), 4),
                      "nets_only_mouth_r": round(float(np.mean([r["nets_only"]["mouth_r"]["mean"] for r in result.values()])), 4),
                      "hand_r": round(float(np.mean([r["hand_r"] for r in result.values()])), 4)}
    result["lookahead_s"] = args.lookahead
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
