"""Shared fixtures: the model files and the built-in sample (generated and preprocessed once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest


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


@pytest.fixture(scope="session")
def trained_sample(sample_avatar, tmp_path_factory):
    """The sample with a small avatar trained on it (shared: tests must not change it)."""
    import shutil

    from tiny import tiny_config

    from avatar.folder import AvatarFolder
    from avatar.train.run import train_avatar

    target = tmp_path_factory.mktemp("trained") / "avatar"
    shutil.copytree(sample_avatar.root, target, ignore=shutil.ignore_patterns("model", "eval", "logs"))
    folder = AvatarFolder(target)
    train_avatar(folder, tiny_config(160), "preview")
    return folder
