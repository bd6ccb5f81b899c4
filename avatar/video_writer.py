"""Writing videos frame by frame, with the audio interleaved, atomically: h264 + aac in .mp4, or VP9 (with
an alpha channel when asked) + Opus in .webm."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np


class VideoWriter:
    """`with VideoWriter(path, fps, width, height, audio=samples, sample_rate=sr) as out: out.write(rgb)`.

    The file appears at `path` only when the block finishes without error. Audio (mono float32) is cut
    or padded to the length of the video.
    """

    def __init__(self, path: Path, fps: int, width: int, height: int, audio: np.ndarray | None = None,
                 sample_rate: int = 16000, crf: int = 20, preset: str = "veryfast", alpha: bool = False):
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}")
        self._container = av.open(str(self._tmp), mode="w")
        webm = self.path.suffix.lower() == ".webm"
        self._format = "rgba" if alpha else "rgb24"
        if webm:
            self._video = self._container.add_stream("libvpx-vp9", rate=fps)
            self._video.pix_fmt = "yuva420p" if alpha else "yuv420p"
            self._video.options = {"crf": str(crf + 12), "b": "0", "deadline": "realtime", "cpu-used": "8"}
        else:
            if alpha:
                raise ValueError("mp4 (h264) has no alpha channel; write .webm or a PNG sequence")
            self._video = self._container.add_stream("libx264", rate=fps)
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf), "preset": preset}
        self._video.width, self._video.height = width, height
        self._fps = fps
        self._frames = 0
        self._audio = None
        if audio is not None:
            samples = np.asarray(audio, dtype=np.float32)
            if webm and sample_rate != 48000:  # Opus runs at 48 kHz
                import soxr

                samples, sample_rate = soxr.resample(samples, sample_rate, 48000).astype(np.float32), 48000
            self._audio_samples = samples
            self._sample_rate = sample_rate
            self._audio = self._container.add_stream("libopus" if webm else "aac", rate=sample_rate)
            self._audio.layout = "mono"
            self._chunk = 960 if webm else 1024
            self._audio_sent = 0

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()
            self._tmp.unlink(missing_ok=True)

    def write(self, rgb: np.ndarray) -> None:
        """One frame: [H, W, 3] uint8 RGB, or [H, W, 4] RGBA for a video with alpha."""
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format=self._format)
        frame.pts = self._frames
        frame.time_base = Fraction(1, self._fps)
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self._frames += 1
        if self._audio is not None:
            self._send_audio(int(round(self._frames * self._sample_rate / self._fps)))

    def _send_audio(self, until: int) -> None:
        import av

        chunk = self._chunk
        while self._audio_sent + chunk <= until:
            piece = self._audio_samples[self._audio_sent: self._audio_sent + chunk]
            if len(piece) < chunk:
                piece = np.pad(piece, (0, chunk - len(piece)))
            frame = av.AudioFrame.from_ndarray(piece[None], format="flt", layout="mono")
            frame.sample_rate = self._sample_rate
            frame.pts = self._audio_sent
            frame.time_base = Fraction(1, self._sample_rate)
            for packet in self._audio.encode(frame):
                self._container.mux(packet)
            self._audio_sent += chunk

    def close(self) -> None:
        for packet in self._video.encode():
            self._container.mux(packet)
        if self._audio is not None:
            total = int(round(self._frames * self._sample_rate / self._fps))
            remaining = total - self._audio_sent
            if remaining > 0:
                import av

                piece = np.pad(self._audio_samples[self._audio_sent: total], (0, max(0, total - len(self._audio_samples))))
                piece = piece[:remaining]
                if self._chunk == 960:  # Opus takes whole 20 ms frames only
                    piece = np.pad(piece, (0, self._chunk - len(piece)))
                frame = av.AudioFrame.from_ndarray(piece[None].astype(np.float32), format="flt", layout="mono")
                frame.sample_rate = self._sample_rate
                frame.pts = self._audio_sent
                frame.time_base = Fraction(1, self._sample_rate)
                for packet in self._audio.encode(frame):
                    self._container.mux(packet)
            for packet in self._audio.encode():
                self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
