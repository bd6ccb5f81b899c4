"""Sound out and in through miniaudio (its wheel carries the C library: nothing else to install).

`Playback` plays the source's audio; its position is the viewer's clock, so frames follow what is heard.
With no sound device (a server, CI) it runs on miniaudio's Null backend: the same clock, in silence.
`Capture` records the microphone in chunks for the live mode.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time

import numpy as np

RATE = 16000
BUFFER_MS = 40


@contextlib.contextmanager
def _quiet_stderr():
    """ALSA prints a page of errors on a machine without a sound card; keep them off the terminal."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _open(make, sound: bool):
    """(device, backend name): the system's default backend when `sound`, else (or when that fails) Null."""
    import miniaudio

    if sound:
        try:
            with _quiet_stderr():
                device = make(None)
            return device, device.backend
        except miniaudio.MiniaudioError:
            pass
    device = make([miniaudio.Backend.NULL])
    return device, "null"


class Playback:
    """A 16 kHz mono wave played from a cursor; `position()` is the clock (seconds of audio heard)."""

    def __init__(self, sound: bool = True):
        import miniaudio

        self.wave = np.zeros(0, np.int16)
        self.loop = False
        self._cursor = 0  # next sample handed to the device
        self._playing = False
        self._stamp = (0, time.perf_counter())  # (cursor, time) at the last callback
        self._lock = threading.Lock()
        self.device, self.backend = _open(lambda backends: miniaudio.PlaybackDevice(
            output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=RATE,
            buffersize_msec=BUFFER_MS, backends=backends, app_name="avatar view"), sound)
        self.silent = self.backend == "null"
        stream = self._stream()
        next(stream)
        self.device.start(stream)

    def _stream(self):
        wanted = yield b""
        while True:
            with self._lock:
                out = np.zeros(wanted, np.int16)
                if self._playing:
                    got = self.wave[self._cursor: self._cursor + wanted]
                    out[: len(got)] = got
                    self._cursor += len(got)
                    if self._cursor >= len(self.wave):
                        if self.loop and len(self.wave):
                            self._cursor = 0
                        else:
                            self._playing = False
                self._stamp = (self._cursor, time.perf_counter())
            wanted = yield out.tobytes()

    def load(self, wave: np.ndarray) -> None:
        with self._lock:
            self.wave = (np.clip(wave, -1, 1) * 32767).astype(np.int16)
            self._cursor, self._playing = 0, False
            self._stamp = (0, time.perf_counter())

    @property
    def duration(self) -> float:
        return len(self.wave) / RATE

    @property
    def playing(self) -> bool:
        return self._playing

    def play(self) -> None:
        with self._lock:
            if self._cursor >= len(self.wave):
                self._cursor = 0
            self._playing = len(self.wave) > 0
            self._stamp = (self._cursor, time.perf_counter())

    def pause(self) -> None:
        with self._lock:
            self._cursor = int(self._position() * RATE)
            self._playing = False
            self._stamp = (self._cursor, time.perf_counter())

    def seek(self, seconds: float) -> None:
        with self._lock:
            self._cursor = int(np.clip(seconds, 0, self.duration) * RATE)
            self._stamp = (self._cursor, time.perf_counter())

    def _position(self) -> float:
        cursor, stamp = self._stamp
        if not self._playing:
            return cursor / RATE
        # What was handed over last is still in the device's buffer; it is heard as time goes on.
        heard = cursor / RATE - BUFFER_MS / 1000 + (time.perf_counter() - stamp)
        return float(np.clip(heard, max(0.0, cursor / RATE - BUFFER_MS / 1000), cursor / RATE))

    def position(self) -> float:
        """Seconds into the wave that are being heard now."""
        with self._lock:
            return self._position()

    def close(self) -> None:
        self.device.close()


class Capture:
    """The microphone as 16 kHz mono chunks handed to `on_chunk(samples float32, time captured)`."""

    def __init__(self, on_chunk, sound: bool = True):
        import miniaudio

        self.on_chunk = on_chunk
        self.device, self.backend = _open(lambda backends: miniaudio.CaptureDevice(
            input_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=RATE, buffersize_msec=20,
            backends=backends, app_name="avatar view"), sound)
        self.silent = self.backend == "null"
        stream = self._stream()
        next(stream)
        self.device.start(stream)

    def _stream(self):
        while True:
            data = yield
            samples = np.frombuffer(data, np.int16).astype(np.float32) / 32768
            self.on_chunk(samples, time.perf_counter())

    def close(self) -> None:
        self.device.close()
