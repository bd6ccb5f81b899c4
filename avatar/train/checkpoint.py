"""Checkpoints: every tensor in one safetensors file, everything else as JSON, replaced atomically.

A checkpoint holds the model, the optimiser's moments (by parameter-group name), the pose corrections
and the random generators' states, so a resumed run continues exactly where the saved one was. Nothing
is pickled: loading a checkpoint cannot run code.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from torch import Tensor

from avatar.errors import AvatarError

TENSORS = "tensors.safetensors"
STATE = "state.json"


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """The optimiser's state as "optim/<group name>/<parameter index in the group>/<key>" tensors."""
    out = {}
    for group in optimizer.param_groups:
        for index, param in enumerate(group["params"]):
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value):
                    out[f"optim/{group['name']}/{index}/{key}"] = value.detach().clone()
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor]) -> None:
    for group in optimizer.param_groups:
        for index, param in enumerate(group["params"]):
            prefix = f"optim/{group['name']}/{index}/"
            state = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
            if state:
                optimizer.state[param] = state


def save_checkpoint(folder: Path, tensors: dict[str, Tensor], state: dict) -> None:
    """Write `folder` (tensors + JSON state) so that it is either the old or the new checkpoint, never half."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / TENSORS))
    (tmp / STATE).write_text(json.dumps(state, indent=2))
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path) -> tuple[dict[str, Tensor], dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / TENSORS).is_file() or not (folder / STATE).is_file():
        old = folder.with_name(f".{folder.name}.old")
        if (old / TENSORS).is_file() and (old / STATE).is_file():
            folder = old  # a crash between the two renames of save_checkpoint
        else:
            raise AvatarError(f"no checkpoint in {folder}; train first (avatar fit)")
    try:
        tensors = load_file(str(folder / TENSORS))
        state = json.loads((folder / STATE).read_text())
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise AvatarError(f"the checkpoint in {folder} is damaged ({exc}); delete it or train again with --force") from None
    return tensors, state


def rng_tensors(generator: torch.Generator) -> dict[str, Tensor]:
    return {"rng/torch": torch.get_rng_state(), "rng/trainer": generator.get_state()}


def restore_rng(tensors: dict[str, Tensor], generator: torch.Generator) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    generator.set_state(tensors["rng/trainer"])
