import shutil

import pytest
from tiny import tiny_config

from avatar.folder import AvatarFolder


@pytest.fixture
def avatar_copy(sample_avatar, tmp_path) -> AvatarFolder:
    """A private copy of the preprocessed sample (training writes into its folder)."""
    target = tmp_path / "avatar"
    shutil.copytree(sample_avatar.root, target, ignore=shutil.ignore_patterns("model", "eval", "logs"))
    return AvatarFolder(target)


@pytest.fixture(scope="module")
def trained_sample(sample_avatar, tmp_path_factory) -> AvatarFolder:
    from avatar.train.run import train_avatar

    target = tmp_path_factory.mktemp("trained") / "avatar"
    shutil.copytree(sample_avatar.root, target, ignore=shutil.ignore_patterns("model", "eval", "logs"))
    folder = AvatarFolder(target)
    train_avatar(folder, tiny_config(160), "preview")
    return folder
