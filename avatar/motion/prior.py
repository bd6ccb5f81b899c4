"""The generic audio-to-mouth prior: phoneme posteriors -> visemes -> coarticulated mouth curves.

It needs no data from the person and works for any voice and language the phoneme recogniser hears:
1. each frame's non-blank phoneme probability is spread over visemes (visemes.py);
2. articulation events sit at the peaks of that speech mass (a CTC recogniser fires once per phoneme),
   moved earlier by `lead_s` because the lips lead the sound;
3. every event pulls the six mouth channels towards its viseme's target with its own dominance and
   reach before and after its centre (anticipation and carry-over, Cohen-Massaro style), so the mouth
   glides between shapes instead of switching frame by frame; a weak rest target fills the gaps;
4. the jaw opens more when the voice is louder, and sustained silence closes the mouth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.motion.visemes import (CHANNELS, DOMINANCE, REACH_AFTER_S, REACH_BEFORE_S, SILENCE, VISEMES,
                                   target_matrix, viseme_matrix)

REST_DOMINANCE = 0.08
BLANK_TOKENS = ("<blank>", "<pad>", "<sos>", "<eos>", "<unk>", "<wb>")


@dataclass
class Event:
    time_s: float
    visemes: np.ndarray  # [V] distribution over VISEMES
    strength: float  # speech mass at the peak, 0..1


def viseme_posteriors(ppg: np.ndarray, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """([T, V] probability of each viseme, [T] probability that a lip-relevant phoneme is heard)."""
    by_viseme = ppg @ viseme_matrix(tokens)
    return by_viseme, by_viseme.sum(1)


def find_events(visemes: np.ndarray, mass: np.ndarray, fps: float, min_mass: float = 0.15) -> list[Event]:
    """Articulation events from per-frame viseme probabilities.

    A CTC recogniser fires about once per phoneme, and at 25 fps nearly every frame with lip-relevant
    speech mass holds one phoneme; consecutive frames showing the same viseme are one event, timed at
    their mass-weighted centre.
    """
    events: list[Event] = []
    run: list[int] = []

    def close_run() -> None:
        if run:
            weights = mass[run]
            centre = float((np.array(run) * weights).sum() / weights.sum())
            mix = visemes[run].sum(0)
            events.append(Event(centre / fps, mix / max(mix.sum(), 1e-9), float(weights.max())))
            run.clear()

    for t in range(len(mass)):
        if mass[t] < min_mass:
            close_run()
            continue
        if run and int(np.argmax(visemes[t])) != int(np.argmax(visemes[run[-1]])):
            close_run()
        run.append(t)
    close_run()
    return events


def coarticulate(events: list[Event], count: int, fps: float, lead_s: float) -> np.ndarray:
    """[count, 6] mouth channels at frame times from articulation events."""
    targets = target_matrix()
    times = np.arange(count) / fps
    weighted = np.tile(np.asarray(SILENCE, np.float64) * REST_DOMINANCE, (count, 1))
    total = np.full(count, REST_DOMINANCE)
    dominance = np.array([DOMINANCE[v] for v in VISEMES])
    before = np.array([REACH_BEFORE_S[v] for v in VISEMES])
    after = np.array([REACH_AFTER_S[v] for v in VISEMES])
    for event in events:
        centre = event.time_s - lead_s
        w = event.visemes
        alpha = float(w @ dominance) * (0.5 + 0.5 * event.strength)
        dt = times - centre
        reach = np.where(dt < 0, float(w @ before), float(w @ after))
        influence = alpha * np.exp(-((dt / reach) ** 2))
        weighted += influence[:, None] * (w @ targets)[None, :]
        total += influence
    return (weighted / total[:, None]).astype(np.float32)


def speech_levels(energy_db: np.ndarray) -> tuple[float, float]:
    """(speech level, silence floor) in dBFS of a clip: what `loudness` measures against."""
    speech = float(np.percentile(energy_db, 90))
    floor = max(float(np.percentile(energy_db, 10)), speech - 35.0)
    if speech - floor < 6.0:  # no dynamics: all speech or all silence
        floor = speech - 35.0
    return speech, floor


def loudness(energy_db: np.ndarray, levels: tuple[float, float] | None = None) -> np.ndarray:
    """[T] loudness in [0, 1] relative to the speech level of this clip (so any recording level works), or to
    `levels` from `speech_levels` (the live path measures them on what it has heard so far)."""
    speech, floor = levels if levels is not None else speech_levels(energy_db)
    return np.clip((energy_db - floor) / (speech - floor), 0.0, 1.0).astype(np.float32)


def silence_gate(level: np.ndarray, fps: float, threshold: float = 0.2, min_s: float = 0.16) -> np.ndarray:
    """[T] 1 while speaking, easing to 0 over sustained quiet stretches (at least `min_s` below `threshold`)."""
    quiet = level < threshold
    gate = np.ones(len(level), np.float32)
    run = int(round(min_s * fps))
    start = 0
    while start < len(quiet):
        if not quiet[start]:
            start += 1
            continue
        end = start
        while end < len(quiet) and quiet[end]:
            end += 1
        if end - start >= run:
            gate[start:end] = 0.0
        start = end
    return _smooth(gate, fps, 0.16)  # ease in and out


def _smooth(values: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Hann-window smoothing over about `seconds` (edges held)."""
    width = max(3, int(round(seconds * fps)) | 1)
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    return np.convolve(np.pad(values, width // 2, mode="edge"), kernel, mode="valid").astype(np.float32)


def mouth_curves(ppg: np.ndarray, tokens: list[str], energy_db: np.ndarray, fps: float, lead_s: float = 0.06,
                 scale: float = 1.0, levels: tuple[float, float] | None = None) -> np.ndarray:
    """[T, 6] mouth channels (CHANNELS, each 0..1 of its range) for per-frame audio features (`levels`: see
    `loudness`)."""
    visemes, mass = viseme_posteriors(ppg, tokens)
    curves = coarticulate(find_events(visemes, mass, fps), len(ppg), fps, lead_s)
    level = _smooth(loudness(energy_db, levels), fps, 0.12)
    gate = silence_gate(level, fps)
    jaw = CHANNELS.index("jaw_open")
    curves[:, jaw] *= 0.35 + 0.65 * level
    curves[:, [i for i in range(len(CHANNELS)) if i != CHANNELS.index("lip_close")]] *= scale
    rest = np.asarray(SILENCE, np.float32)
    return gate[:, None] * curves + (1 - gate[:, None]) * rest
