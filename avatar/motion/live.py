"""Live audio to motion: 16 kHz chunks in (any size), motion codes out, a fixed look-ahead behind.

Every `hop_s` of new audio, the recogniser runs over the audio since the last final frame (with
`recogniser_context_s` before it), and the prior, the person's map and adapter run over `context_s` of final
frames plus those fresh ones; the frames whose time is at least `lookahead_s` older than the newest sample
become final and come out. A frame therefore never depends on audio more than `lookahead_s` plus one hop
after it; with the time a hop takes to compute, that is the latency a listener sees (`benchmarks/viewer.py`
measures it).

What differs from the offline path, by necessity: loudness is measured against the levels of what has been
heard so far (offline: the whole clip's), the recogniser and the adapter see the look-ahead of future instead
of all of it (live_features.py; the live nets are trained on what it gives), and blinks are generated ahead
at the person's rate. The head motion is not made here
(generated head motion is chosen per two-second stretch of speech, which live audio does not have yet).
"""
from __future__ import annotations

import collections

import numpy as np

from avatar.audio import SAMPLE_RATE
from avatar.motion.live_features import CONTEXT_S, HISTORY_S, HOP_S, RECOGNISER_CONTEXT_S, LiveFeatures
LIVE_LOOKAHEAD_S = 0.12
"""The live path's default look-ahead: what the viewer uses and what the live nets are trained for."""


class LiveMotion:
    def __init__(self, driver, settings, fps: float, lookahead_s: float = LIVE_LOOKAHEAD_S, hop_s: float = HOP_S,
                 mouth_scale: float = 1.0, seed: int = 0, recogniser_context_s: float = RECOGNISER_CONTEXT_S,
                 context_s: float = CONTEXT_S):
        """`driver` the person's `Driver`; `settings` the avatar's `AudioConfig` (what its features were made with).
        Each hop runs the recogniser over `recogniser_context_s` of audio before the newest final frame and
        what came after; the prior and adapter then run over `context_s` of final frames and the look-ahead."""
        if lookahead_s < 0 or hop_s <= 0 or context_s <= 0 or recogniser_context_s < 0:
            raise ValueError("LiveMotion needs lookahead_s >= 0, hop_s > 0, context_s > 0 and recogniser_context_s >= 0")
        from avatar.audio.phonemes import token_names

        self.driver, self.fps = driver, fps
        self.lookahead_s, self.hop_s, self.mouth_scale = lookahead_s, hop_s, mouth_scale
        self.features = LiveFeatures(settings, fps, recogniser_context_s, context_s)
        self.tokens = token_names()
        self.rng = np.random.default_rng(seed)
        self.computed_at = 0  # samples heard when the last hop ran
        self.blink = np.zeros(0, np.float32)  # the blink channel, generated ahead
        self.mouth: collections.deque = collections.deque(maxlen=int(HISTORY_S * fps))  # prior mouth channels given out

    @property
    def emitted(self) -> int:
        """Frames final and given out."""
        return self.features.emitted

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add 16 kHz mono samples; returns the motion codes [N, D] of the frames that became final (N may be 0)."""
        self.features.add(chunk)
        heard = self.features.heard
        if heard - self.computed_at < self.hop_s * SAMPLE_RATE:
            return self._none()
        return self._run(int(np.floor((heard / SAMPLE_RATE - self.lookahead_s) * self.fps)))

    def finish(self) -> np.ndarray:
        """The audio has ended: the codes of every frame not given out yet (as if silence followed)."""
        total = int(round(self.features.heard / SAMPLE_RATE * self.fps))
        return self._run(total, self.features.sample(1) + int(np.ceil(self.lookahead_s * SAMPLE_RATE)) + 1)

    def _none(self) -> np.ndarray:
        return np.zeros((0, len(self.driver.mapping.bias)), np.float32)

    def _run(self, ready: int, pad: int = 0) -> np.ndarray:
        self.computed_at = self.features.heard
        if ready <= self.emitted:
            return self._none()
        # The features of final frames before (the nets' context), the new final ones and the look-ahead.
        hop = self.features.update(ready, pad)
        begin, inputs = hop.begin, hop.features
        n = len(inputs["energy"])
        while len(self.blink) < begin + n:
            self.blink = np.concatenate([self.blink, self.driver.blinks.generate(int(10 * self.fps), self.fps, self.rng)])
        codes, mouth = self.driver.speech_codes(inputs["ppg"], self.tokens, inputs["energy"], inputs["pitch"], self.fps,
                                                self.blink[begin: begin + n], self.mouth_scale, "closed", hop.levels, live=True)
        self.mouth.extend(mouth[hop.new])
        return codes[hop.new]
