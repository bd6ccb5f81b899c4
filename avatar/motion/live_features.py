"""The recogniser's half of the live path: 16 kHz audio in, per-frame driver features out, as they are known
at each hop.

Each hop runs the recogniser (and pitch and energy) over the audio since the last final frame, with
`recogniser_context_s` before it; the frames older than the look-ahead become final then and keep the features
that hop gave them. The recogniser reads both ways in time, so a frame's features depend on how much audio
after it existed when it was computed: live features are not the offline ones. `streamed_hops` replays a whole
clip through the same steps (each hop's window is what the live nets see then), and `streamed_features` keeps
each frame's features as they were when it became final: what the live nets are trained on.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from avatar.audio import SAMPLE_RATE
from avatar.motion.prior import speech_levels

KEYS = ("ppg", "energy", "pitch")
RECOGNISER_CONTEXT_S = 0.5
"""Audio before the newest final frame that each hop's recogniser run sees. More reads the newest frames closer to
the offline reading (`benchmarks/recogniser_context.py`, three English clips, 0.12 s after a frame: mean L1 of the
viseme probabilities 0.17 with 0.5 s, 0.13 with 0.75 s, 0.11 with 1 s), and the hand curves follow the offline ones
better (0.81 -> 0.84 with 0.75 s, `benchmarks/live_motion.py` hand_r on clip 04's avatar), but the live prior's
channels, retrained on those features, did not (mouth_r 0.78 both), while a hop in the viewer cost 65 ms instead of
49 and the live window showed 14-15 frames a second instead of 22. So it stays at 0.5 s."""
HOP_S = 0.1
CONTEXT_S = 1.0  # final frames before the new ones that each hop hands the nets
HISTORY_S = 60.0  # loudness levels are measured over the last minute heard
MIN_LEVEL_S = 1.0  # until this much has been heard, the window's own levels stand in


@dataclass
class Hop:
    begin: int  # the video frame `features` start at
    features: dict[str, np.ndarray]  # ppg, energy, pitch: final frames before, the new final ones, the look-ahead
    new: slice  # the frames that became final at this hop, within `features`
    levels: tuple[float, float]  # the loudness levels as heard so far (see `speech_levels`)


class LiveFeatures:
    def __init__(self, settings, fps: float, recogniser_context_s: float = RECOGNISER_CONTEXT_S, context_s: float = CONTEXT_S):
        """`settings` the avatar's `AudioConfig`; each `update` hands back `context_s` of final frames before the
        new ones (what the nets need to see)."""
        self.settings, self.fps = settings, fps
        self.context = int(round(context_s * fps))
        self.recogniser_context = int(round(recogniser_context_s * fps))
        self.audio = np.zeros(0, np.float32)  # from video frame `self.first` on
        self.first = 0
        self.heard = 0  # samples received in all
        self.final: dict[str, np.ndarray] = {}  # features of final frames, from frame `self.final_first` on
        self.final_first = 0
        self.emitted = 0  # frames final
        self.energy: collections.deque = collections.deque(maxlen=int(HISTORY_S * fps))  # of the final frames

    def sample(self, frame: int) -> int:
        return int(round(frame * SAMPLE_RATE / self.fps))

    def add(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, chunk])
        self.heard += len(chunk)

    def update(self, ready: int, pad: int = 0) -> Hop:
        """Frames before `ready` become final (`ready` > `emitted`); `pad` samples of silence are added for this
        hop only (the end of a clip)."""
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
        new = slice(self.emitted - begin, ready - begin)
        heard = np.concatenate([np.asarray(self.energy, np.float32), features["energy"][new]])
        levels = speech_levels(heard if len(heard) >= MIN_LEVEL_S * self.fps else features["energy"])
        self.energy.extend(features["energy"][new].tolist())
        self.final = {k: v[: ready - begin] for k, v in features.items()}
        self.final_first, self.emitted = begin, ready
        drop = max(0, self.emitted - self.recogniser_context)
        if drop > self.first:
            self.audio = self.audio[self.sample(drop) - self.sample(self.first):]
            self.first = drop
        return Hop(begin, features, new, levels)


def streamed_hops(wave: np.ndarray, count: int, fps: float, settings, lookahead_s: float, hop_s: float = HOP_S,
                  recogniser_context_s: float = RECOGNISER_CONTEXT_S, context_s: float = CONTEXT_S) -> list[Hop]:
    """Every hop of `wave` (`count` frames) through the live path, fed in hops of `hop_s`, frames final
    `lookahead_s` after their time: what `LiveMotion` computes on the same audio in chunks of `hop_s`."""
    stream = LiveFeatures(settings, fps, recogniser_context_s, context_s)
    hop = int(round(hop_s * SAMPLE_RATE))
    hops = []
    for end in range(hop, len(wave) + hop, hop):
        stream.add(wave[end - hop: end])
        last = stream.heard == len(wave)
        ready = count if last else min(count, int(np.floor((stream.heard / SAMPLE_RATE - lookahead_s) * fps)))
        if ready > stream.emitted:
            pad = stream.sample(1) + int(np.ceil(lookahead_s * SAMPLE_RATE)) + 1 if last else 0
            hops.append(stream.update(ready, pad))
    return hops


def streamed_features(hops: list[Hop], count: int) -> dict[str, np.ndarray]:
    """The features of `count` frames as they were when each became final (from `streamed_hops`)."""
    return {k: np.concatenate([h.features[k][h.new] for h in hops])[:count] for k in KEYS}
