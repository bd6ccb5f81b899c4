"""The render thread: owns the `Scene`, renders what the window last asked for, hands over the newest frame.

The window never waits on it. A request names a clock time (seconds into the source) and the controls;
a newer request replaces an older one that has not started. Jobs (a new source, a recording) run on the
same thread, between frames, so the scene is only ever touched from here. The kernels release the GIL, so
the window stays responsive while a frame renders.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np

from .scene import Controls, Frame, Scene


class RenderWorker:
    def __init__(self, scene: Scene):
        self.scene = scene
        self._lock = threading.Condition()
        self._request: tuple[float, Controls] | None = None
        self._jobs: list[tuple[object, tuple, Future]] = []
        self._newest: tuple[float, Controls, Frame] | None = None  # (clock seconds it shows, its controls, frame)
        self._busy = False
        self._stop = False
        self.render_seconds = 0.04  # running estimate of one frame's wall time
        self._thread = threading.Thread(target=self._run, name="avatar-render", daemon=True)
        self._thread.start()

    def request(self, seconds: float, controls: Controls) -> None:
        """Render the frame at `seconds` into the source with `controls` (replacing any request not yet started)."""
        with self._lock:
            self._request = (seconds, controls)
            self._lock.notify()

    def submit(self, fn, *args) -> Future:
        """Run `fn(scene, *args)` on the render thread; its result comes back in the future."""
        future: Future = Future()
        with self._lock:
            self._jobs.append((fn, args, future))
            self._lock.notify()
        return future

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._busy and self._request is None and not self._jobs

    def take(self) -> tuple[float, Controls, Frame] | None:
        """(clock seconds, controls, frame) of the newest finished frame, once; None if none since the last call."""
        with self._lock:
            newest, self._newest = self._newest, None
            return newest

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stop and self._request is None and not self._jobs:
                    self._lock.wait()
                if self._stop:
                    return
                job, request = (self._jobs.pop(0), None) if self._jobs else (None, self._request)
                if job is None:
                    self._request = None
                self._busy = True
            try:
                if job is not None:
                    fn, args, future = job
                    try:
                        future.set_result(fn(self.scene, *args))
                    except BaseException as exc:  # handed to whoever waits on the job
                        future.set_exception(exc)
                    continue
                seconds, controls = request
                start = time.perf_counter()
                frame = self.scene.render(seconds * self.scene.fps, controls)
                frame.texture = frame.image.astype(np.float32).ravel() * (1 / 255)
                elapsed = time.perf_counter() - start
                self.render_seconds = 0.8 * self.render_seconds + 0.2 * elapsed
                with self._lock:
                    self._newest = (seconds, controls, frame)
            finally:
                with self._lock:
                    self._busy = False
