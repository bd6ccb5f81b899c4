"""The trained avatar on disk: `model/avatar.safetensors` (the model's tensors and the expression basis)
and `model/config.json` (the resolved config with its schema version, the model kind, what its
constructor needs, and the training summary). Loading dispatches on the kind; nothing is pickled.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from avatar.config import AvatarConfig, load_saved_config, save_config
from avatar.errors import AvatarError
from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_path
from avatar.model.interface import AvatarModel
from avatar.model.plate import learned_plate
from avatar.model.registry import model_class
from avatar.motion.code import ExpressionBasis

WEIGHTS = "avatar.safetensors"
CONFIG = "config.json"
FORMAT_VERSION = 3  # 3: the torso field is linear in the head pose and the torso signal


@dataclass
class TrainedAvatar:
    model: AvatarModel
    basis: ExpressionBasis
    config: AvatarConfig
    info: dict  # resolution, steps, sizes, training seconds
    plate_residual: torch.Tensor | None = None  # [h, w, 3] learned correction of the background plate

    def plate(self, static: torch.Tensor) -> torch.Tensor:
        """The background to render over: the preprocessed plate `static` [H, W, 3] (any size) with the
        correction learned in training."""
        return learned_plate(static, self.plate_residual)


def save_trained(folder: AvatarFolder, model: AvatarModel, basis: ExpressionBasis, config: AvatarConfig,
                 recipe: str | None, info: dict, plate_residual: torch.Tensor | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.tensors().items()}
    tensors.update({f"basis/{k}": torch.from_numpy(v).contiguous() for k, v in basis.arrays().items()})
    if plate_residual is not None:
        tensors["plate/residual"] = plate_residual.detach().contiguous().cpu()
    folder.model.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder.model / WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    save_config(config, folder.model / CONFIG, recipe, format_version=FORMAT_VERSION, kind=model.kind,
                meta=model.meta(), info=info)


def has_trained(folder: AvatarFolder) -> bool:
    return (folder.model / WEIGHTS).is_file() and (folder.model / CONFIG).is_file()


def read_trained_config(folder: AvatarFolder) -> tuple[AvatarConfig, dict]:
    """(config, saved payload) of the trained avatar, checked: present, this version's, a known kind."""
    if not has_trained(folder):
        raise AvatarError(f"{folder.root} has no trained avatar yet; run `avatar fit` (or `avatar train`) first")
    remedy = "train it again with `avatar train --force`"
    config, payload = load_saved_config(folder.model / CONFIG, remedy)
    if payload.get("format_version") != FORMAT_VERSION:
        raise AvatarError(f"{folder.model} was written by another version of avatar (model format "
                          f"{payload.get('format_version')}, this one reads {FORMAT_VERSION}); {remedy}")
    model_class(payload.get("kind"), f"{folder.model / CONFIG}: kind")
    return config, payload


def load_trained(folder: AvatarFolder, device: torch.device) -> TrainedAvatar:
    """The trained avatar of `folder`, on `device`, ready to render (eval mode)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config, payload = read_trained_config(folder)
    try:
        tensors = load_file(str(folder.model / WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise AvatarError(f"the trained avatar in {folder.model} is damaged ({exc}); train it again") from None
    cls = model_class(payload["kind"])
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model = cls.from_tensors(state, payload["meta"], config.model, device)
    except (KeyError, RuntimeError) as exc:
        raise AvatarError(f"the trained avatar in {folder.model} does not match its config ({str(exc).splitlines()[0]}); "
                          "train it again") from None
    basis = ExpressionBasis.from_arrays({k[len("basis/"):]: v.numpy() for k, v in tensors.items() if k.startswith("basis/")})
    residual = tensors.get("plate/residual")
    return TrainedAvatar(model.eval(), basis, config, payload["info"], None if residual is None else residual.to(device))
