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
    def torso(self) -> Path:
        return self.data / "torso.npz"

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


def open_avatar_folder(path: Path | str, need: str = "trained") -> AvatarFolder:
    """The avatar folder at `path`, checked for what a command needs: "preprocessed" (data/ is complete) or
    "trained" (also a trained model this version reads). Anything missing is a one-line `AvatarError`."""
    from avatar.errors import AvatarError

    root = Path(path)
    if not root.exists():
        raise AvatarError(f"{root} does not exist; give an avatar folder made by `avatar fit VIDEO --out {root}`")
    if not root.is_dir():
        raise AvatarError(f"{root} is a file, not an avatar folder; give the folder `avatar fit --out` made")
    folder = AvatarFolder(root)
    if not folder.manifest.is_file():
        raise AvatarError(f"{root} is not an avatar folder (no data/manifest.json); make one with `avatar fit VIDEO --out {root}`")
    missing = [p.name for p in (folder.tracking, folder.background, folder.features, folder.torso) if not p.exists()]
    if missing:
        raise AvatarError(f"{root} is not fully preprocessed ({', '.join(missing)} missing); run `avatar preprocess` on its video again")
    if need == "trained":
        from avatar.model.store import read_trained_config

        read_trained_config(folder)
    elif need != "preprocessed":
        raise ValueError(f"open_avatar_folder: need is 'preprocessed' or 'trained', not {need!r}")
    return folder


def preprocessed_config(folder: AvatarFolder):
    """The settings `data/` was made with (data/config.json), schema-checked: audio features for new speech
    must be computed with these, not the defaults."""
    from avatar.config import load_saved_config

    return load_saved_config(folder.data_config, "run `avatar preprocess` on its video again")[0]
