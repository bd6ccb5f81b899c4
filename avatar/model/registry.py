"""The avatar kinds this version knows, by the name saved with each model (`model.kind`).

Classes are imported when first asked for, so naming a kind costs nothing until it is used.
"""
from __future__ import annotations

import importlib

from avatar.errors import AvatarError

KINDS = {
    "gaussian": "avatar.model.gaussian_avatar:GaussianAvatar",
    "nerf": "avatar.model.nerf_avatar:NerfAvatar",
}


def model_class(kind: str | None, source: str = "model.kind"):
    """The `AvatarModel` subclass of `kind`; a one-line error for an unknown or missing kind."""
    if not kind:
        raise AvatarError(f"{source} names no avatar kind; this version knows: {', '.join(KINDS)}")
    if kind not in KINDS:
        raise AvatarError(f"{source} is {kind!r}, an avatar kind this version does not know; it knows: {', '.join(KINDS)}")
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)
