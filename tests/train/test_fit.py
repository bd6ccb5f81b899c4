"""Training on the built-in sample: the loss falls, checkpoints round-trip, an interrupted run resumes to the
same parameters as an uninterrupted one."""
import json

import numpy as np
import pytest
import torch
from tiny import tiny_config

from avatar.data.avatar_data import AvatarData
from avatar.errors import AvatarError
from avatar.model.gaussian_avatar import GaussianAvatar
from avatar.train.fit import AvatarFit, model_from_checkpoint
from avatar.train.run import train_avatar

CPU = torch.device("cpu")


def _fit(folder, cfg, seed=0) -> AvatarFit:
    data = AvatarData(folder, cfg.train.resolution, device=CPU)
    return AvatarFit(data, GaussianAvatar.build(data, cfg.model, seed, CPU), cfg.train, cfg.model)


def test_loss_falls_and_psnr_rises(avatar_copy):
    cfg = tiny_config(240)
    task = _fit(avatar_copy, cfg)
    history = [task.train_step(step) for step in range(cfg.train.iterations)]
    first = np.mean([h["loss"] for h in history[:20]])
    last = np.mean([h["loss"] for h in history[-20:]])
    assert last < 0.7 * first
    assert np.mean([h["psnr"] for h in history[-20:]]) > np.mean([h["psnr"] for h in history[:20]]) + 3
    # When densification ends (step 180 of 240), the Gaussians no training view sees are removed.
    end = int(cfg.train.densify_until * cfg.train.iterations) - 1
    assert history[end]["size"] < 0.9 * history[end - 1]["size"]
    assert history[-1]["size"] == history[end]["size"]


def test_contributions_add_up_to_the_coverage(trained_sample):
    """Every pixel's blending weights sum to its alpha, so the Gaussians' contributions sum to the coverage;
    a Gaussian behind the camera contributes nothing."""
    from avatar.model.store import load_trained

    trained = load_trained(trained_sample, CPU)
    data = AvatarData(trained_sample, 0, basis=trained.basis, device=CPU)
    model, i = trained.model, int(data.train_ids[0])
    weights = model.contributions(data.motion[i], data.head_pose[i], data.camera, data.torso[i])
    with torch.no_grad():
        out = model.render(data.motion[i], data.head_pose[i], data.camera, torch.zeros(3), torso=data.torso[i])
    assert weights.shape == (sum(model.sizes().values()),) and bool((weights >= 0).all())
    assert torch.isclose(weights.sum(), out.alpha.sum(), rtol=1e-3)
    with torch.no_grad():
        model.torso.means[0] = torch.tensor([0.0, 0.0, -50.0])  # behind the camera (camera space)
    assert float(model.contributions(data.motion[i], data.head_pose[i], data.camera, data.torso[i])[len(model.head)]) == 0.0


def test_checkpoint_round_trip(avatar_copy, tmp_path):
    from avatar.train.checkpoint import load_checkpoint, save_checkpoint

    cfg = tiny_config(60)
    task = _fit(avatar_copy, cfg)
    for step in range(60):  # past a densification pass, so the sets changed size
        task.train_step(step)
    save_checkpoint(tmp_path / "ck", *task.state())
    tensors, values = load_checkpoint(tmp_path / "ck")
    assert values["kind"] == "gaussian"
    model = model_from_checkpoint(GaussianAvatar, tensors, task.data, cfg.model, values["meta"])
    other = AvatarFit(task.data, model, cfg.train, cfg.model)
    other.load_state(tensors, values)
    for key, value in task.model.state_dict().items():
        assert torch.equal(value, other.model.state_dict()[key]), key
    # Same state, same next step: the optimiser moments and the random generator came back too.
    a, b = task.train_step(60), other.train_step(60)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def _interrupt_at(monkeypatch, call: int) -> None:
    original = AvatarFit.train_step
    calls = {"n": 0}

    def interrupted(self, step):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(AvatarFit, "train_step", interrupted)


def _trained_tensors(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder.model / "avatar.safetensors"))


