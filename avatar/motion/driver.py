"""Audio to motion for one person: the generic prior, this person's channel map and adapter, blinks and
head pose, fitted from their avatar folder and kept in `model/driver.safetensors` + `model/driver.json`."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from avatar.data.avatar_data import torso_signal
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_path, atomic_write_json
from avatar.motion.adapter import Adapter, AdapterReport, adapted_dims, train_adapter
from avatar.motion.mapping import ALL_CHANNELS, ChannelMap, tracked_channels
from avatar.motion.nonverbal import BlinkStats, PoseLibrary
from avatar.motion.prior import loudness, mouth_curves, silence_gate, viseme_posteriors

LEAD_S = 0.08
"""How much earlier than the recogniser's phoneme peaks the mouth shapes are placed. Real speakers close
their lips 3-4 frames (25 fps) before hama's span centres; with this lead the rendered avatar does too
(benchmarks/lipsync.py: best lag -3 or -4 on unseen English speech)."""
DRIVER_WEIGHTS, DRIVER_META = "driver.safetensors", "driver.json"
PAUSE_MODES = ("closed", "person")
"""What the mouth does in pauses: `closed` (lips shut, the default for any voice) or `person` (as this
person held it in the pauses of their video, e.g. lips apart while breathing between phrases)."""


def audio_inputs(ppg: np.ndarray, tokens: list[str], energy: np.ndarray, pitch: np.ndarray, fps: float,
                 mouth_scale: float = 1.0, levels: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(adapter inputs [T, 22], prior mouth channels [T, 6]) from per-frame audio features (`levels`: the
    speech and silence levels loudness is measured against; None: this clip's own)."""
    mouth = mouth_curves(ppg, tokens, energy, fps, LEAD_S, mouth_scale, levels)
    visemes, mass = viseme_posteriors(ppg, tokens)
    inputs = np.concatenate([mouth, visemes, mass[:, None], loudness(energy, levels)[:, None], (pitch > 0)[:, None]], 1)
    return inputs.astype(np.float32), mouth


def speaking(energy: np.ndarray, fps: float, levels: tuple[float, float] | None = None) -> np.ndarray:
    """[T] 1 while speaking, 0 in sustained silence (where the prior alone decides: mouth closed)."""
    return silence_gate(loudness(energy, levels), fps)


@dataclass
class DrivenMotion:
    codes: np.ndarray  # [T, D] motion codes
    poses: np.ndarray  # [T, 4, 4] head poses
    mouth: np.ndarray  # [T, 6] prior mouth channels
    blink: np.ndarray  # [T]
    segments: list[int]  # pose segments used (generated poses)
    torso: np.ndarray  # [T, 4] torso signal moving with the head poses (the person's own, stitched the same way)


@dataclass
class Driver:
    mapping: ChannelMap
    adapter: Adapter | None
    dims: np.ndarray  # [K] code entries the adapter corrects
    blinks: BlinkStats
    poses: PoseLibrary
    report: dict

    def motion(self, ppg: np.ndarray, tokens: list[str], energy: np.ndarray, pitch: np.ndarray, fps: float,
               pose: str = "generated", mouth_scale: float = 1.0, seed: int = 0, pauses: str = "closed") -> DrivenMotion:
        if pauses not in PAUSE_MODES:
            raise AvatarError(f"--pauses {pauses!r}: choose one of {', '.join(PAUSE_MODES)}")
        rng = np.random.default_rng(seed)
        blink = self.blinks.generate(len(ppg), fps, rng)
        codes, mouth = self.speech_codes(ppg, tokens, energy, pitch, fps, blink, mouth_scale, pauses)
        segments: list[int] = []
        if pose == "still":
            poses, torso = self.poses.still(len(mouth)), np.zeros((len(mouth), 4), np.float32)
        elif pose == "replay":
            poses, torso = self.poses.replay(len(mouth)), self.poses.replay_torso(len(mouth))
        else:
            poses, segments, torso = self.poses.generate(loudness(energy), rng)
        return DrivenMotion(codes, poses, mouth, blink, segments, torso)

    def speech_codes(self, ppg: np.ndarray, tokens: list[str], energy: np.ndarray, pitch: np.ndarray, fps: float,
                     blink: np.ndarray, mouth_scale: float = 1.0, pauses: str = "closed",
                     levels: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """([T, D] motion codes, [T, 6] prior mouth channels) of speech features with the blink channel `blink`
        [T]: the prior, this person's map and adapter (`levels`: see `audio_inputs`)."""
        inputs, mouth = audio_inputs(ppg, tokens, energy, pitch, fps, mouth_scale, levels)
        codes = self.mapping.codes(np.concatenate([mouth, blink[:, None]], 1))
        if self.adapter is not None:
            with torch.no_grad():
                correction = self.adapter(torch.from_numpy(inputs)[None])[0].numpy()
            gate = speaking(energy, fps, levels) if pauses == "closed" else np.ones(len(codes), np.float32)
            codes[:, self.dims] += mouth_scale * gate[:, None] * correction
        return codes.astype(np.float32), mouth

    def save(self, folder: AvatarFolder) -> None:
        from safetensors.torch import save_file

        arrays = {**self.mapping.arrays(), "dims": self.dims, "blink_shape": self.blinks.shape,
                  "pose_poses": self.poses.poses, "pose_loudness": self.poses.loudness, "pose_rest": self.poses.rest,
                  "pose_torso": self.poses.torso}
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        if self.adapter is not None:
            tensors.update({f"adapter.{k}": v for k, v in self.adapter.state_dict().items()})
        folder.model.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder.model / DRIVER_WEIGHTS) as tmp:
            save_file(tensors, str(tmp))
        atomic_write_json(folder.model / DRIVER_META, {"blink_rate_per_min": self.blinks.rate_per_min, "fps": self.poses.fps,
                                                       "has_adapter": self.adapter is not None, "report": self.report})

    @classmethod
    def load(cls, folder: AvatarFolder) -> "Driver":
        from safetensors.torch import load_file

        weights, meta_path = folder.model / DRIVER_WEIGHTS, folder.model / DRIVER_META
        if not weights.is_file() or not meta_path.is_file():
            raise AvatarError(f"{folder.root} has no audio driver; run `avatar train {folder.root} --resume` or fit again")
        tensors = {k: v.numpy() for k, v in load_file(str(weights)).items()}
        meta = json.loads(meta_path.read_text())
        adapter = None
        if meta["has_adapter"]:
            state = {k[len("adapter."):]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("adapter.")}
            adapter = Adapter(state["layers.0.weight"].shape[1], state["layers.6.weight"].shape[0])
            adapter.load_state_dict(state)
            adapter.eval()
        return cls(ChannelMap.from_arrays(tensors), adapter, tensors["dims"],
                   BlinkStats(meta["blink_rate_per_min"], tensors["blink_shape"]),
                   PoseLibrary(tensors["pose_poses"], tensors["pose_loudness"], tensors["pose_rest"], meta["fps"],
                               tensors.get("pose_torso")), meta["report"])


