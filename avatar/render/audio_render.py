"""`avatar render AVATAR --audio speech.wav --out clip.mp4`: the avatar speaking any audio.

Audio -> per-frame features -> the person's driver (prior, adapter, blinks, head pose) -> motion codes
-> frames. The video has exactly round(audio seconds x fps) frames and carries the input audio.
Backgrounds: the plate, a colour, an image, or transparent (RGBA PNG sequence, or VP9 WebM with alpha).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from avatar.errors import AvatarError
from avatar.folder import AvatarFolder

if TYPE_CHECKING:
    from avatar.data.avatar_data import AvatarData
    from avatar.model.store import TrainedAvatar
    from avatar.motion.driver import Driver

SILENCE_DBFS = -50.0
log = logging.getLogger("avatar.render")


def parse_background(text: str, plate: torch.Tensor, size: int) -> tuple[torch.Tensor | None, bool]:
    """(background [size, size, 3] on the plate's device, or None for transparent; whether the output needs alpha)."""
    import cv2

    if text == "transparent":
        return None, True
    if text == "plate":
        image = plate
    elif text.startswith("#") and len(text) == 7:
        try:
            rgb = [int(text[i: i + 2], 16) / 255 for i in (1, 3, 5)]
        except ValueError:
            raise AvatarError(f"--background {text!r} is not a #rrggbb colour") from None
        return torch.tensor(rgb, device=plate.device).expand(size, size, 3).contiguous(), False
    else:
        bgr = cv2.imread(text, cv2.IMREAD_COLOR)
        if bgr is None:
            raise AvatarError(f"--background {text!r} is not plate, transparent, a #rrggbb colour or a readable image")
        image = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).to(plate.device).float() / 255
    from avatar.model.plate import resize_image

    return resize_image(image, size, size).contiguous(), False


def load_driver(folder: AvatarFolder, trained):
    """The person's driver, fitted now (and kept) if the avatar was trained without one."""
    from avatar.data.avatar_data import AvatarData
    from avatar.motion.driver import Driver, fit_driver

    try:
        return Driver.load(folder)
    except AvatarError:
        data = AvatarData(folder, 64, basis=trained.basis, device=torch.device("cpu"))
        driver = fit_driver(folder, data.motion.numpy(), data.rest_pose.numpy())
        driver.save(folder)
        return driver


@dataclasses.dataclass
class LoadedAvatar:
    """What rendering speech needs from an avatar folder, loaded once: a batch worker keeps it for many jobs."""

    trained: TrainedAvatar
    data: AvatarData  # made with no frame resolution: camera, poses, plate, no images
    driver: Driver


def load_avatar(folder: AvatarFolder, device: torch.device) -> LoadedAvatar:
    from avatar.data.avatar_data import AvatarData
    from avatar.model.store import load_trained

    trained = load_trained(folder, device)
    return LoadedAvatar(trained, AvatarData(folder, 0, basis=trained.basis, device=device), load_driver(folder, trained))


def speech_features(folder: AvatarFolder, wave: np.ndarray, count: int):
    """Per-frame features of 16 kHz speech for the avatar of `folder`: `count` rows at its frame rate, computed
    with the audio settings its data was preprocessed with (what its driver was fitted on)."""
    import json

    from avatar.audio.features import extract_features
    from avatar.folder import preprocessed_config

    fps = json.loads(folder.manifest.read_text())["fps"]
    return extract_features(wave, count, fps, preprocessed_config(folder).audio)


def is_silent(features) -> bool:
    return float(np.max(features.energy)) < SILENCE_DBFS


def drive(driver, features, fps: float, pose: str, mouth_scale: float = 1.0, seed: int = 0, pauses: str = "closed",
          silent: bool = False):
    """The `DrivenMotion` of speech `features` (from `speech_features`); `silent` audio keeps the mouth shut."""
    from avatar.audio.phonemes import token_names
    from avatar.motion.visemes import SILENCE

    driven = driver.motion(features.ppg, token_names(), features.energy, features.pitch, fps, pose, mouth_scale, seed, pauses)
    if silent:
        rest = np.tile(np.asarray(SILENCE, np.float32), (len(driven.codes), 1))
        driven.codes = driver.mapping.codes(np.concatenate([rest, driven.blink[:, None]], 1))
        driven.mouth = rest
    return driven


