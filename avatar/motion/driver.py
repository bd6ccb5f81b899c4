"""Audio to motion for one person: the priors, this person's channel map and adapters, blinks and head pose,
fitted from their avatar folder and kept in `model/driver.safetensors` + `model/driver.json`.

Speech features -> the hand prior's mouth curves -> the learned prior's channels (learned_prior.py) -> this
person's channel map to a full motion code -> the personal adapter's correction. The adapter is a `ContextNet`
over the same features and channels, trained on the person's video (and pitch-shifted copies of its audio)
with rate and loudness augmentation for a fixed step count (the end of the training part only reports: on
a minute of speech it was too short to choose by). There are two of the same shape: one sees ±0.32 s
(offline), one has a look-ahead of 0.12 s (the live path) and is taught by the offline one: its inputs the
features as the live path has them, its target the offline motion.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from avatar.data.avatar_data import torso_signal
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_path, atomic_write_json
from avatar.motion.context_net import LIVE_FUTURE, OFFLINE_FUTURE, ContextNet, run
from avatar.motion.learned_prior import LearnedPrior, audio_inputs, loudness_column, shipped_prior, speaking
from avatar.motion.live import LIVE_LOOKAHEAD_S
from avatar.motion.mapping import ALL_CHANNELS, ChannelMap, tracked_channels
from avatar.motion.nonverbal import BlinkStats, PoseLibrary
from avatar.motion.code import NUM_BLENDSHAPES
from avatar.motion.prior import loudness

DRIVER_WEIGHTS, DRIVER_META = "driver.safetensors", "driver.json"
DRIVER_FORMAT = 3
"""2: the learned prior's channels in, an offline and a live adapter (ContextNet); 3: the live adapter taught by
the offline one on the live path's features, over the prior retrained with its live net taught the same way."""
ADAPTER_WIDTH = 24
"""The personal adapter's width: on the dev clips' held-out tails 24 channels at 400 steps generalised better than
64 at 800 (02 mouth-opening r 0.69 vs 0.63, 04 0.65 vs 0.61): a minute of speech trains few weights well."""
PAUSE_MODES = ("closed", "person")
"""What the mouth does in pauses: `closed` (lips shut, the default for any voice) or `person` (as this
person held it in the pauses of their video, e.g. lips apart while breathing between phrases)."""


