"""Stage `audio`: audio.wav -> features.npz (ppg [T, 191], mel [T, 80], energy [T], pitch [T])."""
from __future__ import annotations

import numpy as np

from avatar.audio import SAMPLE_RATE
from avatar.audio.features import extract_features
from avatar.audio.io import load_audio
from avatar.audio.phonemes import token_names
from avatar.io_utils import atomic_save_npz
from avatar.preprocess.stages import StageContext
from avatar.preprocess.track import read_manifest


def run_audio(ctx: StageContext) -> None:
    cfg = ctx.config.audio
    manifest = read_manifest(ctx)
    wave = load_audio(ctx.folder.audio, SAMPLE_RATE)
    for _ in ctx.progress(range(1), 1, "audio", unit="clip"):
        features = extract_features(wave, manifest["num_frames"], manifest["fps"], cfg)
    atomic_save_npz(ctx.folder.features, **features.arrays(), ppg_tokens=np.array(token_names()))
