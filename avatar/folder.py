"""The avatar folder: where everything about one person lives (layout in datasets/avatar_folder.md)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AvatarFolder:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def manifest(self) -> Path:
        return self.data / "manifest.json"

    @property
    def frames(self) -> Path:
        return self.data / "frames"

    @property
    def masks(self) -> Path:
        return self.data / "masks"

    @property
    def audio(self) -> Path:
        return self.data / "audio.wav"

    @property
    def tracking(self) -> Path:
        return self.data / "tracking.npz"

    @property
    def landmarks(self) -> Path:
        return self.data / "landmarks.npz"

    @property
    def mattes(self) -> Path:
        return self.data / "mattes"

    @property
    def background(self) -> Path:
        return self.data / "background.png"

    @property
    def background_seen(self) -> Path:
        """255 where the plate shows pixels actually seen, 0 where it is inpainted."""
        return self.data / "background_seen.png"

    @property
    def features(self) -> Path:
        return self.data / "features.npz"

    @property
    def quality(self) -> Path:
        return self.data / "quality.json"

    @property
    def preview(self) -> Path:
        return self.data / "preview.mp4"

    @property
    def stage_records(self) -> Path:
        return self.data / "stages"

    @property
    def data_config(self) -> Path:
        """The resolved config that produced data/."""
        return self.data / "config.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    def frame_path(self, index: int) -> Path:
        return self.frames / f"{index:06d}.jpg"

    def mask_path(self, index: int) -> Path:
        return self.masks / f"{index:06d}.png"

    def matte_path(self, index: int) -> Path:
        return self.mattes / f"{index:06d}.png"
