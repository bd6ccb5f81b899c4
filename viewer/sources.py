"""Where the viewer's speech comes from (a file, typed text), and recording what it shows to a video."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .scene import Controls, Scene, Source


def audio_file(path: Path) -> Source:
    """A speech file as a `Source`; a missing, empty or unreadable file is a one-line `AvatarError`."""
    from avatar.audio import SAMPLE_RATE
    from avatar.audio.io import load_audio, load_audio_native
    from avatar.errors import AvatarError

    wave = load_audio(Path(path), SAMPLE_RATE)
    if len(wave) < SAMPLE_RATE // 10:
        raise AvatarError(f"{path} is shorter than 0.1 s; give a speech recording")
    audio, rate = load_audio_native(Path(path))
    return Source(wave, audio, rate)


def speak_text(text: str, voice: str = "en-us") -> Source:
    """Typed text spoken by the offline synthesiser (what `avatar speak` writes)."""
    import soxr

    from avatar.audio import SAMPLE_RATE
    from avatar.errors import AvatarError
    from avatar.speech_synth import synthesize

    samples, rate = synthesize(text, voice=voice)
    if len(samples) == 0:
        raise AvatarError("espeak-ng produced no sound for that text; give some words to say")
    wave = samples if rate == SAMPLE_RATE else soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ")
    return Source(np.clip(wave, -1, 1).astype(np.float32), samples.astype(np.float32), rate)


def record_track(scene: Scene, controls: Controls, path: Path) -> Path:
    """Every frame of the current source with `controls`, with its sound, to an mp4 (as `avatar render` writes
    one: the same frame count, frame rate and audio)."""
    from avatar.video_writer import VideoWriter

    track = scene.track
    with VideoWriter(Path(path), scene.fps, scene.size, scene.size, audio=track.source.audio,
                     sample_rate=track.source.rate) as writer:
        for i in range(track.frames):
            writer.write(scene.render(float(i), controls).image)
    return Path(path)
