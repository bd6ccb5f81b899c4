"""Training on the built-in sample: the loss falls, checkpoints round-trip, an interrupted run resumes."""
import json

import numpy as np
import pytest
import torch
from tiny import tiny_config

from avatar.errors import AvatarError
from avatar.model.build import build_avatar
from avatar.train.data import AvatarData
from avatar.train.fit import AvatarFit
from avatar.train.run import train_avatar


def test_loss_falls_and_psnr_rises(avatar_copy):
    cfg = tiny_config(240)
    data = AvatarData(avatar_copy, cfg.train.resolution)
    task = AvatarFit(data, build_avatar(data, cfg.model), cfg.train, cfg.model)
    history = [task.train_step(step) for step in range(cfg.train.iterations)]
    first = np.mean([h["loss"] for h in history[:20]])
    last = np.mean([h["loss"] for h in history[-20:]])
    assert last < 0.7 * first
    assert np.mean([h["psnr"] for h in history[-20:]]) > np.mean([h["psnr"] for h in history[:20]]) + 3


def test_checkpoint_round_trip(avatar_copy, tmp_path):
    from avatar.train.checkpoint import load_checkpoint, save_checkpoint

    cfg = tiny_config(60)
    data = AvatarData(avatar_copy, cfg.train.resolution)
    task = AvatarFit(data, build_avatar(data, cfg.model), cfg.train, cfg.model)
    for step in range(60):  # past a densification pass, so the sets changed size
        task.train_step(step)
    tensors, state = task.state()
    save_checkpoint(tmp_path / "ck", tensors, state)
    other = AvatarFit(data, build_avatar(data, cfg.model, seed=5), cfg.train, cfg.model)
    other.load_state(*load_checkpoint(tmp_path / "ck"))
    for key, value in task.avatar.state_dict().items():
        assert torch.equal(value, other.avatar.state_dict()[key]), key
    # Same state, same next step: the optimiser moments and the random generator came back too.
    a, b = task.train_step(60), other.train_step(60)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_interrupted_run_resumes_to_the_same_step_count(avatar_copy, monkeypatch):
    from avatar.train import trainer as trainer_module

    cfg = tiny_config(80)
    calls = {"n": 0}
    original = AvatarFit.train_step

    def interrupt_at_30(self, step):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(AvatarFit, "train_step", interrupt_at_30)
    with pytest.raises(trainer_module.TrainingInterrupted, match="--resume"):
        train_avatar(avatar_copy, cfg, "preview")
    state = json.loads((avatar_copy.model / "checkpoint" / "state.json").read_text())
    assert state["step"] == 29
    monkeypatch.setattr(AvatarFit, "train_step", original)
    with pytest.raises(AvatarError, match="--resume"):
        train_avatar(avatar_copy, cfg, "preview")
    info = train_avatar(avatar_copy, tiny_config(999), "preview", resume=True)  # the run's own config wins
    assert info["steps"] == 80 and sum(info["steps_per_stage"].values()) == 80


def test_every_recipe_trains_a_few_steps(avatar_copy):
    from avatar.config import available_recipes, load_config

    for name in available_recipes():
        cfg = load_config(name)
        cfg.model.head_gaussians, cfg.model.torso_gaussians = 1500, 500
        cfg.train.resolution, cfg.train.iterations = 96, 100
        data = AvatarData(avatar_copy, cfg.train.resolution)
        task = AvatarFit(data, build_avatar(data, cfg.model), cfg.train, cfg.model)
        for step in [0, *task.stage_ends[:-1]]:  # one step in each stage
            assert np.isfinite(task.train_step(int(step))["loss"]), name
