import shutil

import pytest

from avatar.folder import AvatarFolder


@pytest.fixture
def avatar_copy(sample_avatar, tmp_path) -> AvatarFolder:
    """A private copy of the preprocessed sample (training writes into its folder)."""
    target = tmp_path / "avatar"
    shutil.copytree(sample_avatar.root, target, ignore=shutil.ignore_patterns("model", "eval", "logs"))
    return AvatarFolder(target)
