"""Phoneme posteriorgram: what is said, not who says it, in any language.

hama's multilingual phoneme recogniser gives log-probabilities over 191 IPA tokens (plus word boundary
and CTC blank among them) at 50 frames per second. Long audio is processed in chunks with context on
both sides so memory stays bounded and chunk edges do not show (the recogniser's cost per second grows
with the length it sees: 8 s pieces run about a third faster than 20 s ones).
"""
from __future__ import annotations

import functools

import numpy as np

from avatar.audio import SAMPLE_RATE
HOP = 320  # samples per output frame: 20 ms
RATE = SAMPLE_RATE / HOP  # 50 frames per second
CONTEXT_S = 0.5


@functools.cache
def _model():
    import hama

    return hama.ASRModel()


def token_names() -> list[str]:
    """The 191 tokens, in posteriorgram column order."""
    return list(_model().decoder_tokens)


def _log_probs(wave: np.ndarray) -> np.ndarray:
    model = _model()
    feeds = {
        model._waveform_input_name: wave[None].astype(np.float32),
        model._waveform_lengths_input_name: np.array([len(wave)], dtype=np.int64),
    }
    log_probs, lengths = model.session.run([model._log_probs_output_name, model._out_lengths_output_name], feeds)
    return np.asarray(log_probs[0, : int(np.asarray(lengths).reshape(-1)[0])], dtype=np.float32)


def posteriorgram(wave: np.ndarray, chunk_s: float = 8.0) -> np.ndarray:
    """[ceil(len / 320), 191] phoneme probabilities at 50 fps from 16 kHz mono samples."""
    frames = int(np.ceil(len(wave) / HOP))
    names = token_names()
    out = np.zeros((frames, len(names)), np.float32)
    if frames == 0:
        return out
    chunk = max(1, int(chunk_s * RATE))
    context = int(CONTEXT_S * RATE)
    for start in range(0, frames, chunk):
        end = min(frames, start + chunk)
        lo, hi = max(0, start - context), min(frames, end + context)
        piece = wave[lo * HOP: hi * HOP]
        if len(piece) < hi * HOP - lo * HOP:
            piece = np.pad(piece, (0, (hi - lo) * HOP - len(piece)))
        probs = np.exp(_log_probs(piece))
        got = probs[start - lo: end - lo]
        out[start: start + len(got)] = got
        if len(got) < end - start:  # the model may emit a frame or two fewer: hold the last one
            out[start + len(got): end] = got[-1] if len(got) else 0
    return out