def test_a_resumed_run_is_the_same_run(avatar_copy, tmp_path, monkeypatch):
    """2N steps straight, and N steps + Ctrl-C + resume for N more, end with the same parameters."""
    import shutil

    from avatar.folder import AvatarFolder
    from avatar.train import trainer as trainer_module

    cfg = tiny_config(120)  # crosses densification passes and every stage, the pose-refining one included
    straight = AvatarFolder(tmp_path / "straight")
    shutil.copytree(avatar_copy.root, straight.root)
    train_avatar(straight, cfg, "preview")

    _interrupt_at(monkeypatch, 61)
    with pytest.raises(trainer_module.TrainingInterrupted, match="--resume"):
        train_avatar(avatar_copy, cfg, "preview")
    state = json.loads((avatar_copy.model / "checkpoint" / "state.json").read_text())
    assert state["step"] == 60
    monkeypatch.undo()
    with pytest.raises(AvatarError, match="--resume"):
        train_avatar(avatar_copy, cfg, "preview")
    info = train_avatar(avatar_copy, tiny_config(999), "preview", resume=True)  # the run's own config wins
    assert info["steps"] == 120 and sum(info["steps_per_stage"].values()) == 120

    a, b = _trained_tensors(straight), _trained_tensors(avatar_copy)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_no_recipe_means_the_default_recipe(avatar_copy):
    """`avatar fit video` trains exactly what recipes/gaussian.yaml (the dataclass defaults) describes."""
    from helpers import run_cli

    from avatar.config import config_from_dict, load_config

    result = run_cli("train", avatar_copy.root, "--train.iterations", "2", "--model.head_gaussians", "800",
                     "--model.torso_gaussians", "200", "--train.resolution", "64", "--train.adapter_steps", "5")
    assert result.returncode == 0, result.stderr
    saved = json.loads((avatar_copy.model / "run_config.json").read_text())
    expected = load_config("gaussian", {"train.iterations": "2", "model.head_gaussians": "800",
                                        "model.torso_gaussians": "200", "train.resolution": "64",
                                        "train.adapter_steps": "5"})
    assert saved["recipe"] == "gaussian"
    assert config_from_dict(saved["config"], "run_config.json") == expected
    assert load_config(None) == load_config("gaussian")
    assert load_config(None).train.iterations == 10000


def test_every_recipe_trains_a_few_steps(avatar_copy):
    from avatar.config import available_recipes, load_config

    for name in available_recipes():
        cfg = load_config(name)
        if cfg.model.kind != "gaussian":
            continue  # the NeRF recipes have their own few-step tests (tests/model/test_nerf.py)
        cfg.model.head_gaussians, cfg.model.torso_gaussians = 1500, 500
        cfg.train.resolution, cfg.train.iterations = 96, 100
        task = _fit(avatar_copy, cfg)
        for step in [0, *task.stage_ends[:-1]]:  # one step in each stage
            assert np.isfinite(task.train_step(int(step))["loss"]), name


def test_stages_must_match_the_model_kind(avatar_copy):
    cfg = tiny_config(10)
    cfg.train.stages = (0.5, 0.5)
    with pytest.raises(AvatarError, match="4 non-negative fractions for a gaussian avatar"):
        _fit(avatar_copy, cfg)


def test_patches_centre_on_the_lips_and_eyes_by_their_shares(avatar_copy):
    cfg = tiny_config(10)
    cfg.train.patch = 24
    task = _fit(avatar_copy, cfg)
    batch = task.data.frame(int(task.data.train_ids[0]))

    def centres(mouth: float, eyes: float) -> list[tuple[float, float]]:
        task.cfg.patch_mouth, task.cfg.patch_eyes = mouth, eyes
        return [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in (task.pick_window(batch) for _ in range(40))]

    def near(point, box) -> bool:  # within the window's jitter (a quarter of its side) of the box's centre
        return max(abs(point[0] - (box[0] + box[2]) / 2), abs(point[1] - (box[1] + box[3]) / 2)) <= 24 / 4 + 1

    assert all(near(c, batch.mouth_box) for c in centres(1.0, 0.0))
    assert all(any(near(c, box) for box in batch.eye_boxes) for c in centres(0.0, 1.0))
    assert not all(near(c, batch.mouth_box) for c in centres(0.0, 0.0))
    for mouth, eyes in ((-0.1, 0.2), (0.7, 0.5)):
        cfg.train.patch_mouth, cfg.train.patch_eyes = mouth, eyes
        with pytest.raises(AvatarError, match="shares of the training patches"):
            _fit(avatar_copy, cfg)
