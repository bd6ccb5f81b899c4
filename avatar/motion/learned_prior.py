"""The learned generic prior: audio features -> the six mouth channels in a speaker-independent mouth space.

The hand-written prior (prior.py: phoneme posteriors -> visemes -> coarticulated curves) is its input and its
starting point: the net sees those curves, the viseme probabilities, speech mass, loudness and voicing over
±0.32 s and outputs a correction to the curves (zero at initialisation). Its targets are each speaker's
tracked mouth channels in units of that speaker's own range (mapping.py: 1 = their strong value), so what
it learns is how mouths move with speech, not one person's mouth. Trained by `scripts/train_prior.py` on the
training parts of real talking clips and shipped as `prior.safetensors` (checksum in `prior.json`), with a
second net of the same shape whose look-ahead is `LIVE_FUTURE` frames, for the live path.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.motion.context_net import LIVE_FUTURE, OFFLINE_FUTURE, ContextNet, run
from avatar.motion.prior import loudness, mouth_curves, silence_gate, viseme_posteriors
from avatar.motion.visemes import CHANNELS

PRIOR_FILE = Path(__file__).with_name("prior.safetensors")
PRIOR_META = Path(__file__).with_name("prior.json")
PRIOR_FPS = 25.0  # the frame rate the nets' windows are counted in
LEAD_S = 0.08
"""How much earlier than the recogniser's phoneme peaks the hand prior places mouth shapes. Real speakers close
their lips 3-4 frames (25 fps) before hama's span centres; with this lead the rendered avatar does too
(benchmarks/lipsync.py: best lag -3 or -4 on unseen English speech)."""


def audio_inputs(ppg: np.ndarray, tokens: list[str], energy: np.ndarray, pitch: np.ndarray, fps: float,
                 mouth_scale: float = 1.0, levels: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(net inputs [T, 6 + V + 3], hand prior mouth channels [T, 6]) of per-frame audio features (`levels`: the
    speech and silence levels loudness is measured against; None: this clip's own). Columns: the hand curves,
    the viseme probabilities, speech mass, loudness, voicing."""
    mouth = mouth_curves(ppg, tokens, energy, fps, LEAD_S, mouth_scale, levels)
    visemes, mass = viseme_posteriors(ppg, tokens)
    rest = np.concatenate([mass[:, None], loudness(energy, levels)[:, None], (pitch > 0)[:, None]], 1)
    return np.concatenate([mouth, visemes, rest], 1).astype(np.float32), mouth


def loudness_column(inputs: np.ndarray) -> int:
    """Which column of `audio_inputs` holds the loudness."""
    return inputs.shape[1] - 2


def at_rate(values: np.ndarray, fps: float, target_fps: float, count: int | None = None) -> np.ndarray:
    """Rows sampled at `fps` resampled (linearly) to `target_fps`: `count` rows, or as many as cover the same time."""
    if fps == target_fps and (count is None or count == len(values)):
        return values
    count = count if count is not None else max(1, int(round(len(values) * target_fps / fps)))
    source = np.arange(len(values)) / fps
    times = np.arange(count) / target_fps
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(times, source, flat[:, c]) for c in range(flat.shape[1])], 1)
    return out.reshape(count, *values.shape[1:]).astype(np.float32)


class LearnedPrior:
    def __init__(self, offline: ContextNet, live: ContextNet, meta: dict):
        self.nets = {"offline": offline, "live": live}
        self.meta = meta

    def channels(self, inputs: np.ndarray, mouth: np.ndarray, fps: float, gate: np.ndarray, live: bool = False,
                 mouth_scale: float = 1.0) -> np.ndarray:
        """[T, 6] mouth channels: the hand curves `mouth` plus the net's correction (computed at PRIOR_FPS),
        scaled like the curves by `mouth_scale` and faded out where `gate` (1 speaking, 0 silent) is 0."""
        correction = at_rate(run(self.nets["live" if live else "offline"], at_rate(inputs, fps, PRIOR_FPS)), PRIOR_FPS, fps,
                             len(inputs))
        scale = np.full(len(CHANNELS), mouth_scale, np.float32)
        scale[CHANNELS.index("lip_close")] = 1.0
        return (mouth + gate[:, None] * scale * correction).astype(np.float32)

    def arrays(self) -> dict:
        return {f"{kind}.{k}": v for kind, net in self.nets.items() for k, v in net.state_dict().items()}


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_prior(path: Path = PRIOR_FILE, meta_path: Path = PRIOR_META) -> LearnedPrior:
    """The learned prior from its safetensors file, after checking the file against the checksum beside it."""
    from safetensors.torch import load_file

    if not path.is_file() or not meta_path.is_file():
        raise AvatarError(f"the learned prior {path} or its {meta_path.name} is missing; reinstall avatar "
                          "or rebuild it with scripts/train_prior.py")
    meta = json.loads(meta_path.read_text())
    if checksum(path) != meta.get("sha256"):
        raise AvatarError(f"{path} does not match the checksum in {meta_path.name}: the file is damaged; reinstall avatar "
                          "or rebuild it with scripts/train_prior.py")
    tensors = load_file(str(path))
    nets = {kind: ContextNet.from_state({k[len(kind) + 1:]: v for k, v in tensors.items() if k.startswith(kind + ".")},
                                        future) for kind, future in (("offline", OFFLINE_FUTURE), ("live", LIVE_FUTURE))}
    return LearnedPrior(nets["offline"], nets["live"], meta)


@lru_cache(maxsize=1)
def shipped_prior() -> LearnedPrior:
    """The prior inside the package (loaded once)."""
    return load_prior()


def speaking(energy: np.ndarray, fps: float, levels: tuple[float, float] | None = None) -> np.ndarray:
    """[T] 1 while speaking, 0 in sustained silence."""
    return silence_gate(loudness(energy, levels), fps)