def render_audio(folder: AvatarFolder, audio_path: Path, out: Path, device: torch.device, pose: str = "generated",
                 mouth_scale: float = 1.0, background: str = "plate", size: int | None = None,
                 motion_out: Path | None = None, allow_silence: bool = False, seed: int = 0, pauses: str = "closed",
                 loaded: LoadedAvatar | None = None) -> dict:
    """Render `audio_path` spoken by the avatar of `folder` (`loaded`: the avatar already loaded from it)."""
    from avatar.audio import SAMPLE_RATE
    from avatar.audio.io import load_audio, load_audio_native
    from avatar.motion.nonverbal import POSE_MODES
    from avatar.progress import progress
    from avatar.render.frames import FrameRenderer
    from avatar.video_writer import VideoWriter

    if pose not in POSE_MODES:
        raise AvatarError(f"--pose {pose!r}: choose one of {', '.join(POSE_MODES)}")
    if mouth_scale < 0:
        raise AvatarError("--mouth-scale must not be negative")
    out = Path(out)
    png_sequence = out.suffix.lower() == ".png" or str(out).endswith("/") or (out.exists() and out.is_dir())
    import json

    side = int(size or json.loads(folder.manifest.read_text())["width"])
    if side < 16 or side % 2:
        raise AvatarError("--size must be an even number of pixels, at least 16")
    wave = load_audio(Path(audio_path), SAMPLE_RATE)
    if len(wave) < SAMPLE_RATE // 10:
        raise AvatarError(f"{audio_path} is shorter than 0.1 s; give a speech recording")
    loaded = loaded or load_avatar(folder, device)
    trained, data = loaded.trained, loaded.data
    fps = data.fps
    count = int(round(len(wave) / SAMPLE_RATE * fps))
    features = speech_features(folder, wave, count)
    silent = is_silent(features)
    if silent and not allow_silence:
        raise AvatarError(f"{audio_path} is silent (peak level {np.max(features.energy):.0f} dBFS); "
                          "add --allow-silence to render a closed-mouth video anyway")
    if silent:
        log.warning("%s is silent: the mouth stays closed", audio_path)
        print(f"avatar: warning: {audio_path} is silent; rendering a closed mouth", flush=True)

    driven = drive(loaded.driver, features, fps, pose, mouth_scale, seed, pauses, silent)

    plate, alpha = parse_background(background, trained.plate(data.background), side)
    if alpha and not (png_sequence or out.suffix.lower() == ".webm"):
        raise AvatarError("a transparent background needs --out ending in .webm (VP9 with alpha) or .png (a PNG sequence)")
    renderer = FrameRenderer(trained.model, data.camera.resized(side, side), plate)
    codes, poses, torsos = torch.from_numpy(driven.codes), torch.from_numpy(driven.poses), torch.from_numpy(driven.torso)

    if motion_out is not None:
        from avatar.io_utils import atomic_save_npz

        atomic_save_npz(Path(motion_out), motion=driven.codes, head_pose=driven.poses, mouth=driven.mouth,
                        blink=driven.blink, fps=np.array(fps), audio_seconds=np.array(len(wave) / SAMPLE_RATE))
    native, rate = load_audio_native(Path(audio_path))
    frames = progress(range(count), total=count, desc="render")
    if png_sequence:
        _write_png_sequence(out, frames, renderer, codes, poses, torsos, alpha, native, rate)
    else:
        with VideoWriter(out, fps, side, side, audio=native, sample_rate=rate, alpha=alpha) as writer:
            for i in frames:
                writer.write(_frame(renderer, codes[i], poses[i], torsos[i], alpha))
    return {"frames": count, "audio_seconds": round(len(wave) / SAMPLE_RATE, 3), "pose": pose, "segments": driven.segments}


def _frame(renderer, code, pose, torso, alpha: bool) -> np.ndarray:
    from avatar.render.frames import to_uint8

    if not alpha:
        return to_uint8(renderer.render(code, pose, torso=torso))
    image, coverage = renderer.render_with_alpha(code, pose, torso=torso)
    return np.concatenate([to_uint8(image), to_uint8(coverage[..., None])], -1)


def _write_png_sequence(out: Path, frames, renderer, codes, poses, torsos, alpha: bool, audio: np.ndarray, rate: int) -> None:
    import cv2

    from avatar.audio.io import write_wav
    from avatar.io_utils import atomic_dir

    folder = out.with_suffix("") if out.suffix.lower() == ".png" else out
    with atomic_dir(folder) as tmp:
        for i in frames:
            image = _frame(renderer, codes[i], poses[i], torsos[i], alpha)
            conversion = cv2.COLOR_RGBA2BGRA if alpha else cv2.COLOR_RGB2BGR
            cv2.imwrite(str(tmp / f"{i:06d}.png"), cv2.cvtColor(image, conversion))
        write_wav(tmp / "audio.wav", audio, rate)
