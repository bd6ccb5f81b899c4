"""`avatar train` and `avatar fit`: train an avatar on a preprocessed folder (fit preprocesses first).

A run keeps its resolved config in `model/run_config.json` and its checkpoint in `model/checkpoint/`;
`--resume` continues from there with that config, `--force` starts over. The trained avatar goes to
`model/avatar.safetensors` + `model/config.json`.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from avatar.config import SCHEMA_VERSION, AvatarConfig, config_from_dict, config_to_dict
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_write_json

log = logging.getLogger("avatar.train")


def _run_config_path(folder: AvatarFolder) -> Path:
    return folder.model / "run_config.json"


def _checkpoint_dir(folder: AvatarFolder) -> Path:
    return folder.model / "checkpoint"


def train_avatar(folder: AvatarFolder, config: AvatarConfig, recipe: str | None = None, resume: bool = False,
                 force: bool = False) -> dict:
    """Train (or continue training) the avatar in `folder`; returns the training summary."""
    import torch

    from avatar.model.build import avatar_from_tensors, build_avatar, head_box
    from avatar.model.store import save_trained
    from avatar.train.checkpoint import load_checkpoint
    from avatar.train.data import AvatarData
    from avatar.train.fit import AvatarFit
    from avatar.train.trainer import Trainer

    checkpoint = _checkpoint_dir(folder)
    run_config = _run_config_path(folder)
    if resume:
        if not run_config.is_file():
            raise AvatarError(f"there is no training run to resume in {folder.root}; run without --resume")
        saved = json.loads(run_config.read_text())
        config, recipe = config_from_dict(saved["config"], str(run_config)), saved.get("recipe")
    elif checkpoint.exists() or (folder.model / "avatar.safetensors").exists():
        if not force:
            raise AvatarError(f"{folder.root} already has a trained or training avatar; add --resume to continue or --force to start over")
        shutil.rmtree(folder.model)
    torch.manual_seed(config.train.seed)
    data = AvatarData(folder, config.train.resolution, expression_components=config.model.expression_components)
    atomic_write_json(run_config, {"schema_version": SCHEMA_VERSION, "recipe": recipe, "config": config_to_dict(config)})
    if resume and checkpoint.exists():
        tensors, _ = load_checkpoint(checkpoint)
        box = head_box(data.template.numpy())
        avatar = avatar_from_tensors(tensors, config.model, data.motion_dim, box)
    else:
        avatar = build_avatar(data, config.model, config.train.seed)
    task = AvatarFit(data, avatar, config.train, config.model)
    trainer = Trainer(task, config.train.iterations, checkpoint, folder.logs, config.train.checkpoint_minutes,
                      config.train.log_every)
    if resume and checkpoint.exists():
        trainer.resume()
    start = time.perf_counter()
    trainer.run()
    box_min, box_max = avatar.expression.box_min, avatar.expression.box_max
    info = {
        "resolution": data.resolution, "steps": trainer.step, "motion_dim": data.motion_dim,
        "box_min": list(box_min), "box_max": list(box_max),
        "gaussians": {"head": len(avatar.head), "torso": len(avatar.torso)},
        "seconds_per_stage": trainer.seconds_per_stage, "steps_per_stage": trainer.steps_per_stage,
        "last_run_seconds": round(time.perf_counter() - start, 1),
    }
    save_trained(folder, task.avatar, data.basis, config, recipe, info)
    from avatar.motion.driver import fit_driver

    driver = fit_driver(folder, data.motion.numpy(), task.avatar.rest_pose.numpy(), seed=config.train.seed,
                        steps=config.train.adapter_steps)
    driver.save(folder)
    info["driver"] = driver.report
    return info