def fit_driver(folder: AvatarFolder, codes: np.ndarray, rest_pose: np.ndarray, seed: int = 0, steps: int = 800) -> Driver:
    """The person's driver from their preprocessed folder and motion codes [T, D] (those the avatar was trained on);
    `steps` 0: the generic prior through the person's map alone, no adapter (seconds, not minutes)."""
    from avatar.io_utils import load_npz

    manifest = json.loads(folder.manifest.read_text())
    fps = manifest["fps"]
    tracking, features = load_npz(folder.tracking), load_npz(folder.features)
    names = [str(n) for n in tracking["blendshape_names"]]
    train, test = manifest["split"]["train"], manifest["split"]["test"]
    valid = tracking["valid"]
    channels = tracked_channels(tracking["blendshapes"], names, tracking["landmarks"])
    rows = np.flatnonzero(valid[train[0]:train[1]]) + train[0]
    mapping = ChannelMap.fit(channels[rows], codes[rows])
    blinks = BlinkStats.measure(channels[:, ALL_CHANNELS.index("blink")] / mapping.scale[ALL_CHANNELS.index("blink")], fps)
    tokens = [str(t) for t in features["ppg_tokens"]]
    inputs, mouth = audio_inputs(features["ppg"], tokens, features["energy"], features["pitch"], fps)
    dims = adapted_dims(names, codes.shape[1])
    # The adapter learns what the prior misses: the tracked code minus the code the prior's mouth (plus the
    # true blinks) maps to. Pauses are learned too (for `pauses="person"`); `closed` switches it off there.
    base = mapping.codes(np.concatenate([mouth, mapping.normalise(channels)[:, -1:]], 1))
    adapter, report = None, None
    if steps > 0:
        adapter, report = train_adapter(inputs, base[:, dims], codes[:, dims], np.array(train), np.array(test),
                                        weights=valid.astype(np.float32), steps=steps, seed=seed)
    torso = torso_signal(folder, manifest["width"])[0][train[0]:train[1]]
    poses = PoseLibrary(tracking["head_pose"][train[0]:train[1]].astype(np.float32), loudness(features["energy"])[train[0]:train[1]],
                        rest_pose.astype(np.float32), fps, torso)
    summary = _report(report, blinks)
    return Driver(mapping, adapter, dims, blinks, poses, summary)


def _report(report: AdapterReport | None, blinks: BlinkStats) -> dict:
    if report is None:
        return {"blink_rate_per_min": round(blinks.rate_per_min, 2)}
    return {"adapter_validation_error": round(report.validation_error, 5),
            "prior_only_validation_error": round(report.prior_validation_error, 5),
            "adapter_train_error": round(report.train_error, 5), "adapter_best_step": report.steps,
            "blink_rate_per_min": round(blinks.rate_per_min, 2)}
