"""`avatar render --replay`: the avatar driven by the tracked motion of its own training video."""
from __future__ import annotations

from pathlib import Path

import torch

from avatar.errors import AvatarError
from avatar.folder import AvatarFolder


def parse_frames(text: str | None, count: int) -> range:
    """"A:B" (either side optional) -> frame range, clipped to the video."""
    if not text:
        return range(count)
    try:
        a, _, b = text.partition(":")
        start, end = int(a) if a else 0, int(b) if b else count
    except ValueError:
        raise AvatarError(f"--frames {text!r} is not A:B (frame numbers, e.g. 0:250)") from None
    start, end = max(0, start), min(count, end)
    if end <= start:
        raise AvatarError(f"--frames {text!r} selects no frames of the {count} there are")
    return range(start, end)


def parse_camera(text: str | None) -> tuple[float, float, float] | None:
    """"yaw,pitch,zoom" in degrees and a factor (e.g. 20,0,1.2)."""
    if not text:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2, 3):
        raise AvatarError(f"--camera {text!r} is not yaw[,pitch[,zoom]] (degrees, degrees, factor)")
    yaw, pitch, zoom = values + [0.0, 0.0, 1.0][len(values):]
    if zoom <= 0:
        raise AvatarError("--camera zoom must be positive")
    return yaw, pitch, zoom


def render_replay(folder: AvatarFolder, out: Path, device: torch.device, frames: str | None = None,
                  camera: str | None = None) -> int:
    from avatar.audio import SAMPLE_RATE
    from avatar.audio.io import load_audio
    from avatar.data.avatar_data import AvatarData
    from avatar.model.store import load_trained
    from avatar.progress import progress
    from avatar.render.frames import FrameRenderer, to_uint8
    from avatar.video_writer import VideoWriter

    trained = load_trained(folder, device)
    data = AvatarData(folder, 0, basis=trained.basis, device=device)
    selected = parse_frames(frames, data.count)
    orbit = parse_camera(camera)
    # With the camera moved, the flat background plate would not line up: use a neutral colour.
    background = trained.plate(data.background) if orbit is None else torch.full((3,), 0.5, device=device)
    renderer = FrameRenderer(trained.model, data.camera, background)
    size, fps = data.resolution, data.fps
    audio = load_audio(folder.audio, SAMPLE_RATE)[int(selected.start * SAMPLE_RATE / fps):]
    with VideoWriter(Path(out), fps, size, size, audio=audio, sample_rate=SAMPLE_RATE) as writer:
        for i in progress(selected, total=len(selected), desc="render"):
            view = None if orbit is None else data.camera.orbit(data.head_pose[i, :3, 3], *orbit)
            writer.write(to_uint8(renderer.render(data.motion[i], data.head_pose[i], view, data.torso[i])))
    return len(selected)
