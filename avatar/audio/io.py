"""Reading speech from any file PyAV or soundfile reads, as mono float32 at a chosen rate."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avatar.errors import AvatarError


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at `sample_rate` (wav, flac, mp3, m4a, or a video's audio track)."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"{path} does not exist; check the path")
    if path.stat().st_size == 0:
        raise AvatarError(f"{path} is empty (0 bytes)")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        mono = samples.mean(axis=1)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        mono, rate = _load_with_pyav(path)
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
    return np.clip(mono, -1.0, 1.0).astype(np.float32)


def load_audio_native(path: Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples, their own sample rate): for putting the audio back into a video unchanged."""
    import soundfile

    path = Path(path)
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return np.clip(samples.mean(axis=1), -1.0, 1.0).astype(np.float32), int(rate)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        mono, rate = _load_with_pyav(path)
        return np.clip(mono, -1.0, 1.0).astype(np.float32), int(rate)


def _load_with_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AvatarError(f"{path} has no audio stream; give a speech recording")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or 16000
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks = [out.to_ndarray().reshape(-1) for frame in container.decode(stream) for out in resampler.resample(frame)]
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise AvatarError(f"{path} cannot be read as audio ({str(exc).split(':')[0].lower()}); convert it to wav or flac") from None
    if not chunks:
        raise AvatarError(f"{path} contains no audio samples")
    return np.concatenate(chunks).astype(np.float32), rate


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    import soundfile

    from avatar.io_utils import atomic_path

    with atomic_path(Path(path)) as tmp:
        soundfile.write(str(tmp), samples, sample_rate, subtype="PCM_16", format="WAV")
