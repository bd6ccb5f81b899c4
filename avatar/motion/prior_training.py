"""Training the learned prior (learned_prior.py) on preprocessed talking clips: `scripts/train_prior.py` runs it.

Each clip gives its training part only (the held-out tail stays out, so `avatar eval` on that tail measures
speech the prior never saw): the audio features of the clip and of pitch-shifted copies of its audio, and the
tracked mouth channels in units of the speaker's own range. The last `VALIDATION_FRACTION` of each training
part picks the step count. The live net is taught by the offline one: its inputs are the features the live path has
(`streamed_features`), its target the offline net's output, so live motion follows offline motion.
"""
from __future__ import annotations

import json

import numpy as np

from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_path, atomic_write_json
from avatar.motion.context_net import LIVE_FUTURE, OFFLINE_FUTURE
from avatar.motion.context_training import Augment, Sequence, fit_context_net
from avatar.motion.learned_prior import (PRIOR_FPS, PRIOR_FILE, PRIOR_META, LearnedPrior, at_rate, audio_inputs, checksum,
                                         loudness_column, speaking)
from avatar.motion.mapping import ALL_CHANNELS, channel_correlations, tracked_channels
from avatar.motion.visemes import CHANNELS

PITCH_SHIFTS = (-2.0, 2.0)  # semitones: a lower and a higher voice besides the real one
VALIDATION_FRACTION = 0.15
CHANNEL_WEIGHTS = (3.0, 2.0, 1.0, 1.0, 1.0, 1.0)
"""How much each mouth channel (CHANNELS order) counts in the prior's loss: the opening and the closure are what a
viewer reads first (on the dev clips' tails the jaw r rose from about the hand prior's to above it with these)."""


def feature_copies(folder: AvatarFolder, shifts=PITCH_SHIFTS, live_lookahead: float | None = None) -> list[dict]:
    """The folder's driver features ({"ppg", "energy", "pitch"} per frame), then those of its audio shifted by each
    of `shifts` semitones (same timing, so the same tracked motion belongs to every copy). With `live_lookahead`
    (seconds), each copy also holds under "live" its features as the live path has them (`streamed_features`)."""
    import librosa

    from avatar.audio import SAMPLE_RATE
    from avatar.audio.features import driver_features
    from avatar.audio.io import load_audio
    from avatar.folder import preprocessed_config
    from avatar.io_utils import load_npz
    from avatar.motion.live_features import streamed_features, streamed_hops

    features = load_npz(folder.features)
    count = len(features["energy"])
    copies = [{k: features[k] for k in ("ppg", "energy", "pitch")}]
    if not shifts and live_lookahead is None:
        return copies
    fps = json.loads(folder.manifest.read_text())["fps"]
    wave, settings = load_audio(folder.audio, SAMPLE_RATE), preprocessed_config(folder).audio
    waves = [wave]
    for semitones in shifts:
        waves.append(librosa.effects.pitch_shift(wave, sr=SAMPLE_RATE, n_steps=semitones))
        copies.append(driver_features(waves[-1], count, fps, settings))
    if live_lookahead is not None:
        for copy, w in zip(copies, waves):
            copy["live"] = streamed_features(streamed_hops(w, count, fps, settings, live_lookahead), count)
    return copies


def speaker_channels(folder: AvatarFolder) -> tuple[np.ndarray, np.ndarray]:
    """([T, 6] tracked mouth channels in units of the speaker's range (95th percentile of the training part; closure
    as is), [T] 1 where the face was tracked)."""
    from avatar.io_utils import load_npz

    tracking = load_npz(folder.tracking)
    train = json.loads(folder.manifest.read_text())["split"]["train"]
    channels = tracked_channels(tracking["blendshapes"], [str(n) for n in tracking["blendshape_names"]], tracking["landmarks"])
    valid = tracking["valid"].astype(bool)
    rows = np.flatnonzero(valid[train[0]:train[1]]) + train[0]
    scale = np.maximum(np.percentile(channels[rows], 95, axis=0), 1e-3)
    scale[ALL_CHANNELS.index("lip_close")] = 1.0
    return (channels / scale)[:, : len(CHANNELS)].astype(np.float32), valid.astype(np.float32)


