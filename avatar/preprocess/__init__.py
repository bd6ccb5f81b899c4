"""`avatar preprocess`: from a raw video to an avatar folder holding everything training needs.

Stages, in order (each cached and re-runnable alone, see stages.py):
  decode  video -> frames/*.jpg, audio.wav, manifest.json
  track   frames -> landmarks.npz (478 landmarks, 52 blendshapes per frame)
  matte   frames -> mattes/*.png (soft person mask)
  audio   audio.wav -> features.npz (phoneme posteriorgram, log-mel, energy, pitch per frame)
  segment mattes + landmarks -> masks/*.png (head / torso / mouth interior), background.png
  pose    landmarks -> tracking.npz (head template, focal length, smooth head pose per frame)
  torso   frames + landmarks -> torso.npz (how the shoulders and chest moved in each frame)
  report  everything -> quality.json, preview.mp4
"""
from __future__ import annotations

import importlib
import json
import logging
import shutil
from pathlib import Path
from typing import Callable

from avatar.config import AvatarConfig, save_config
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.folder_lock import folder_lock
from avatar.io_utils import ensure_writable_dir, sha256_file
from avatar.preprocess.stages import Stage, StageContext, run_stages


def _lazy(module: str, function: str) -> Callable[[StageContext], None]:
    """A stage function imported when the stage runs, so that no stage waits for another's imports
    (torch alone takes seconds)."""

    def run(ctx: StageContext) -> None:
        getattr(importlib.import_module(f"avatar.preprocess.{module}"), function)(ctx)

    return run


def preprocess_stages() -> list[Stage]:
    return [
        Stage("decode", _lazy("decode", "run_decode"), (), ("decode",), ("manifest.json", "frames", "audio.wav")),
        Stage("track", _lazy("track", "run_track"), ("decode",), ("track",), ("landmarks.npz",),
              version=2),  # 2: image-mode landmarks for the motion code, video-mode ones for the pose
        Stage("matte", _lazy("matte", "run_matte"), ("decode",), ("segment",), ("mattes",)),
        Stage("audio", _lazy("audio_stage", "run_audio"), ("decode",), ("audio",), ("features.npz",)),
        Stage("pose", _lazy("pose_stage", "run_pose"), ("track",), ("pose",), ("tracking.npz",)),
        Stage("segment", _lazy("segment", "run_segment"), ("track", "matte"), ("segment",),
              ("masks", "background.png", "background_seen.png"), version=2),  # 2: no dark outline in the plate's fill
        Stage("torso", _lazy("torso", "run_torso"), ("decode", "track"), (), ("torso.npz",)),
        Stage("report", _lazy("report", "run_report"), ("track", "pose", "segment", "audio"), ("report",), ("quality.json",),
              version=2),  # 2: max_faces_in_view counts the tracked frames' faces (the crop's sampling skips square videos)
    ]


def _logger(folder: AvatarFolder) -> logging.Logger:
    log = logging.getLogger(f"avatar.preprocess.{folder.root}")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not log.handlers:
        folder.logs.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder.logs / "preprocess.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        console = logging.StreamHandler()
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter("avatar: warning: %(message)s"))
        log.addHandler(console)
    return log


def check_source(folder: AvatarFolder, source_sha256: str, force: bool) -> None:
    """Refuse to mix two videos in one avatar folder unless told to start over."""
    if not folder.manifest.is_file():
        return
    try:
        previous = json.loads(folder.manifest.read_text()).get("source_sha256")
    except (OSError, json.JSONDecodeError):
        previous = None
    if previous and previous != source_sha256:
        if not force:
            raise AvatarError(
                f"{folder.root} holds an avatar of a different video; choose another --out folder or add --force to replace it"
            )
        shutil.rmtree(folder.data)


def run_preprocess(
    video: Path,
    out: Path,
    config: AvatarConfig,
    recipe: str | None = None,
    force: bool = False,
    only: list[str] | None = None,
    redo: list[str] | None = None,
) -> AvatarFolder:
    video = Path(video)
    folder = AvatarFolder(Path(out))
    if not video.is_file():
        raise AvatarError(f"{video} does not exist; check the path" if not video.exists() else f"{video} is not a file")
    ensure_writable_dir(folder.root)
    with folder_lock(folder.root, f"avatar preprocess {video}"):
        source_sha256 = sha256_file(video)
        check_source(folder, source_sha256, force)
        ensure_writable_dir(folder.data)
        save_config(config, folder.data_config, recipe)
        ctx = StageContext(folder=folder, config=config, source=video, source_sha256=source_sha256, log=_logger(folder))
        run_stages(preprocess_stages(), ctx, only=only, redo=redo, workers=config.preprocess.workers)
    return folder
