"""Do the lips follow the phonetics? The bilabial/open-vowel contrast d' at a range of lags.

On frames at the centre of /p b m/ the lips must be closed; at open vowels (/a ɑ æ ʌ/...) they must be
open. d' = (mean opening at open vowels - mean opening at bilabials) / pooled standard deviation,
measured with the phoneme centres shifted by each lag (negative lags look at frames before the acoustic
centre: lips that lead the sound score best at a negative lag). Phoneme centres come from hama's own
phoneme spans; openings from the face tracker on the frames (real or rendered).
"""
from __future__ import annotations

import numpy as np

from avatar.motion.visemes import token_viseme

MAX_SPAN_S = 0.2
"""A span runs until the next phoneme; across a pause that is long, so its centre is taken within this."""


def phoneme_centres(wave_16k: np.ndarray) -> list[tuple[str, float]]:
    """(IPA token, centre time in seconds) of every phoneme hama hears in 16 kHz mono audio."""
    from avatar.audio.phonemes import _model

    model = _model()
    result = model.transcribe_waveform(wave_16k, 16000)
    out = []
    for span in model.phoneme_spans(result):
        start, end = span.start_ms / 1000, span.end_ms / 1000
        out.append((span.phoneme, start + min(end - start, MAX_SPAN_S) / 2))
    return out


def contrast_groups(centres: list[tuple[str, float]]) -> tuple[list[float], list[float]]:
    """Centre times of bilabial consonants and of open vowels."""
    bilabial = [t for p, t in centres if token_viseme(p) == "PP" and p not in ("ɸ", "β")]
    open_vowels = [t for p, t in centres if token_viseme(p) == "AA"]
    return bilabial, open_vowels


def d_prime(opening: np.ndarray, fps: float, bilabial: list[float], open_vowels: list[float], lag: int) -> float:
    def sample(times: list[float]) -> np.ndarray:
        idx = np.round(np.asarray(times) * fps).astype(int) + lag
        return opening[idx[(idx >= 0) & (idx < len(opening))]]

    closed, opened = sample(bilabial), sample(open_vowels)
    if len(closed) < 2 or len(opened) < 2:
        return float("nan")
    pooled = np.sqrt((closed.var(ddof=1) + opened.var(ddof=1)) / 2)
    return float((opened.mean() - closed.mean()) / max(pooled, 1e-9))


def lip_contrast(opening: np.ndarray, fps: float, centres: list[tuple[str, float]], lags=range(-6, 1)) -> dict:
    """{"d_prime": {lag: d'}, "best_lag": lag, "best_d_prime": d', "bilabials": n, "open_vowels": n}.

    d' is None (JSON null) where it cannot be measured: fewer than two bilabials or open vowels heard.
    """
    bilabial, open_vowels = contrast_groups(centres)
    scores = {int(lag): d_prime(opening, fps, bilabial, open_vowels, int(lag)) for lag in lags}
    finite = {k: round(v, 3) for k, v in scores.items() if np.isfinite(v)}
    best = max(finite, key=finite.get) if finite else None
    return {"d_prime": {str(k): finite.get(k) for k in scores}, "best_lag": best,
            "best_d_prime": finite.get(best), "bilabials": len(bilabial), "open_vowels": len(open_vowels)}
