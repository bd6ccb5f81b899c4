"""Audio-driven rendering speed: `python benchmarks/render_audio.py [AVATAR_DIR] [--audio SPEECH]`.

feature_realtime_factor: seconds of audio turned into per-frame features (phoneme posteriorgram, mel,
energy, pitch) per second of compute. fps_512: frames per second from those features to 8-bit frames
at 512 x 512, audio-to-motion (prior, adapter, blinks, head pose) included. Without AVATAR_DIR an
avatar is fitted quickly on the built-in sample first. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "en_ljspeech_LJ001-0001_10s.wav"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar", nargs="?", type=Path)
    parser.add_argument("--audio", type=Path)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch

    from avatar.audio import SAMPLE_RATE
    from avatar.audio.io import load_audio, write_wav
    from avatar.audio.phonemes import token_names
    from avatar.data.avatar_data import AvatarData
    from avatar.device import resolve_device
    from avatar.folder import AvatarFolder
    from avatar.model.store import load_trained
    from avatar.render.audio_render import load_driver, parse_background, speech_features
    from avatar.render.frames import FrameRenderer, to_uint8
    from avatar.speech_synth import synthesize
    from render_avatar import quick_avatar

    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory(prefix="avatar-bench-") as tmp:
        folder = AvatarFolder(args.avatar or quick_avatar(Path(tmp)))
        speech = args.audio or (SPEECH if SPEECH.is_file() else None)
        if speech is None:
            samples, rate = synthesize("The quick brown fox jumps over the lazy dog, again and again, for a while.")
            speech = Path(tmp) / "speech.wav"
            write_wav(speech, samples, rate)
        wave = load_audio(speech, SAMPLE_RATE)
        seconds = len(wave) / SAMPLE_RATE
        count = int(round(seconds * 25))
        speech_features(folder, wave[:SAMPLE_RATE], 25)  # load the recogniser outside the timing
        start = time.perf_counter()
        features = speech_features(folder, wave, count)
        feature_seconds = time.perf_counter() - start

        trained = load_trained(folder, device)
        driver = load_driver(folder, trained)
        data = AvatarData(folder, 0, basis=trained.basis, device=device)
        renderer = FrameRenderer(trained.model, data.camera.resized(512, 512), parse_background("plate", trained.plate(data.background), 512)[0])
        start = time.perf_counter()
        driven = driver.motion(features.ppg, token_names(), features.energy, features.pitch, 25)
        codes, poses, torsos = torch.from_numpy(driven.codes), torch.from_numpy(driven.poses), torch.from_numpy(driven.torso)
        for i in range(count):
            to_uint8(renderer.render(codes[i], poses[i], torso=torsos[i]))
        render_seconds = time.perf_counter() - start
        print(json.dumps({
            "audio": speech.name,
            "audio_seconds": round(seconds, 2),
            "feature_realtime_factor": round(seconds / feature_seconds, 2),
            "fps_512": round(count / render_seconds, 2),
            "device": str(device),
            "sizes": trained.model.sizes(),
        }, indent=2))


if __name__ == "__main__":
    main()