def adapted_dims(names: list[str], code_dim: int) -> np.ndarray:
    """Motion-code entries the adapter corrects: mouth, jaw and cheek blendshapes, and every expression coefficient."""
    lower = [i for i, n in enumerate(names) if n.startswith(("mouth", "jaw", "cheek"))]
    return np.array(lower + list(range(NUM_BLENDSHAPES, code_dim)), dtype=np.int64)


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
    adapter: ContextNet | None  # offline (±0.32 s); None: the priors through the person's map alone
    live_adapter: ContextNet | None  # the same with the live look-ahead
    dims: np.ndarray  # [K] code entries the adapters correct
    blinks: BlinkStats
    poses: PoseLibrary
    report: dict
    prior: LearnedPrior | None = None  # None: the hand prior alone

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

    def mouth_channels(self, ppg: np.ndarray, tokens: list[str], energy: np.ndarray, pitch: np.ndarray, fps: float,
                       mouth_scale: float = 1.0, levels: tuple[float, float] | None = None,
                       live: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """([T, 6] the priors' mouth channels, [T, I + 6] the adapter's inputs) of speech features."""
        inputs, hand = audio_inputs(ppg, tokens, energy, pitch, fps, mouth_scale, levels)
        mouth = hand if self.prior is None else self.prior.channels(inputs, hand, fps, speaking(energy, fps, levels), live,
                                                                      mouth_scale)
        return mouth, np.concatenate([mouth, inputs], 1)

    def speech_codes(self, ppg: np.ndarray, tokens: list[str], energy: np.ndarray, pitch: np.ndarray, fps: float,
                     blink: np.ndarray, mouth_scale: float = 1.0, pauses: str = "closed",
                     levels: tuple[float, float] | None = None, live: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """([T, D] motion codes, [T, 6] the priors' mouth channels) of speech features with the blink channel `blink`
        [T] (`levels`: see `audio_inputs`; `live`: the nets with the live look-ahead)."""
        mouth, inputs = self.mouth_channels(ppg, tokens, energy, pitch, fps, mouth_scale, levels, live)
        codes = self.mapping.codes(np.concatenate([mouth, blink[:, None]], 1))
        adapter = self.live_adapter if live else self.adapter
        if adapter is not None:
            gate = speaking(energy, fps, levels) if pauses == "closed" else np.ones(len(codes), np.float32)
            codes[:, self.dims] += mouth_scale * gate[:, None] * run(adapter, inputs)
        return codes.astype(np.float32), mouth

    def save(self, folder: AvatarFolder) -> None:
        from safetensors.torch import save_file

        arrays = {**self.mapping.arrays(), "dims": self.dims, "blink_shape": self.blinks.shape,
                  "pose_poses": self.poses.poses, "pose_loudness": self.poses.loudness, "pose_rest": self.poses.rest,
                  "pose_torso": self.poses.torso}
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        for name, net in (("adapter", self.adapter), ("live_adapter", self.live_adapter)):
            if net is not None:
                tensors.update({f"{name}.{k}": v for k, v in net.state_dict().items()})
        folder.model.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder.model / DRIVER_WEIGHTS) as tmp:
            save_file(tensors, str(tmp))
        atomic_write_json(folder.model / DRIVER_META, {"format": DRIVER_FORMAT, "blink_rate_per_min": self.blinks.rate_per_min,
                                                       "fps": self.poses.fps, "has_adapter": self.adapter is not None,
                                                       "report": self.report})

    @classmethod
    def load(cls, folder: AvatarFolder) -> "Driver":
        from safetensors.torch import load_file

        weights, meta_path = folder.model / DRIVER_WEIGHTS, folder.model / DRIVER_META
        if not weights.is_file() or not meta_path.is_file():
            raise AvatarError(f"{folder.root} has no audio driver; run `avatar train {folder.root} --resume` or fit again")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != DRIVER_FORMAT:
            raise AvatarError(f"the audio driver of {folder.root} was made by an older avatar; rendering fits a new one")
        tensors = load_file(str(weights))

        def net(name: str, future: int) -> ContextNet | None:
            state = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
            return ContextNet.from_state(state, future) if meta["has_adapter"] else None
        arrays = {k: v.numpy() for k, v in tensors.items() if "adapter." not in k}
        return cls(ChannelMap.from_arrays(arrays), net("adapter", OFFLINE_FUTURE), net("live_adapter", LIVE_FUTURE), arrays["dims"],
                   BlinkStats(meta["blink_rate_per_min"], arrays["blink_shape"]),
                   PoseLibrary(arrays["pose_poses"], arrays["pose_loudness"], arrays["pose_rest"], meta["fps"],
                               arrays.get("pose_torso")), meta["report"], shipped_prior())


def fit_driver(folder: AvatarFolder, codes: np.ndarray, rest_pose: np.ndarray, seed: int = 0, steps: int = 400) -> Driver:
    """The person's driver from their preprocessed folder and motion codes [T, D] (those the avatar was trained on);
    `steps` 0: the priors through the person's map alone, no adapter (seconds, not minutes)."""
    from avatar.io_utils import load_npz
    from avatar.motion.context_training import Augment, Sequence, fit_context_net
    from avatar.motion.prior_training import PITCH_SHIFTS, feature_copies, training_parts

    manifest = json.loads(folder.manifest.read_text())
    fps = manifest["fps"]
    tracking = load_npz(folder.tracking)
    names = [str(n) for n in tracking["blendshape_names"]]
    train = manifest["split"]["train"]
    valid = tracking["valid"]
    channels = tracked_channels(tracking["blendshapes"], names, tracking["landmarks"])
    rows = np.flatnonzero(valid[train[0]:train[1]]) + train[0]
    mapping = ChannelMap.fit(channels[rows], codes[rows])
    blinks = BlinkStats.measure(channels[:, ALL_CHANNELS.index("blink")] / mapping.scale[ALL_CHANNELS.index("blink")], fps)
    dims = adapted_dims(names, codes.shape[1])
    torso = torso_signal(folder, manifest["width"])[0][train[0]:train[1]]
    features = load_npz(folder.features)
    poses = PoseLibrary(tracking["head_pose"][train[0]:train[1]].astype(np.float32), loudness(features["energy"])[train[0]:train[1]],
                        rest_pose.astype(np.float32), fps, torso)
    driver = Driver(mapping, None, None, dims, blinks, poses, {"blink_rate_per_min": round(blinks.rate_per_min, 2)}, shipped_prior())
    if steps <= 0:
        return driver
    # The adapters learn what the priors miss: the tracked code minus the code the priors' mouth (plus the true
    # blinks) maps to. Pauses are learned too (for `pauses="person"`); `closed` switches them off there.
    from avatar.audio.phonemes import token_names

    parts = training_parts(*train)
    offline: dict[str, list[Sequence]] = {"train": [], "validation": []}
    live: dict[str, list[Sequence]] = {"train": [], "validation": []}
    true_blink = mapping.normalise(channels)[:, -1:]
    copies = feature_copies(folder, PITCH_SHIFTS, LIVE_LOOKAHEAD_S)
    offline_inputs = []  # per copy: (the adapter's inputs, the code the priors' mouth maps to)
    for copy in copies:
        mouth, inputs = driver.mouth_channels(copy["ppg"], token_names(), copy["energy"], copy["pitch"], fps)
        base = mapping.codes(np.concatenate([mouth, true_blink], 1))[:, dims]
        offline_inputs.append((inputs, base))
        for part, (a, b) in parts.items():
            offline[part].append(Sequence(inputs[a:b], (codes[a:b, dims] - base[a:b]).astype(np.float32),
                                          valid[a:b].astype(np.float32)))
    augment = Augment(loudness_column=loudness_column(inputs))  # the last columns are the same in both
    driver.adapter, offline_report = fit_context_net(offline["train"], offline["validation"], steps, OFFLINE_FUTURE, augment,
                                                     seed, ADAPTER_WIDTH, choose_steps=False)
    # The live adapter learns the offline result (its teacher) from the features the live path will have there:
    # what it must match is the offline motion, and the teacher's output is known on every frame, tracked or not.
    everywhere = np.ones(len(codes), np.float32)
    for copy, (teacher_inputs, base) in zip(copies, offline_inputs):
        f = copy["live"]
        mouth, inputs = driver.mouth_channels(f["ppg"], token_names(), f["energy"], f["pitch"], fps, live=True)
        teacher = base + run(driver.adapter, teacher_inputs)
        target = teacher - mapping.codes(np.concatenate([mouth, true_blink], 1))[:, dims]
        for part, (a, b) in parts.items():
            live[part].append(Sequence(inputs[a:b], target[a:b].astype(np.float32), everywhere[a:b]))
    driver.live_adapter, live_report = fit_context_net(live["train"], live["validation"], steps, LIVE_FUTURE, augment, seed,
                                                       ADAPTER_WIDTH, choose_steps=False)
    driver.report.update({"adapter": offline_report, "live_adapter": live_report})
    return driver
