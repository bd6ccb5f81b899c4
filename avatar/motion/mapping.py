"""From the prior's mouth channels (and a blink channel) to this person's full motion code.

The six mouth channels and the blink are read off the person's tracked blendshapes; each is scaled so
that 1 is the person's own strong value (95th percentile over the training frames), and a ridge
regression over the training frames maps them to the whole motion code. The prior then speaks in the
person's range, and the code's other parts (expression coefficients, cheeks, the rest of the mouth)
follow the way they do for this person.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.motion.visemes import CHANNELS

SOURCES = {
    "jaw_open": ("jawOpen",),
    "lip_close": ("mouthPressLeft", "mouthPressRight", "mouthClose"),
    "funnel": ("mouthFunnel",),
    "pucker": ("mouthPucker",),
    "stretch": ("mouthStretchLeft", "mouthStretchRight"),
    "roll": ("mouthRollLower", "mouthRollUpper"),
    "blink": ("eyeBlinkLeft", "eyeBlinkRight"),
}
ALL_CHANNELS = CHANNELS + ("blink",)


def tracked_channels(blendshapes: np.ndarray, names: list[str]) -> np.ndarray:
    """[T, 7] raw channel values (mean of their blendshapes) from tracked blendshapes [T, 52]."""
    index = {n: i for i, n in enumerate(names)}
    return np.stack([blendshapes[:, [index[n] for n in SOURCES[c]]].mean(1) for c in ALL_CHANNELS], 1).astype(np.float32)


@dataclass
class ChannelMap:
    scale: np.ndarray  # [7] raw value that channel 1.0 stands for
    weights: np.ndarray  # [7, D]
    bias: np.ndarray  # [D]

    @classmethod
    def fit(cls, channels: np.ndarray, codes: np.ndarray, ridge: float = 1e-2) -> "ChannelMap":
        scale = np.maximum(np.percentile(channels, 95, axis=0), 1e-3).astype(np.float32)
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
