"""The one place a device is chosen: `auto | cpu | cuda`, resolved once per command and passed down.

Nothing in the library creates a tensor on an implicit device: every constructor names the device it
got from here (or from a tensor it was given).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from avatar.errors import AvatarError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def auto_choice() -> tuple[str, str]:
    """(device `auto` picks on this machine, why)."""
    import torch

    if torch.cuda.is_available():
        return "cuda", f"torch sees a CUDA GPU ({torch.cuda.get_device_name(0)})"
    if torch.version.cuda is None:
        return "cpu", f"this torch ({torch.__version__}) is a CPU build"
    return "cpu", f"this torch has CUDA {torch.version.cuda} but finds no usable GPU"


def resolve_device(name: str) -> "torch.device":
    """The torch device for a `--device` value."""
    import torch

    if name not in DEVICES:
        raise AvatarError(f"--device {name!r} is not one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device(auto_choice()[0])
    if name == "cuda" and not torch.cuda.is_available():
        raise AvatarError(f"--device cuda was asked for, but {auto_choice()[1]}; use --device cpu or install a CUDA build "
                          "of torch (see README, `make setup CUDA=1`)")
    return torch.device(name)
