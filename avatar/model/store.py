"""The trained avatar on disk: `model/avatar.safetensors` (weights and expression basis) and
`model/config.json` (the resolved config with its schema version, plus what a loader needs to know)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from avatar.config import SCHEMA_VERSION, AvatarConfig, config_from_dict, config_to_dict
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_path, atomic_write_json
from avatar.model.avatar import GaussianAvatar
from avatar.model.build import avatar_from_tensors
from avatar.motion.code import ExpressionBasis

WEIGHTS = "avatar.safetensors"
CONFIG = "config.json"
FORMAT_VERSION = 1


@dataclass
class TrainedAvatar:
    avatar: GaussianAvatar
    basis: ExpressionBasis
    config: AvatarConfig
    info: dict  # resolution, steps, motion_dim, head box, training seconds


def save_trained(folder: AvatarFolder, avatar: GaussianAvatar, basis: ExpressionBasis, config: AvatarConfig,
                 recipe: str | None, info: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in avatar.state_dict().items()}
    tensors.update({f"basis/{k}": torch.from_numpy(v).contiguous() for k, v in basis.arrays().items()})
    folder.model.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder.model / WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_json(folder.model / CONFIG, {
        "schema_version": SCHEMA_VERSION, "format_version": FORMAT_VERSION, "recipe": recipe,
        "config": config_to_dict(config), "info": info,
    })


def load_trained(folder: AvatarFolder) -> TrainedAvatar:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, config_path = folder.model / WEIGHTS, folder.model / CONFIG
    if not weights.is_file() or not config_path.is_file():
        raise AvatarError(f"{folder.root} has no trained avatar; run `avatar fit` (or `avatar train`) first")
    try:
        meta = json.loads(config_path.read_text())
        tensors = load_file(str(weights))
    except (OSError, json.JSONDecodeError, SafetensorError) as exc:
        raise AvatarError(f"the trained avatar in {folder.model} is damaged ({exc}); train it again") from None
    if meta.get("schema_version") != SCHEMA_VERSION or meta.get("format_version") != FORMAT_VERSION:
        raise AvatarError(f"{folder.model} was written by another version of avatar; train it again")
    config = config_from_dict(meta["config"], str(config_path))
    info = meta["info"]
    avatar = avatar_from_tensors(tensors, config.model, int(info["motion_dim"]), (tuple(info["box_min"]), tuple(info["box_max"])))
    basis = ExpressionBasis.from_arrays({k[len("basis/"):]: v.numpy() for k, v in tensors.items() if k.startswith("basis/")})
    return TrainedAvatar(avatar.eval(), basis, config, info)


def saved_config(path: Path) -> dict:
    return json.loads(Path(path).read_text())
