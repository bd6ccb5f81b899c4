"""From the prior's mouth channels (and a blink channel) to this person's full motion code.

The six mouth channels and the blink are measured on the person's tracked frames; each is scaled so
that 1 is the person's own strong value (95th percentile over the training frames, 1 for closure), and
a ridge regression over the training frames maps them to the whole motion code. The prior then speaks in the
person's range, and the code's other parts (expression coefficients, cheeks, the rest of the mouth)
follow the way they do for this person.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.motion.visemes import CHANNELS

ALL_CHANNELS = CHANNELS + ("blink",)
_BLENDSHAPES = {"funnel": ("mouthFunnel",), "roll": ("mouthRollLower", "mouthRollUpper"), "blink": ("eyeBlinkLeft", "eyeBlinkRight")}


def tracked_channels(blendshapes: np.ndarray, names: list[str], landmarks: np.ndarray) -> np.ndarray:
    """[T, 7] channel values measured on tracked frames.

    Opening, closure, pucker and stretch are measured on the lips themselves (landmarks): MediaPipe's
    mouthClose and mouthPucker scores do not mean what their names say for most people (mouthClose rises
    as the mouth opens). Funnel, roll and blink come from the blendshapes.
    """
    index = {n: i for i, n in enumerate(names)}
    gap = np.linalg.norm(landmarks[:, 13] - landmarks[:, 14], axis=-1)
    width = np.linalg.norm(landmarks[:, 61] - landmarks[:, 291], axis=-1)
    opening = gap / np.maximum(width, 1e-6)
    typical_width = np.median(width)
    typical_opening = max(float(np.median(opening)), 1e-3)
    values = {
        "jaw_open": opening,
        "lip_close": np.clip(1 - opening / (0.5 * typical_opening), 0, 1),
        "pucker": np.clip(1 - width / typical_width, 0, None),
        "stretch": np.clip(width / typical_width - 1, 0, None),
    }
    for channel, sources in _BLENDSHAPES.items():
        values[channel] = blendshapes[:, [index[n] for n in sources]].mean(1)
    return np.stack([values[c] for c in ALL_CHANNELS], 1).astype(np.float32)


@dataclass
class ChannelMap:
    scale: np.ndarray  # [7] raw value that channel 1.0 stands for
    weights: np.ndarray  # [7, D]
    bias: np.ndarray  # [D]

    @classmethod
    def fit(cls, channels: np.ndarray, codes: np.ndarray, ridge: float = 1e-2) -> "ChannelMap":
        scale = np.maximum(np.percentile(channels, 95, axis=0), 1e-3).astype(np.float32)
        scale[ALL_CHANNELS.index("lip_close")] = 1.0  # closure is already 0..1
        x = channels / scale
        x1 = np.concatenate([x, np.ones((len(x), 1))], 1)
        reg = ridge * len(x) * np.eye(x1.shape[1])
        reg[-1, -1] = 0.0
        solution = np.linalg.solve(x1.T @ x1 + reg, x1.T @ codes)
        return cls(scale, solution[:-1].astype(np.float32), solution[-1].astype(np.float32))

    def codes(self, normalised: np.ndarray) -> np.ndarray:
        """[T, 7] channels in units of the person's range -> [T, D] motion codes."""
        return (normalised @ self.weights + self.bias).astype(np.float32)

    def normalise(self, channels: np.ndarray) -> np.ndarray:
        return channels / self.scale

    def arrays(self) -> dict[str, np.ndarray]:
        return {"map_scale": self.scale, "map_weights": self.weights, "map_bias": self.bias}

    @classmethod
    def from_arrays(cls, a: dict) -> "ChannelMap":
        return cls(np.asarray(a["map_scale"]), np.asarray(a["map_weights"]), np.asarray(a["map_bias"]))


def channel_correlations(predicted: np.ndarray, tracked: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float | None]:
    """{channel: Pearson r over frames} of predicted vs tracked channel values [T, C] (C = 6 mouth channels or
    7 with the blink), over frames with weight > 0; None where a channel does not vary (nothing to correlate)."""
    keep = np.ones(len(tracked), bool) if weights is None else np.asarray(weights) > 0
    out = {}
    for c, name in enumerate(ALL_CHANNELS[: tracked.shape[1]]):
        a, b = predicted[keep, c], tracked[keep, c]
        out[name] = round(float(np.corrcoef(a, b)[0, 1]), 4) if a.std() > 1e-9 and b.std() > 1e-9 else None
    return out
