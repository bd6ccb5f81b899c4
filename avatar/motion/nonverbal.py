"""Motion that is not speech: blinks with the person's own statistics and head pose from their own video.

Blinks: measured in tracking (the eye-blink blendshapes crossing a level set between the person's open
and closed eyes), then generated as a renewal process with the person's rate and blink shape.

Head pose, three ways: `still` (the rest pose), `replay` (the training video's poses, played forwards
and backwards), `generated` (the person's own pose segments stitched with cross-fades, each chosen to
match the loudness of the speech at that time and never the same segment twice in a row).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.geometry import matrix_to_rotvec

POSE_MODES = ("generated", "replay", "still")


@dataclass
class BlinkStats:
    rate_per_min: float
    shape: np.ndarray  # [L] mean blink curve, 0..1 (fraction of the person's closed value)

    @classmethod
    def measure(cls, blink: np.ndarray, fps: float) -> "BlinkStats":
        """From a [T] blink channel normalised so the person's closed eyes are about 1."""
        low, high = np.percentile(blink, 50), np.percentile(blink, 99.5)
        level = low + 0.5 * (high - low)
        closed = blink > level
        starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
        shapes = []
        for s in starts:
            a, b = max(0, s - 2), min(len(blink), s + 6)
            segment = blink[a:b] - low
            if len(segment) == 8:
                shapes.append(segment / max(segment.max(), 1e-6))
        minutes = len(blink) / fps / 60
        rate = len(starts) / max(minutes, 1e-6) if (high - low) > 0.1 else 0.0
        shape = np.mean(shapes, 0) if shapes else np.array([0.2, 0.6, 1.0, 1.0, 0.7, 0.4, 0.15, 0.05])
        return cls(float(np.clip(rate, 0.0, 60.0)), shape.astype(np.float32))

    def generate(self, count: int, fps: float, rng: np.random.Generator) -> np.ndarray:
        """[count] blink channel: blinks at this rate (gamma-distributed gaps, as real blinking is bursty)."""
        out = np.zeros(count, np.float32)
        if self.rate_per_min <= 0:
            return out
        mean_gap = 60.0 / self.rate_per_min * fps
        t = rng.uniform(0.3, 1.0) * mean_gap
        while t < count:
            start = int(t)
            piece = self.shape[: max(0, min(len(self.shape), count - start))]
            out[start: start + len(piece)] = np.maximum(out[start: start + len(piece)], piece)
            t += max(len(self.shape) + 2, rng.gamma(2.0, mean_gap / 2.0))
        return out


def _pose_vectors(poses: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """[T, 4, 4] -> [T, 6]: rotation relative to the rest pose (rotation vector) and translation."""
    relative = poses[:, :3, :3] @ rest[:3, :3].T
    return np.concatenate([matrix_to_rotvec(relative), poses[:, :3, 3]], 1)


def _pose_matrices(vectors: np.ndarray, rest: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    out = np.tile(np.eye(4, dtype=np.float32), (len(vectors), 1, 1))
    out[:, :3, :3] = Rotation.from_rotvec(vectors[:, :3]).as_matrix() @ rest[:3, :3]
    out[:, :3, 3] = vectors[:, 3:]
    return out


@dataclass
class PoseLibrary:
    poses: np.ndarray  # [T, 4, 4] the training video's head poses
    loudness: np.ndarray  # [T] its speech loudness (0..1)
    rest: np.ndarray  # [4, 4]
    fps: float
    torso: np.ndarray | None = None  # [T, 4] the torso signal of the same frames (None: torso at rest)

    def __post_init__(self) -> None:
        if self.torso is None:
            self.torso = np.zeros((len(self.poses), 4), np.float32)

    def still(self, count: int) -> np.ndarray:
        return np.tile(self.rest.astype(np.float32), (count, 1, 1))

    def _replay_order(self, count: int) -> np.ndarray:
        order = np.concatenate([np.arange(len(self.poses)), np.arange(len(self.poses) - 2, 0, -1)])
        return order[np.arange(count) % len(order)]

    def replay(self, count: int) -> np.ndarray:
        return self.poses[self._replay_order(count)].astype(np.float32)

    def replay_torso(self, count: int) -> np.ndarray:
        """[count, 4] the torso signal of the frames `replay` plays."""
        return self.torso[self._replay_order(count)].astype(np.float32)

    def segments(self, seconds: float) -> list[tuple[int, int]]:
        length = max(2, int(seconds * self.fps))
        return [(s, s + length) for s in range(0, max(1, len(self.poses) - length + 1), max(1, length // 2))]

    def generate(self, loudness: np.ndarray, rng: np.random.Generator, segment_s: float = 2.0,
                 blend_s: float = 0.4) -> tuple[np.ndarray, list[int], np.ndarray]:
        """([T, 4, 4] poses for speech of per-frame `loudness`, the segment chosen for each stretch, [T, 4]
        the torso signal of the same segments: the person's own shoulders moving with their own head).

        Segments overlap by `blend_s` and cross-fade; each new one is shifted halfway towards where the
        head is when it starts, which removes jumps without letting the pose drift away over a long clip.
        """
        count = len(loudness)
        segments = self.segments(segment_s)
        length = segments[0][1] - segments[0][0]
        blend = max(1, min(int(blend_s * self.fps), length // 2))
        hop = length - blend
        vectors = np.concatenate([_pose_vectors(self.poses, self.rest), self.torso], 1)  # stitched together
        segment_loudness = np.array([self.loudness[a:b].mean() for a, b in segments])
        ramp = np.ones(length)
        ramp[:blend] = np.linspace(0, 1, blend + 2)[1:-1]
        ramp[length - blend:] = np.linspace(1, 0, blend + 2)[1:-1]
        total = np.zeros((count + length, vectors.shape[1]))
        weight = np.zeros(count + length)
        chosen: list[int] = []
        for start in range(0, count, hop):
            want = loudness[start: start + length].mean()
            ranked = [int(i) for i in np.argsort(np.abs(segment_loudness - want)) if not chosen or i != chosen[-1]]
            pick = int(rng.choice(ranked[:5])) if ranked else 0
            chosen.append(pick)
            a, b = segments[pick]
            piece = vectors[a:b].copy()
            if start > 0 and weight[start] > 0:
                piece += 0.5 * (total[start] / weight[start] - piece[0])
            total[start: start + length] += ramp[:, None] * piece
            weight[start: start + length] += ramp
        stitched = total[:count] / np.maximum(weight[:count, None], 1e-9)
        return _pose_matrices(stitched[:, :6], self.rest), chosen, stitched[:, 6:].astype(np.float32)
