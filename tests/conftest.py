"""Shared fixtures: the built-in sample (generated once per session) and the real clips in ../shared."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A real recording from ../shared/data, or skip when this checkout has none (a user's clone)."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} is not available (real sample data lives outside the repository)")
    return path


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `avatar ARGS...` in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "avatar", *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def models():
    """The model files must be in place (`make test` fetches them first)."""
    from avatar.model_files import MODEL_FILES, status

    missing = [k for k in MODEL_FILES if status(k)[0] is None]
    if missing:
        pytest.fail(f"model files missing: {missing}; run `avatar models fetch` (make test does)")


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory, models) -> Path:
    """A 6 s built-in sample at 256x256, with its ground truth beside it."""
    from avatar.sample import make_sample

    path = tmp_path_factory.mktemp("sample") / "sample.mp4"
    make_sample(path, seconds=6.0, size=256)
    return path


@pytest.fixture(scope="session")
def sample_avatar(sample_video, tmp_path_factory):
    """The sample, preprocessed with the default config."""
    from avatar.config import AvatarConfig
    from avatar.preprocess import run_preprocess

    return run_preprocess(sample_video, tmp_path_factory.mktemp("avatar") / "sample", AvatarConfig())
