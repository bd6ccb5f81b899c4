"""`avatar view AVATAR [--audio FILE | --text "..." [--voice V] | --mic] [--watch] [--size 512]`: everything is checked and
prepared (avatar, sound, speech features) before the window opens, so bad input is one line, not a window
that fails later."""
from __future__ import annotations

import os
from pathlib import Path

from avatar.errors import AvatarError


def check_display() -> None:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise AvatarError("no display to open a window on; run it on a desktop, or headless under Xvfb: "
                          "xvfb-run -a avatar view ...")


def run_view(avatar: str, audio: str | None = None, text: str | None = None, voice: str = "en-us", size: int = 512,
             device_name: str = "auto", sound: bool = True, screenshot: str | None = None, after: float = 3.0,
             mic: bool = False, lookahead: float = 0.12, watch: bool = False) -> int:
    from avatar.device import resolve_device
    from avatar.folder import open_avatar_folder

    from .scene import Controls, Scene
    from .sources import audio_file, speak_text

    if sum(map(bool, (audio, text, mic))) > 1:
        raise AvatarError("give one source: --audio FILE, --text TEXT or --mic (or none, for an idle avatar)")
    if watch and mic:
        raise AvatarError("--watch shows a fit as it forms, driven by its video or by --audio/--text; --mic needs a finished avatar")
    if not 0 <= lookahead <= 1:
        raise AvatarError("--lookahead is seconds of audio the live mouth waits for, between 0 and 1")
    if size < 64 or size % 2:
        raise AvatarError("--size must be an even number of pixels, at least 64")
    if screenshot is not None and after < 0:
        raise AvatarError("--after must not be negative")
    fit_watch = None
    if watch:
        from .watch import FitWatch, watched

        fit_watch = FitWatch(watched(avatar))
    else:
        folder = open_avatar_folder(avatar, "trained")
    source = audio_file(Path(audio)) if audio else speak_text(text, voice) if text else None
    device = resolve_device(device_name)
    check_display()
    if fit_watch is not None:
        fit_watch.wait()  # the first checkpoint comes after preprocessing: the folder is complete by then
        folder = open_avatar_folder(avatar, "preprocessed")

    from .sound import Playback
    from .window import Window
    from .worker import RenderWorker

    controls = Controls()
    scene = Scene(folder, device, size, fit_watch)
    feed = capture = None
    if mic:
        from .live import LiveFeed
        from .sound import Capture

        scene.set_live(controls)
        feed = LiveFeed(scene, lookahead)
        capture = Capture(feed.put, sound=sound)
        clock = feed.clock
        print(f"source: microphone ({capture.backend}{': no microphone, it hears silence' if capture.silent else ''}; "
              f"look-ahead {lookahead:.2f} s)", flush=True)
    else:
        if source is not None:
            track = scene.set_speech(source, controls)
        else:
            track = scene.set_video() if watch else scene.set_idle(controls)
        what = (f"{audio}" if audio else "typed text" if text else "the video's own motion" if watch
                else "none (idle: blinks and small head motion)")
        print(f"source: {what}" + (f" ({track.frames / scene.fps:.1f} s of speech)" if source is not None else ""), flush=True)
        clock = Playback(sound=sound)
        clock.load(track.source.wave)
        clock.loop = source is None  # idle: blink and breathe until closed; a watched video loops
    if watch:
        print(f"model: {scene.model_label} (watching {folder.root} for newer checkpoints)", flush=True)
    worker = RenderWorker(scene)
    try:
        window = Window(worker, clock, f"avatar view: {folder.root.name}", controls, voice, fit_watch)
        clock.play()
        window.run(until=after if screenshot else None, screenshot=Path(screenshot) if screenshot else None)
    finally:
        worker.close()
        for part in (capture, feed, clock):
            if part is not None:
                part.close()
    if screenshot:
        print(f"screenshot: {screenshot}")
    return 0
