"""Live audio to motion: 16 kHz chunks in (any size), motion codes out, a fixed look-ahead behind.

Every `hop_s` of new audio, the recogniser runs over the audio since the last final frame (with
`recogniser_context_s` before it), and the prior, the person's map and adapter run over `context_s` of final
frames plus those fresh ones; the frames whose time is at least `lookahead_s` older than the newest sample
become final and come out. A frame therefore never depends on audio more than `lookahead_s` plus one hop
after it; with the time a hop takes to compute, that is the latency a listener sees (`benchmarks/viewer.py`
measures it).

What differs from the offline path, by necessity: loudness is measured against the levels of what has been
heard so far (offline: the whole clip's), the recogniser and the adapter see the look-ahead of future instead
of all of it, and blinks are generated ahead at the person's rate. The head motion is not made here
(generated head motion is chosen per two-second stretch of speech, which live audio does not have yet).
"""
from __future__ import annotations

import collections

import numpy as np

from avatar.audio import SAMPLE_RATE
from avatar.motion.prior import speech_levels

HISTORY_S = 60.0  # loudness levels are measured over the last minute heard
MIN_LEVEL_S = 1.0  # until this much has been heard, the window's own levels stand in


class LiveMotion:
    def __init__(self, driver, settings, fps: float, lookahead_s: float = 0.12, hop_s: float = 0.1,
                 mouth_scale: float = 1.0, seed: int = 0, recogniser_context_s: float = 0.5, context_s: float = 1.0):
        """`driver` the person's `Driver`; `settings` the avatar's `AudioConfig` (what its features were made with).
        Each hop runs the recogniser over `recogniser_context_s` of audio before the newest final frame and
        what came after; the prior and adapter then run over `context_s` of final frames and the look-ahead."""
        from avatar.audio.phonemes import token_names

        if lookahead_s < 0 or hop_s <= 0 or context_s <= 0 or recogniser_context_s < 0:
            raise ValueError("LiveMotion needs lookahead_s >= 0, hop_s > 0, context_s > 0 and recogniser_context_s >= 0")
        self.driver, self.settings, self.fps = driver, settings, fps
        self.lookahead_s, self.hop_s, self.mouth_scale = lookahead_s, hop_s, mouth_scale
        self.context = int(round(context_s * fps))
        self.recogniser_context = int(round(recogniser_context_s * fps))
        self.tokens = token_names()
        self.rng = np.random.default_rng(seed)
        self.audio = np.zeros(0, np.float32)  # from video frame `self.first` on
        self.first = 0
        self.heard = 0  # samples received in all
        self.computed_at = 0  # `heard` when the last hop ran
        self.final: dict[str, np.ndarray] = {}  # ppg, energy, pitch of final frames, from frame `self.final_first`
        self.final_first = 0
        self.emitted = 0  # frames final and given out
        self.blink = np.zeros(0, np.float32)  # the blink channel, generated ahead
        history = int(HISTORY_S * fps)
        self.energy: collections.deque = collections.deque(maxlen=history)  # of the emitted frames: loudness levels
        self.mouth: collections.deque = collections.deque(maxlen=history)  # the prior's mouth channels of the emitted frames

    def _sample(self, frame: int) -> int:
        return int(round(frame * SAMPLE_RATE / self.fps))

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add 16 kHz mono samples; returns the motion codes [N, D] of the frames that became final (N may be 0)."""
        self.audio = np.concatenate([self.audio, np.asarray(chunk, np.float32).reshape(-1)])
        self.heard += len(chunk)
        if self.heard - self.computed_at < self.hop_s * SAMPLE_RATE:
            return self._none()
        return self._run(int(np.floor((self.heard / SAMPLE_RATE - self.lookahead_s) * self.fps)))

    def finish(self) -> np.ndarray:
        """The audio has ended: the codes of every frame not given out yet (as if silence followed)."""
        total = int(round(self.heard / SAMPLE_RATE * self.fps))
        pad = self._sample(1) + int(np.ceil(self.lookahead_s * SAMPLE_RATE)) + 1
        self.audio = np.concatenate([self.audio, np.zeros(pad, np.float32)])
        try:
            return self._run(total)
        finally:
            self.audio = self.audio[: len(self.audio) - pad]

    def _none(self) -> np.ndarray:
        return np.zeros((0, len(self.driver.mapping.bias)), np.float32)

    def _run(self, ready: int) -> np.ndarray:
        from avatar.audio.features import driver_features

        self.computed_at = self.heard
        if ready <= self.emitted:
            return self._none()
        # 1. Features of the frames since the last final one (with the recogniser's context before them).
        start = max(self.first, self.emitted - self.recogniser_context)
        window = self.audio[self._sample(start) - self._sample(self.first):]
        count = int(np.floor(len(window) / SAMPLE_RATE * self.fps))
        fresh = driver_features(window, count, self.fps, self.settings)
        # 2. The prior and adapter over final frames before and the fresh ones (the look-ahead among them).
        begin = max(self.final_first, self.emitted - self.context)
        keep = slice(begin - self.final_first, self.emitted - self.final_first)
        inputs = {k: np.concatenate([self.final[k][keep], fresh[k][self.emitted - start:]]) if self.final else
                  fresh[k][self.emitted - start:] for k in ("ppg", "energy", "pitch")}
        n = len(inputs["energy"])
        while len(self.blink) < begin + n:
            self.blink = np.concatenate([self.blink, self.driver.blinks.generate(int(10 * self.fps), self.fps, self.rng)])
        new = slice(self.emitted - begin, ready - begin)
        heard = np.concatenate([np.asarray(self.energy, np.float32), inputs["energy"][new]])
        levels = speech_levels(heard if len(heard) >= MIN_LEVEL_S * self.fps else inputs["energy"])
        codes, mouth = self.driver.speech_codes(inputs["ppg"], self.tokens, inputs["energy"], inputs["pitch"], self.fps,
                                                self.blink[begin: begin + n], self.mouth_scale, "closed", levels, live=True)
        # 3. The frames up to `ready` are final now: keep their features, drop what no later hop needs.
        self.final = {k: v[: ready - begin] for k, v in inputs.items()}
        self.final_first = begin
        self.energy.extend(inputs["energy"][new].tolist())
        self.mouth.extend(mouth[new])
        self.emitted = ready
        drop = max(0, self.emitted - self.recogniser_context)
        if drop > self.first:
            self.audio = self.audio[self._sample(drop) - self._sample(self.first):]
            self.first = drop
        return codes[new]
