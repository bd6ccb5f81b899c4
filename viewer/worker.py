"""The render thread: owns the `Scene`, renders what the window last asked for, hands over the newest frame.

The window never waits on it. A request names a clock time (seconds into the source) and the controls;
a newer request replaces an older one that has not started. While a source plays, the thread asks the
window's `planner` for its next frame itself as soon as one is done, and finished frames queue up for the
window (up to `FINISHED_KEPT`), so it never waits for the window to draw or take one before it starts the
next. Jobs (a new source, a recording) run on the same thread, between frames, so the scene is only ever
touched from here. The kernels release the GIL, so the window stays responsive while a frame renders.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future

from .scene import Controls, Frame, Scene

PLAN_WAIT_S = 0.004  # how long the thread waits before asking the planner again
FINISHED_KEPT = 4  # finished frames not taken yet: beyond this many the oldest goes


class RenderWorker:
    def __init__(self, scene: Scene):
        self.scene = scene
        self.planner = None  # () -> (seconds, controls) of the next frame to render unasked, or None
        self._lock = threading.Condition()
        self._request: tuple[float, Controls] | None = None
        self._jobs: list[tuple[object, tuple, Future]] = []
        self._finished: list[tuple[float, Controls, Frame]] = []  # (clock seconds it shows, its controls, frame), oldest first
        self._busy = False
        self._stop = False
        self.render_seconds = 0.04  # running estimate of one frame's wall time
        self._thread = threading.Thread(target=self._run, name="avatar-render", daemon=True)
        self._thread.start()

    def plan_with(self, planner) -> None:
        """Render what `planner()` names ((seconds, controls) or None) whenever there is nothing else to do."""
        with self._lock:
            self.planner = planner
            self._lock.notify()

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

    @property
    def waiting(self) -> int:
        """How many finished frames are waiting for `take`."""
        with self._lock:
            return len(self._finished)

    def take(self) -> list[tuple[float, Controls, Frame]]:
        """(clock seconds, controls, frame) of each frame finished since the last call, oldest first."""
        with self._lock:
            finished, self._finished = self._finished, []
            return finished

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._thread.join(timeout=10)

    def _next(self):
        """("job", job), ("frame", request), ("idle", None) or None (stop): what to do next."""
        with self._lock:
            while not self._stop and self._request is None and not self._jobs:
                if self.planner is not None:
                    break
                self._lock.wait()
            if self._stop:
                return None
            if self._jobs:
                self._busy = True
                return "job", self._jobs.pop(0)
            if self._request is not None:
                request, self._request, self._busy = self._request, None, True
                return "frame", request
        planned = self.planner()
        with self._lock:
            if planned is None or self._request is not None or self._jobs:
                self._lock.wait(timeout=PLAN_WAIT_S)  # nothing to plan now (paused, or far enough ahead)
                return "idle", None
            self._busy = True
            return "frame", planned

    def _run(self) -> None:
        while True:
            step = self._next()
            if step is None:
                return
            what, task = step
            if what == "idle":
                continue
            try:
                if what == "job":
                    fn, args, future = task
                    try:
                        future.set_result(fn(self.scene, *args))
                    except BaseException as exc:  # handed to whoever waits on the job
                        future.set_exception(exc)
                    continue
                seconds, controls = task
                start = time.perf_counter()
                frame = self.scene.render(seconds * self.scene.fps, controls)
                elapsed = time.perf_counter() - start
                self.render_seconds = 0.8 * self.render_seconds + 0.2 * elapsed
                with self._lock:
                    self._finished = self._finished[1 - FINISHED_KEPT:] + [(seconds, controls, frame)]
            finally:
                with self._lock:
                    self._busy = False
