"""The recogniser's half of the live path: 16 kHz audio in, per-frame driver features out, as they are known
at each hop.

Each hop runs the recogniser (and pitch and energy) over the audio since the last final frame, with
`recogniser_context_s` before it; the frames older than the look-ahead become final then and keep the features
that hop gave them. The recogniser reads both ways in time, so a frame's features depend on how much audio
after it existed when it became final: live features are not the offline ones. `streamed_features` replays a
whole clip through the same steps, so the live nets can be trained on what they will see.
"""
from __future__ import annotations

import numpy as np

from avatar.audio import SAMPLE_RATE

KEYS = ("ppg", "energy", "pitch")
RECOGNISER_CONTEXT_S = 0.5
HOP_S = 0.1


class LiveFeatures:
    def __init__(self, settings, fps: float, recogniser_context_s: float = RECOGNISER_CONTEXT_S, context: int = 0):
        """`settings` the avatar's `AudioConfig`; `context`: how many final frames before the newest ones each
        `update` hands back with them (what the nets need to see)."""
        self.settings, self.fps, self.context = settings, fps, context
        self.recogniser_context = int(round(recogniser_context_s * fps))
        self.audio = np.zeros(0, np.float32)  # from video frame `self.first` on
        self.first = 0
        self.heard = 0  # samples received in all
        self.final: dict[str, np.ndarray] = {}  # features of final frames, from frame `self.final_first` on
        self.final_first = 0
        self.emitted = 0  # frames final

    def sample(self, frame: int) -> int:
        return int(round(frame * SAMPLE_RATE / self.fps))

    def add(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, chunk])
        self.heard += len(chunk)

    def update(self, ready: int, pad: int = 0) -> tuple[int, dict[str, np.ndarray]]:
        """Frames before `ready` become final (`ready` > `emitted`). Returns (begin, features of frames begin ..
        the end of the audio heard): up to `context` final frames before `emitted`, the new final frames, then the
        look-ahead frames after them. `pad` samples of silence are added for this hop only (the end of a clip)."""
        from avatar.audio.features import driver_features

        start = max(self.first, self.emitted - self.recogniser_context)
        window = self.audio[self.sample(start) - self.sample(self.first):]
        if pad:
            window = np.concatenate([window, np.zeros(pad, np.float32)])
        count = int(np.floor(len(window) / SAMPLE_RATE * self.fps))
        fresh = driver_features(window, count, self.fps, self.settings)
        begin = max(self.final_first, self.emitted - self.context)
        keep = slice(begin - self.final_first, self.emitted - self.final_first)
        features = {k: np.concatenate([self.final[k][keep], fresh[k][self.emitted - start:]]) if self.final else
                    fresh[k][self.emitted - start:] for k in KEYS}
        self.final = {k: v[: ready - begin] for k, v in features.items()}
        self.final_first, self.emitted = begin, ready
        drop = max(0, self.emitted - self.recogniser_context)
        if drop > self.first:
            self.audio = self.audio[self.sample(drop) - self.sample(self.first):]
            self.first = drop
        return begin, features


def streamed_features(wave: np.ndarray, count: int, fps: float, settings, lookahead_s: float, hop_s: float = HOP_S,
                      recogniser_context_s: float = RECOGNISER_CONTEXT_S) -> dict[str, np.ndarray]:
    """The features of `count` frames of `wave` as the live path has them when each frame becomes final (fed in
    hops of `hop_s`, frames final `lookahead_s` after their time)."""
    stream = LiveFeatures(settings, fps, recogniser_context_s)
    hop = int(round(hop_s * SAMPLE_RATE))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in KEYS}
    for end in range(hop, len(wave) + hop, hop):
        stream.add(wave[end - hop: end])
        last = stream.heard == len(wave)
        ready = count if last else min(count, int(np.floor((stream.heard / SAMPLE_RATE - lookahead_s) * fps)))
        if ready <= stream.emitted:
            continue
        before = stream.emitted
        pad = stream.sample(1) + int(np.ceil(lookahead_s * SAMPLE_RATE)) + 1 if last else 0
        begin, features = stream.update(ready, pad)
        for k in KEYS:
            parts[k].append(features[k][before - begin: ready - begin])
    return {k: np.concatenate(v)[:count] for k, v in parts.items()}
