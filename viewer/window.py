"""The Dear PyGui window: the avatar on the left (drag to orbit, wheel to zoom, right-drag to pan), the
controls on the right, a readout of where the milliseconds go.

The audio clock drives the frames: each UI tick asks the render thread for the frame that will be due
when it is done (clock + its recent render time); a finished frame is shown when its time comes and
dropped if that time has passed, so the lips never lag the sound.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .scene import BACKGROUNDS, HEAD_MODES, Controls
from .sound import Playback
from .worker import RenderWorker

PANEL = 330  # width of the controls panel, pixels
TICK_S = 1 / 120  # the UI loop's pace (no vsync under Xvfb)
PLAN_AHEAD = 2  # finished frames waiting to be shown, at most, while a file plays
IDLE_DRAW_HZ = 30  # draws per second with no new frame to show (input, readout)...
PLAYING_DRAW_HZ = 8  # ...and while playing, when new frames already draw it (each draw costs CPU the renderer needs)
KEYS_HELP = "space play/pause · L loop · Home start · R reset view · B blink · S screenshot · Esc quit"


@dataclass
class Stats:
    shown: int = 0
    dropped: int = 0
    since: float = field(default_factory=time.perf_counter)
    timings: dict = field(default_factory=dict)

    def add(self, timings: dict[str, float]) -> None:
        for k, v in timings.items():
            self.timings[k] = 0.9 * self.timings.get(k, v) + 0.1 * v

    def fps(self) -> float:
        return self.shown / max(time.perf_counter() - self.since, 1e-6)


class Window:
    def __init__(self, worker: RenderWorker, playback: Playback, title: str, controls: Controls | None = None,
                 voice: str = "en-us", watch=None):
        self.worker, self.playback, self.scene = worker, playback, worker.scene
        self.controls = controls or Controls()
        self.voice = voice  # what the Speak box speaks with
        self.live = getattr(playback, "live", False)  # a live clock (the microphone) instead of a sound file
        self.size = self.scene.size
        self.stats = Stats()
        self.pending: list[tuple] = []  # (clock seconds, controls, frame) rendered ahead, waiting for their time
        self.requested: tuple[float, Controls] | None = None  # what the window asked for last
        self._planned: tuple[float, Controls] | None = None  # what the render thread planned last, playing
        self.shown: tuple | None = None  # (clock seconds, controls, frame) on screen now
        self.history: collections.deque = collections.deque(maxlen=4000)  # (wall time, video frame) of each frame shown
        self.status = ""
        self._mouse = None
        self._screenshot: tuple[Path, int] | None = None  # (file, ticks to wait for the frame buffer)
        self._loading = None  # the future of a source being prepared
        self.watch = watch  # a `viewer.watch.FitWatch` to follow, or None
        self._reloading = None  # the future of a watched model state being loaded
        self._looked = time.perf_counter()  # when the watched folder was last looked at
        self._drawn = 0.0  # when the window was last drawn
        self.closed = False
        self._build(title)
        worker.plan_with(self._plan)

    # -- layout ------------------------------------------------------------------------------------

    def _build(self, title: str) -> None:
        import os

        # Without a GPU (Xvfb, a VM) Mesa's software GL draws the window on as many threads as there are
        # cores, fighting the avatar's renderer for them; one thread draws this window as fast.
        os.environ.setdefault("LP_NUM_THREADS", "1")
        import dearpygui.dearpygui as dpg

        self.dpg = dpg
        dpg.create_context()
        size = self.size
        with dpg.texture_registry():
            dpg.add_raw_texture(size, size, np.zeros(size * size * 3, np.float32), format=dpg.mvFormat_Float_rgb, tag="frame")
        with dpg.theme() as flat:
            with dpg.theme_component(dpg.mvAll):
                dpg.add_theme_style(dpg.mvStyleVar_WindowPadding, 0, 0)
                dpg.add_theme_style(dpg.mvStyleVar_WindowBorderSize, 0)
        with dpg.window(tag="view", pos=(0, 0), width=size, height=size, no_title_bar=True, no_move=True,
                        no_resize=True, no_scrollbar=True, no_collapse=True):
            dpg.add_image("frame", tag="image")
        dpg.bind_item_theme("view", flat)
        c = self.controls
        with dpg.window(tag="panel", pos=(size, 0), width=PANEL, height=max(size, 520), no_title_bar=True, no_move=True,
                        no_resize=True, no_collapse=True):
            with dpg.group(horizontal=True):
                dpg.add_button(label="Play", tag="play", width=70, callback=lambda: self.toggle_play())
                dpg.add_checkbox(label="loop", tag="loop", callback=lambda s, v: setattr(self.playback, "loop", v))
                dpg.add_button(label="Screenshot", callback=lambda: self.screenshot(Path(f"avatar-view-{time.strftime('%H%M%S')}.png")))
            dpg.add_slider_float(tag="timeline", label="s", width=-30, min_value=0.0, max_value=max(self.playback.duration, 0.1),
                                 callback=lambda s, v: self.playback.seek(v))
            dpg.add_separator()
            dpg.add_text("motion")
            self._slider("mouth_scale", "mouth motion", 0.0, 2.0, c.mouth_scale)
            self._slider("smile", "smile", -1.0, 2.0, c.smile)
            self._slider("brow", "brow raise", -1.0, 2.0, c.brow)
            with dpg.group(horizontal=True):
                dpg.add_checkbox(label="automatic blinks", default_value=c.auto_blink,
                                 callback=lambda s, v: self.edit(auto_blink=v))
                dpg.add_button(label="Blink now", callback=lambda: self.blink_now())
            dpg.add_combo(HEAD_MODES, label="head motion", default_value=c.head, width=140, callback=lambda s, v: self.edit(head=v))
            dpg.add_separator()
            dpg.add_text("view")
            dpg.add_combo(BACKGROUNDS, label="background", default_value=c.background, width=140,
                          callback=lambda s, v: self.edit(background=v))
            dpg.add_color_edit(tuple(int(255 * x) for x in c.colour), label="colour", no_alpha=True, width=200,
                               callback=lambda s, v: self.edit(colour=tuple(float(x) for x in v[:3])))
            with dpg.group(horizontal=True):
                dpg.add_checkbox(label="head", default_value=c.show_head, callback=lambda s, v: self.edit(show_head=v))
                dpg.add_checkbox(label="torso", default_value=c.show_torso, callback=lambda s, v: self.edit(show_torso=v))
                dpg.add_button(label="Reset view", callback=lambda: self.edit(yaw=0.0, pitch=0.0, zoom=1.0, pan=(0.0, 0.0)))
            dpg.add_separator()
            with dpg.group(horizontal=True):
                dpg.add_input_text(tag="text", hint="type something to say", width=PANEL - 80)
                dpg.add_button(label="Speak", callback=lambda: self.speak(dpg.get_value("text")))
            dpg.add_button(label="Record mp4", callback=lambda: self.record(Path(f"avatar-view-{time.strftime('%H%M%S')}.mp4")))
            dpg.add_separator()
            dpg.add_text("", tag="readout", wrap=PANEL - 20)
            dpg.add_text("", tag="status", wrap=PANEL - 20)
            dpg.add_text(KEYS_HELP, wrap=PANEL - 20, color=(150, 150, 150))
        with dpg.handler_registry():
            dpg.add_mouse_wheel_handler(callback=lambda s, v: self._wheel(v))
            for key, action in ((dpg.mvKey_Spacebar, self.toggle_play), (dpg.mvKey_R, lambda: self.edit(yaw=0.0, pitch=0.0, zoom=1.0, pan=(0.0, 0.0))),
                                (dpg.mvKey_B, self.blink_now), (dpg.mvKey_Home, lambda: self.playback.seek(0.0)),
                                (dpg.mvKey_L, self._toggle_loop), (dpg.mvKey_Escape, self.close),
                                (dpg.mvKey_S, lambda: self.screenshot(Path(f"avatar-view-{time.strftime('%H%M%S')}.png")))):
                dpg.add_key_press_handler(key, callback=lambda s, a, u=action: u())
        dpg.create_viewport(title=title, width=size + PANEL, height=max(size, 520), resizable=False)
        dpg.setup_dearpygui()
        dpg.show_viewport()

    def _slider(self, name: str, label: str, low: float, high: float, value: float) -> None:
        self.dpg.add_slider_float(tag=f"slider-{name}", label=label, width=170, min_value=low, max_value=high, default_value=value,
                                  callback=lambda s, v: self.edit(**{name: float(v)}))

    # -- actions -----------------------------------------------------------------------------------

    def edit(self, **changes) -> None:
        self.controls = self.controls.edited(**changes)

    def toggle_play(self) -> None:
        if self.playback.playing:
            self.playback.pause()
        else:
            self.playback.play()
            self.stats = Stats()

    def _toggle_loop(self) -> None:
        self.playback.loop = not self.playback.loop
        self.dpg.set_value("loop", self.playback.loop)

    def blink_now(self) -> None:
        frame = int(self.playback.position() * self.scene.fps) + 1
        self.edit(blinks_at=self.controls.blinks_at[-8:] + (frame,))

    def screenshot(self, path: Path, wait_ticks: int = 3) -> None:
        """Save the window as a PNG once the current frame is on screen."""
        self._screenshot = (Path(path), wait_ticks)

    def speak(self, text: str) -> None:
        """Say `text`: synthesis and features run on the render thread; the next tick switches to it."""
        from .sources import speak_text

        if not text.strip():
            return
        self.say("synthesising speech…")
        voice, controls = self.voice, self.controls
        self._loading = self.worker.submit(lambda scene: scene.set_speech(speak_text(text, voice), controls))

    def _switch_source(self) -> None:
        future, self._loading = self._loading, None
        if future.exception() is not None:
            self.say(f"could not speak that: {future.exception()}")
            return
        self.playback.pause()
        self.playback.load(future.result().source.wave)
        self.dpg.configure_item("timeline", max_value=max(self.playback.duration, 0.1))
        self.playback.play()
        self.stats = Stats()
        self.say("")

    def _follow(self) -> None:
        """Watching a fit: every few seconds, load a newer model state on the render thread; show it when loaded."""
        from .watch import CHECK_S

        if self._reloading is not None:
            if self._reloading.done():
                error, self._reloading = self._reloading.exception(), None
                self.say(f"could not read the newest checkpoint yet ({error}); trying again" if error
                         else f"showing {self.scene.model_label}")
                if error is None:
                    print(f"model: {self.scene.model_label}", flush=True)
                self.requested = self._planned = None  # render the current moment again, with the new model
            return
        now = time.perf_counter()
        if now - self._looked >= CHECK_S:
            self._looked = now
            if self.watch.changed():
                watch = self.watch
                self._reloading = self.worker.submit(lambda scene: scene.use(watch.load(scene.device)))

    def record(self, path: Path) -> None:
        from .sources import record_track

        self.say(f"recording {path}…")
        future = self.worker.submit(lambda scene: record_track(scene, self.controls, path))
        future.add_done_callback(lambda f: self.say(f"recorded {path}" if f.exception() is None else f"recording failed: {f.exception()}"))

    def say(self, text: str) -> None:
        self.status = text

    def close(self) -> None:
        self.closed = True

    # -- mouse -------------------------------------------------------------------------------------

    def _wheel(self, delta: float) -> None:
        if self.dpg.is_item_hovered("image"):
            self.edit(zoom=float(np.clip(self.controls.zoom * 1.1 ** delta, 0.3, 4.0)))

    def _drag(self) -> None:
        dpg = self.dpg
        left, right = dpg.is_mouse_button_down(dpg.mvMouseButton_Left), dpg.is_mouse_button_down(dpg.mvMouseButton_Right)
        pos = dpg.get_mouse_pos(local=False)
        if not (left or right) or (self._mouse is None and not dpg.is_item_hovered("image")):
            self._mouse = None
            return
        if self._mouse is not None:
            dx, dy = pos[0] - self._mouse[0], pos[1] - self._mouse[1]
            self.orbit(dx, dy) if left else self.pan(dx, dy)
        self._mouse = pos

    def orbit(self, dx: float, dy: float) -> None:
        """Turn the view as a drag of (dx, dy) pixels does."""
        c = self.controls
        self.edit(yaw=float(np.clip(c.yaw + 0.3 * dx, -80, 80)), pitch=float(np.clip(c.pitch - 0.3 * dy, -60, 60)))

    def pan(self, dx: float, dy: float) -> None:
        self.edit(pan=(self.controls.pan[0] + dx, self.controls.pan[1] + dy))

    # -- the loop ----------------------------------------------------------------------------------

    def tick(self, draw: bool = False) -> bool:
        """One pass of the UI loop: input, frame scheduling, display, readout. The window is drawn when a new
        frame went up, at least `IDLE_DRAW_HZ` times a second (input and readout), or when `draw`; drawing is
        what costs (a software GL under Xvfb takes milliseconds). Returns whether it drew."""
        dpg = self.dpg
        self._drag()
        if self._loading is not None and self._loading.done():
            self._switch_source()
        if self.watch is not None:
            self._follow()
        clock = self.playback.position()
        playing = self.playback.playing
        fresh = self._show(clock, playing)
        self._schedule(clock, playing)
        now = time.perf_counter()
        idle_hz = PLAYING_DRAW_HZ if playing else IDLE_DRAW_HZ
        if not (fresh or draw or self._screenshot is not None or now - self._drawn >= 1 / idle_hz):
            return False
        dpg.set_item_label("play", "Pause" if playing else "Play")
        if playing:
            dpg.set_value("timeline", clock)
        t = self.stats.timings
        dpg.set_value("readout", f"{self.stats.fps():.1f} FPS shown, {self.stats.dropped} dropped\n"
                                 + " · ".join(f"{k} {v:.1f} ms" for k, v in t.items())
                                 + f"\nsound: {self.playback.backend}" + (" (no sound device: silent clock)" if self.playback.silent else "")
                                 + (f"\nmodel: {self.scene.model_label}" if self.watch is not None else ""))
        dpg.set_value("status", self.status)
        dpg.render_dearpygui_frame()
        self._drawn = time.perf_counter()
        self.stats.add({"display": 1e3 * (self._drawn - now)})
        if self._screenshot is not None:
            path, wait = self._screenshot
            if wait == 0:
                dpg.output_frame_buffer(file=str(path))
                self._screenshot = None
                self.say(f"saved {path}")
            else:
                self._screenshot = (path, wait - 1)
        return True

    def _show(self, clock: float, playing: bool) -> bool:
        """Put the newest due frame on screen; drop those whose moment has passed."""
        self.pending.extend(self.worker.take())
        if not playing or self.live:  # live motion cannot come early: show what there is as soon as it is there
            ready, self.pending = self.pending[-1:], []
        else:
            late = [clock > f[0] + 1 / self.scene.fps for f in self.pending]
            due = [not gone and clock >= f[0] - TICK_S for f, gone in zip(self.pending, late)]
            if self.shown is None and any(late) and not any(due):
                # A renderer slower than the frame rate (a NeRF on a CPU): the first frame is shown late rather
                # than the window staying empty.
                k = max(i for i, gone in enumerate(late) if gone)
                late, due = [gone and i != k for i, gone in enumerate(late)], [i == k for i in range(len(late))]
            ready = [f for f, d in zip(self.pending, due) if d]
            self.stats.dropped += sum(late) + max(0, len(ready) - 1)  # two due at once: the older is stale
            self.pending = [f for f, gone, d in zip(self.pending, late, due) if not gone and not d]
        if ready:
            frame = ready[-1][2]
            self.dpg.set_value("frame", frame.texture)
            self.stats.add(frame.timings)
            self.stats.shown += 1
            self.shown = ready[-1]
            self.history.append((time.perf_counter(), frame.position))
        return bool(ready)

    def _plan(self) -> tuple[float, Controls] | None:
        """The next frame to render while a file plays (asked by the render thread as soon as it is free): the
        one due when it will be done, or one render time after the last one planned if that is later, so frames
        follow each other at the pace the renderer makes them. At most `PLAN_AHEAD` finished frames wait to be
        shown. Paused or live: none (`_schedule` asks)."""
        if self.live or not self.playback.playing or self._loading is not None:
            return None
        pending = list(self.pending)
        if len(pending) + self.worker.waiting >= PLAN_AHEAD:
            return None
        clock, render = self.playback.position(), self.worker.render_seconds
        due = clock + render + TICK_S
        if pending:
            due = max(due, pending[-1][0] + TICK_S)
        last = self._planned
        if last is not None and last[1] == self.controls and clock < last[0] < clock + (PLAN_AHEAD + 1) * render + TICK_S:
            due = max(due, last[0] + render)  # the next after the last planned (a seek or a loop leaves it behind)
        planned = (round(min(due, max(self.playback.duration - 1e-3, 0.0)), 4), self.controls)
        if planned == self._planned:  # the end of the source: it is rendered already
            return None
        self._planned = planned
        return planned

    def _schedule(self, clock: float, playing: bool) -> None:
        """Paused, render when the controls or the position change; live, the newest moment the live path has
        given (playing a file, the render thread plans its own frames: `_plan`)."""
        if not self.worker.idle or (playing and not self.live):
            return
        due = clock
        if self.live:  # nothing newer than the motion the live path has given
            due = min(clock + self.worker.render_seconds + TICK_S, self.playback.available())
        due = min(due, max(self.playback.duration - 1e-3, 0.0))
        wanted = (round(due, 4), self.controls)
        if wanted != self.requested and (not playing or len(self.pending) < 2):
            self.worker.request(*wanted)
            self.requested = wanted

    def run(self, until: float | None = None, screenshot: Path | None = None) -> None:
        """The UI loop, until the window closes (or `until` seconds have passed: then save `screenshot`, if given)."""
        dpg = self.dpg
        start = time.perf_counter()
        try:
            while dpg.is_dearpygui_running() and not self.closed:
                tick = time.perf_counter()
                if until is not None and tick - start >= until:
                    if screenshot is not None and self._screenshot is None:
                        self.screenshot(screenshot)
                        for _ in range(8):  # the file is written when a later frame is drawn
                            self.tick(draw=True)
                    break
                self.tick()
                time.sleep(max(0.0, TICK_S - (time.perf_counter() - tick)))
        finally:
            dpg.destroy_context()
