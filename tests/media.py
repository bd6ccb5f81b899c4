"""Generated test media: videos and sounds written with PyAV, so tests need no files from outside."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np


def tone(seconds: float, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_video(path: Path, frame: Callable[[int], np.ndarray], count: int, fps: float = 25,
                audio: np.ndarray | None = None, sample_rate: int = 16000, times: np.ndarray | None = None,
                faststart: bool = False) -> Path:
    """Write `count` RGB frames (`frame(i)`) as h264 mp4, with optional mono audio.

    `times` (seconds per frame) makes a variable-frame-rate file.
    """
    import av

    path = Path(path)
    first = frame(0)
    h, w = first.shape[:2]
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000) if times is None else 1000)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        astream = None
        if audio is not None:
            astream = out.add_stream("aac", rate=sample_rate)
            astream.layout = "mono"
        for i in range(count):
            image = first if i == 0 else frame(i)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if times is not None:
                vf.pts, vf.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if astream is not None:
            for start in range(0, len(audio), 1024):
                piece = audio[start: start + 1024]
                af = av.AudioFrame.from_ndarray(piece[None].astype(np.float32), format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = sample_rate, start, Fraction(1, sample_rate)
                for packet in astream.encode(af):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        chunks = [f.to_ndarray().mean(0) for f in container.decode(stream)]
    return np.concatenate(chunks).astype(np.float32), rate


def numbered_frame(i: int, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """A frame whose brightness encodes its index (modulo 32), to check which source frame was kept."""
    return np.full((*size, 3), (i % 32) * 8, np.uint8)