def clip_material(folder: AvatarFolder, shifts=PITCH_SHIFTS) -> dict:
    """{"train": [Sequence], "validation": [Sequence], "tail": (inputs, hand curves, gate, tracked, weights, and
    the live path's inputs and hand curves), "copies": [...]} of one clip at PRIOR_FPS: sequences per feature
    copy, targets the tracked channels minus the hand curves; "copies" keeps, per copy, what the live net's
    teacher needs (`live_material`)."""
    from avatar.audio.phonemes import token_names
    from avatar.motion.live import LIVE_LOOKAHEAD_S

    manifest = json.loads(folder.manifest.read_text())
    fps, (t0, t1), (e0, e1) = manifest["fps"], manifest["split"]["train"], manifest["split"]["test"]
    channels, valid = speaker_channels(folder)
    tokens = token_names()
    material: dict = {"train": [], "validation": [], "tail": None, "copies": [], "fps": fps,
                      "parts": training_parts(t0, t1)}
    for i, f in enumerate(feature_copies(folder, shifts, LIVE_LOOKAHEAD_S)):
        inputs, mouth = audio_inputs(f["ppg"], tokens, f["energy"], f["pitch"], fps)
        gate = speaking(f["energy"], fps)
        live_inputs, live_mouth = audio_inputs(f["live"]["ppg"], tokens, f["live"]["energy"], f["live"]["pitch"], fps)
        if i == 0 and e1 > e0:
            tail = slice(e0, e1)
            material["tail"] = tuple(v[tail] for v in (inputs, mouth, gate, channels, valid, live_inputs, live_mouth))
        material["copies"].append((inputs, mouth, gate, live_inputs, live_mouth))
        for part, (a, b) in material["parts"].items():
            material[part].extend(_sequences(fps, a, b, inputs, channels - mouth, valid))
    return material


def training_parts(t0: int, t1: int) -> dict[str, tuple[int, int]]:
    """{"train": frames, "validation": the last VALIDATION_FRACTION of them} of a training part t0..t1."""
    cut = t1 - int(round(VALIDATION_FRACTION * (t1 - t0)))
    return {"train": (t0, cut), "validation": (cut, t1)}


def _sequences(fps: float, a: int, b: int, inputs: np.ndarray, target: np.ndarray, weights: np.ndarray) -> list[Sequence]:
    """Frames a..b as one Sequence at PRIOR_FPS (none if too short)."""
    n = int(round((b - a) * PRIOR_FPS / fps))
    return [Sequence(*(at_rate(v[a:b], fps, PRIOR_FPS, n) for v in (inputs, target, weights)))] if n >= 8 else []


def live_material(material: dict, offline) -> dict[str, list[Sequence]]:
    """The live net's sequences of one clip: its inputs the live path's features, its target what the offline net
    `offline` makes of the offline features (minus the live hand curves): it learns to match the offline prior,
    on every frame (tracked or not)."""
    from avatar.motion.learned_prior import LearnedPrior

    teacher = LearnedPrior(offline, offline, {})
    fps, out = material["fps"], {"train": [], "validation": []}
    for inputs, mouth, gate, live_inputs, live_mouth in material["copies"]:
        target = teacher.channels(inputs, mouth, fps, np.ones_like(gate)) - live_mouth
        for part, (a, b) in material["parts"].items():
            out[part].extend(_sequences(fps, a, b, live_inputs, target, np.ones(len(target), np.float32)))
    return out


def train_prior(folders: list[AvatarFolder], steps: int = 3000, seed: int = 0, shifts=PITCH_SHIFTS) -> tuple[LearnedPrior, dict]:
    """The offline net trained on every clip's training part, the live net taught by it (`live_material`); the
    report holds, per clip, the per-channel r of the hand curves and of the learned prior against the tracked
    channels on its held-out tail."""
    material = [clip_material(f, shifts) for f in folders]
    train = [s for m in material for s in m["train"]]
    validation = [s for m in material for s in m["validation"]]
    if not train or not validation:
        raise ValueError("the prior needs clips with at least a few seconds of tracked training frames")
    augment = Augment(loudness_column=loudness_column(train[0].inputs), output_weights=CHANNEL_WEIGHTS)
    report = {"clips": {}, "training_frames": int(sum(len(s.weights) for s in train + validation) // (1 + len(shifts)))}
    offline, report["offline"] = fit_context_net(train, validation, steps, OFFLINE_FUTURE, augment, seed)
    taught = [live_material(m, offline) for m in material]
    live, report["live"] = fit_context_net([s for t in taught for s in t["train"]], [s for t in taught for s in t["validation"]],
                                           steps, LIVE_FUTURE, augment, seed)
    prior = LearnedPrior(offline, live, {})
    for folder, m in zip(folders, material):
        if m["tail"] is None:
            continue
        inputs, mouth, gate, tracked, weights, live_inputs, live_mouth = m["tail"]
        offline_channels = prior.channels(inputs, mouth, m["fps"], gate)
        live_channels = prior.channels(live_inputs, live_mouth, m["fps"], gate, live=True)
        report["clips"][folder.root.name] = {
            "hand_r": channel_correlations(mouth, tracked, weights),
            "learned_r": channel_correlations(offline_channels, tracked, weights),
            "learned_live_r": channel_correlations(live_channels, tracked, weights),
            "live_vs_offline_r": channel_correlations(live_channels, offline_channels, np.ones_like(weights))}
    return prior, report


def save_prior(prior: LearnedPrior, report: dict, path=PRIOR_FILE, meta_path=PRIOR_META) -> None:
    """The nets as safetensors and, beside them, their checksum and the training report."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in prior.arrays().items()}, str(tmp))
        tmp.chmod(0o644)  # package data: readable by everyone
    atomic_write_json(meta_path, {"sha256": checksum(path), "fps": PRIOR_FPS, "future_frames": {"offline": OFFLINE_FUTURE,
                                  "live": LIVE_FUTURE}, "report": report})
