"""Per-video-frame audio features: phoneme posteriorgram, log-mel, energy and pitch.

Every feature is averaged over exactly the time each video frame covers ([k/fps, (k+1)/fps)), so row k
of every array belongs to frame k.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from avatar.audio import SAMPLE_RATE, phonemes

if TYPE_CHECKING:
    from avatar.config import AudioConfig

MEL_HOP = 160  # 10 ms
PITCH_HOP = 320  # 20 ms
PITCH_WINDOW = 1024


@dataclass
class AudioFeatures:
    ppg: np.ndarray  # [T, 191] phoneme probabilities
    mel: np.ndarray  # [T, n_mels] natural log of mel power
    energy: np.ndarray  # [T] RMS level in dBFS
    pitch: np.ndarray  # [T] fundamental frequency in Hz, 0 where unvoiced

    def arrays(self) -> dict[str, np.ndarray]:
        return {"ppg": self.ppg, "mel": self.mel, "energy": self.energy, "pitch": self.pitch}


def average_to_frames(values: np.ndarray, rate: float, num_frames: int, fps: float, offset_s: float = 0.0) -> np.ndarray:
    """Average rows sampled at `rate` (row j covers [j/rate, (j+1)/rate) + offset) over each video frame."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return np.zeros((num_frames, *values.shape[1:]), np.float32)
    # Integrate the piecewise-constant signal and difference it at the frame edges.
    edges_src = np.arange(len(values) + 1) / rate + offset_s
    cumulative = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values / rate, axis=0)])
    edges = np.arange(num_frames + 1) / fps
    clipped = np.clip(edges, edges_src[0], edges_src[-1])
    flat = cumulative.reshape(len(cumulative), -1)
    integral = np.stack([np.interp(clipped, edges_src, flat[:, c]) for c in range(flat.shape[1])], -1)
    width = np.diff(clipped)[:, None]
    out = np.diff(integral, axis=0) / np.where(width > 0, width, 1.0)
    out[width[:, 0] <= 0] = values.reshape(len(values), -1)[-1]  # frames past the end repeat the last row
    return out.reshape(num_frames, *values.shape[1:]).astype(np.float32)


def frame_energy(wave: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """RMS level of each frame's samples, in dBFS."""
    per = SAMPLE_RATE / fps
    starts = (np.arange(num_frames) * per).round().astype(int)
    ends = (np.arange(1, num_frames + 1) * per).round().astype(int)
    power = np.concatenate([[0.0], np.cumsum(wave.astype(np.float64) ** 2)])
    ends_c, starts_c = np.minimum(ends, len(wave)), np.minimum(starts, len(wave))
    mean = (power[ends_c] - power[starts_c]) / np.maximum(ends_c - starts_c, 1)
    return (10 * np.log10(mean + 1e-10)).astype(np.float32)


def pitch_track(wave: np.ndarray, fmin: float, fmax: float) -> np.ndarray:
    """F0 (Hz) every 20 ms by YIN, zeroed where the signal is not periodic (normalised autocorrelation at
    the found period below 0.5) or too quiet."""
    import librosa

    if len(wave) < PITCH_WINDOW:
        return np.zeros(int(np.ceil(len(wave) / PITCH_HOP)), np.float32)
    f0 = librosa.yin(wave, fmin=fmin, fmax=fmax, sr=SAMPLE_RATE, frame_length=PITCH_WINDOW, hop_length=PITCH_HOP, center=True)
    padded = np.pad(wave, PITCH_WINDOW // 2, mode="constant")
    frames = librosa.util.frame(padded, frame_length=PITCH_WINDOW, hop_length=PITCH_HOP)[:, : len(f0)].T  # [N, W]
    lag = np.clip(np.round(SAMPLE_RATE / f0).astype(int), 1, PITCH_WINDOW - 1)
    idx = np.arange(PITCH_WINDOW)[None, :]
    head_mask = idx < (PITCH_WINDOW - lag[:, None])
    shifted = np.take_along_axis(frames, np.minimum(idx + lag[:, None], PITCH_WINDOW - 1), axis=1)
    a, b = frames * head_mask, shifted * head_mask
    corr = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1) + 1e-12)
    loud = np.sqrt((frames**2).mean(1)) > 10 ** (-45 / 20)
    return np.where((corr > 0.5) & loud, f0, 0.0).astype(np.float32)


def extract_features(wave: np.ndarray, num_frames: int, fps: float, settings: "AudioConfig") -> AudioFeatures:
    """Features of 16 kHz mono `wave`, one row per video frame, with an avatar's audio settings (those it
    was preprocessed with, so that rendering sees what training saw)."""
    import librosa

    wave = np.asarray(wave, dtype=np.float32)
    mel_power = librosa.feature.melspectrogram(y=wave, sr=SAMPLE_RATE, n_fft=512, hop_length=MEL_HOP, win_length=400,
                                               n_mels=settings.mel_bins, fmin=20, fmax=7600, center=True).T
    # With centring, mel row j is centred on j * hop: it covers [j - 1/2, j + 1/2) hops.
    mel = average_to_frames(np.log(mel_power + 1e-6), SAMPLE_RATE / MEL_HOP, num_frames, fps, offset_s=-0.5 * MEL_HOP / SAMPLE_RATE)
    return AudioFeatures(mel=mel, **driver_features(wave, num_frames, fps, settings))


def driver_features(wave: np.ndarray, num_frames: int, fps: float, settings: "AudioConfig") -> dict[str, np.ndarray]:
    """The features the motion driver reads ({"ppg", "energy", "pitch"}, as in `extract_features`): all the
    live path computes each hop."""
    wave = np.asarray(wave, dtype=np.float32)
    ppg = average_to_frames(phonemes.posteriorgram(wave, settings.chunk_s), phonemes.RATE, num_frames, fps)
    ppg /= np.maximum(ppg.sum(1, keepdims=True), 1e-8)
    f0 = pitch_track(wave, settings.pitch_min_hz, settings.pitch_max_hz)
    voiced = average_to_frames((f0 > 0).astype(np.float32), SAMPLE_RATE / PITCH_HOP, num_frames, fps, -0.5 * PITCH_HOP / SAMPLE_RATE)
    f0_sum = average_to_frames(f0, SAMPLE_RATE / PITCH_HOP, num_frames, fps, -0.5 * PITCH_HOP / SAMPLE_RATE)
    pitch = np.where(voiced >= 0.5, f0_sum / np.maximum(voiced, 1e-6), 0.0).astype(np.float32)
    return {"ppg": ppg, "energy": frame_energy(wave, num_frames, fps), "pitch": pitch}
