"""`avatar train` and `avatar fit`: train an avatar on a preprocessed folder (fit preprocesses first).

A run keeps its resolved config in `model/run_config.json` and its checkpoint in `model/checkpoint/`;
`--resume` continues from there with that config, `--force` starts over. The trained avatar goes to
`model/avatar.safetensors` + `model/config.json`.
"""
from __future__ import annotations

import copy
import logging
import shutil
import time
from pathlib import Path
from typing import Sequence

from avatar.config import PREPROCESS_SECTIONS, AvatarConfig, load_saved_config, save_config
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.folder_lock import folder_lock

log = logging.getLogger("avatar.train")


def run_config_path(folder: AvatarFolder) -> Path:
    return folder.model / "run_config.json"


def checkpoint_dir(folder: AvatarFolder) -> Path:
    return folder.model / "checkpoint"


def with_preprocessing_of(folder: AvatarFolder, config: AvatarConfig) -> AvatarConfig:
    """`config` with the preprocessing settings `folder`'s data was made with (the run records the truth)."""
    from avatar.folder import preprocessed_config

    made_with = preprocessed_config(folder)
    config = copy.deepcopy(config)
    for section in PREPROCESS_SECTIONS:
        setattr(config, section, getattr(made_with, section))
    return config


def fit_video(video: Path, root: Path, config: AvatarConfig, recipe: str | None, resume: bool = False,
              force: bool = False) -> tuple[AvatarFolder, dict]:
    """`avatar fit`: preprocess `video` into the avatar folder `root` (cached stages) and train its avatar."""
    from avatar.preprocess import run_preprocess

    folder = AvatarFolder(Path(root))
    with folder_lock(folder.root, f"avatar fit {video}"):
        if not resume:
            run_preprocess(Path(video), folder.root, config, recipe=recipe, force=force)
        return folder, train_avatar(folder, config, recipe, resume=resume, force=force)


def train_avatar(folder: AvatarFolder, config: AvatarConfig, recipe: str | None = None, resume: bool = False,
                 force: bool = False, callbacks: Sequence = ()) -> dict:
    """Train (or continue training) the avatar in `folder`; returns the training summary. `callbacks` are
    added to the run's own (progress, tensorboard, checkpoints)."""
    with folder_lock(folder.root, "avatar train"):
        return _train(folder, config, recipe, resume, force, callbacks)


def _train(folder: AvatarFolder, config: AvatarConfig, recipe: str | None, resume: bool, force: bool,
           callbacks: Sequence) -> dict:
    import torch

    from avatar.data.avatar_data import AvatarData
    from avatar.device import resolve_device
    from avatar.model.registry import model_class
    from avatar.model.store import save_trained
    from avatar.train.callbacks import Checkpoints, ProgressBar, Tensorboard
    from avatar.train.checkpoint import load_checkpoint
    from avatar.train.fit import AvatarFit, model_from_checkpoint
    from avatar.train.trainer import Trainer

    checkpoint, run_config = checkpoint_dir(folder), run_config_path(folder)
    saved = None
    if resume:
        if not run_config.is_file():
            raise AvatarError(f"there is no training run to resume in {folder.root}; run without --resume")
        config, payload = load_saved_config(run_config, "start over with --force")
        recipe = payload.get("recipe")
        if checkpoint.exists():
            saved = load_checkpoint(checkpoint)  # read once: the model and the run's state come from it
    else:
        if checkpoint.exists() or (folder.model / "avatar.safetensors").exists():
            if not force:
                raise AvatarError(f"{folder.root} already has a trained or training avatar; add --resume to continue or --force to start over")
            shutil.rmtree(folder.model)
        config = with_preprocessing_of(folder, config)
    cls = model_class(config.model.kind)
    device = resolve_device(config.compute.device)
    torch.manual_seed(config.train.seed)
    basis = None
    if saved is not None:
        from avatar.motion.code import ExpressionBasis

        basis = ExpressionBasis.from_arrays({k[len("basis/"):]: v.numpy() for k, v in saved[0].items() if k.startswith("basis/")})
    data = AvatarData(folder, config.train.resolution, basis=basis, expression_components=config.model.expression_components,
                      device=device)
    folder.model.mkdir(parents=True, exist_ok=True)
    save_config(config, run_config, recipe)
    if saved is not None:
        model = model_from_checkpoint(cls, saved[0], data, config.model, saved[1]["meta"])
    else:
        model = cls.build(data, config.model, config.train.seed, device)
    task = AvatarFit(data, model, config.train, config.model)
    own = [ProgressBar(folder.logs), Tensorboard(folder.logs, config.train.log_every),
           Checkpoints(checkpoint, config.train.checkpoint_minutes)]
    trainer = Trainer(task, config.train.iterations, own + list(callbacks))
    if saved is not None:
        trainer.load_state(*saved)
    start = time.perf_counter()
    trainer.run()
    info = {
        "resolution": data.resolution, "steps": trainer.step, "device": str(device), "sizes": model.sizes(),
        "seconds_per_stage": trainer.seconds_per_stage, "steps_per_stage": trainer.steps_per_stage,
        "last_run_seconds": round(time.perf_counter() - start, 1),
    }
    save_trained(folder, model, data.basis, config, recipe, info, None if task.plate is None else task.plate.residual)
    from avatar.motion.driver import fit_driver

    driver = fit_driver(folder, data.motion.cpu().numpy(), data.rest_pose.cpu().numpy(), seed=config.train.seed,
                        steps=config.train.adapter_steps)
    driver.save(folder)
    info["driver"] = driver.report
    return info

