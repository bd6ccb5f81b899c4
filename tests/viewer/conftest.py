"""Fixtures of the viewer tests."""
import shutil

import pytest

from avatar.folder import AvatarFolder


@pytest.fixture()
def fitting(trained_sample, tmp_path):
    """A copy of the trained sample as a fit leaves it mid-way: its checkpoint, no finished avatar yet."""
    root = tmp_path / "avatar"
    shutil.copytree(trained_sample.root, root)
    folder = AvatarFolder(root)
    finished = tmp_path / "finished"
    finished.mkdir()
    for name in ("avatar.safetensors", "config.json", "driver.safetensors", "driver.json"):
        shutil.move(folder.model / name, finished / name)
    return folder, finished
