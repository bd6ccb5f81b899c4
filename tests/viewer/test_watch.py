"""`avatar view --watch`: the scene follows a fit's checkpoints, then the finished avatar."""
import shutil

import numpy as np
import pytest
import torch

from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.viewer.scene import Controls, Scene
from avatar.viewer.watch import FitWatch

SIZE = 96


def _brighter_checkpoint(folder: AvatarFolder) -> None:
    """What a later checkpoint brings: the same model with other colours (written as the fit writes them)."""
    from avatar.train.checkpoint import load_checkpoint, save_checkpoint
    from avatar.train.run import checkpoint_dir

    tensors, state = load_checkpoint(checkpoint_dir(folder))
    tensors["model.head.colors"] = tensors["model.head.colors"] + 2.0
    state["step"] = state["step"] + 1
    save_checkpoint(checkpoint_dir(folder), tensors, state)


def test_the_scene_follows_checkpoints_then_the_finished_avatar(fitting):
    folder, finished = fitting
    watch = FitWatch(folder)
    assert watch.changed()
    scene = Scene(folder, torch.device("cpu"), SIZE, watch)
    assert "checkpoint at step" in scene.model_label and scene.driver.adapter is None
    track = scene.set_video()
    assert track.frames == len(scene.data.motion) and not watch.changed()
    controls = Controls()
    before = scene.render(10.0, controls).image
    assert np.array_equal(scene.render(10.0, controls.edited(mouth_scale=0.0)).image, before)  # the video's own motion

    _brighter_checkpoint(folder)
    assert watch.changed()
    scene.use(watch.load(scene.device))
    after = scene.render(10.0, controls).image
    assert after.astype(int).sum() > before.astype(int).sum() + SIZE * SIZE  # the new colours are on screen

    for path in finished.iterdir():
        shutil.move(path, folder.model / path.name)
    assert watch.changed()
    scene.use(watch.load(scene.device))
    assert scene.model_label == "the trained avatar" and scene.driver.adapter is not None
    assert not watch.changed()


def test_a_damaged_checkpoint_is_an_error_to_retry_not_a_crash(fitting):
    from avatar.train.checkpoint import TENSORS
    from avatar.train.run import checkpoint_dir

    folder, _ = fitting
    (checkpoint_dir(folder) / TENSORS).write_bytes(b"not a safetensors file")
    watch = FitWatch(folder)
    with pytest.raises(AvatarError, match="damaged"):
        watch.load(torch.device("cpu"))
    assert watch.changed()  # still new: the window tries again at its next look


def test_waiting_for_a_fit_that_never_writes_says_so(tmp_path):
    with pytest.raises(AvatarError, match="no checkpoint appeared"):
        FitWatch(AvatarFolder(tmp_path)).wait(poll_s=0.01, timeout_s=0.05)
