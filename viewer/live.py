"""The microphone (or any live stream of samples) driving the avatar: chunks go to the library's live audio
path on a thread of their own; the motion codes it gives join the scene's live track.

The window's clock for a live source is wall time since the first sample, less a fixed playout delay: the
look-ahead, one hop and a margin for computing it. Frames are shown at that steady pace; if the live path
falls behind, the newest motion it has is shown and the latency grows (the benchmark measures it). While a
live source plays, the renderer runs on one thread: on two cores, a renderer on both starves the hops, which
then fall behind and the latency grows; on one, the frames come a little slower and the motion in time.
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import torch

from avatar.audio import SAMPLE_RATE

MARGIN_S = 0.06  # time allowed to compute one hop
RENDER_THREADS = 1  # live, the renderer keeps to one core: the other computes the hops in time


class LiveClock:
    """The interface of `sound.Playback` the window uses, for a live source: always playing."""

    backend, silent, loop, playing, live = "live", False, False, True, True

    def __init__(self, delay_s: float, available):
        self.delay_s = delay_s
        self.available = available  # () -> seconds of motion the live path has given
        self.start: float | None = None  # wall time of the first sample

    def position(self) -> float:
        return 0.0 if self.start is None else max(0.0, time.perf_counter() - self.start - self.delay_s)

    duration = 86400.0  # no end: frames are asked for ahead of the clock, the scene gives the newest it has

    def play(self) -> None:
        pass

    def pause(self) -> None:
        pass

    def seek(self, seconds: float) -> None:
        pass

    def load(self, wave: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass


class LiveFeed:
    """Samples in (`put`, from the capture callback or a file played at real-time pace), motion into `scene`."""

    def __init__(self, scene, lookahead_s: float = 0.12, hop_s: float = 0.1):
        from avatar.folder import preprocessed_config
        from avatar.motion.live import LiveMotion

        self.scene = scene
        self.motion = LiveMotion(scene.driver, preprocessed_config(scene.folder).audio, scene.fps, lookahead_s, hop_s)
        self.clock = LiveClock(lookahead_s + hop_s + MARGIN_S, lambda: max(scene.live_frames - 1, 0) / scene.fps)
        self._threads = torch.get_num_threads()
        torch.set_num_threads(min(RENDER_THREADS, self._threads))
        self.chunks: queue.Queue = queue.Queue()
        self.hop_ms: list[float] = []  # compute time of each hop that gave frames
        self._thread = threading.Thread(target=self._run, name="avatar-live", daemon=True)
        self._thread.start()

    def put(self, samples: np.ndarray, captured: float) -> None:
        """16 kHz mono `samples` whose last one was captured at wall time `captured` (perf_counter)."""
        if self.clock.start is None:
            self.clock.start = captured - len(samples) / SAMPLE_RATE
        self.chunks.put(samples)

    def close(self) -> None:
        self.chunks.put(None)
        self._thread.join(timeout=60)  # what was put is computed first
        torch.set_num_threads(self._threads)

    def _run(self) -> None:
        from avatar.audio import phonemes

        phonemes.posteriorgram(np.zeros(SAMPLE_RATE // 2, np.float32))  # load the recogniser before the first hop
        while True:
            pieces = [self.chunks.get()]
            while not self.chunks.empty():  # behind: take everything waiting, compute once (a longer hop)
                pieces.append(self.chunks.get())
            stop = any(piece is None for piece in pieces)
            pieces = [piece for piece in pieces if piece is not None]
            if pieces:
                start = time.perf_counter()
                codes = self.motion.push(np.concatenate(pieces))
                if len(codes):
                    self.hop_ms.append(1e3 * (time.perf_counter() - start))
                    self.scene.extend_live(codes)
            if stop:
                return
