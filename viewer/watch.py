"""`avatar view --watch`: the window follows a fit running in the same folder. Each checkpoint the fit writes
(every `train.checkpoint_minutes`, and at the end) replaces the model on screen, and the finished avatar
replaces the last checkpoint, so a person sees the avatar form while it trains.

A checkpoint is read as `avatar train --resume` reads it (safetensors, nothing pickled). The fit's audio
driver exists only when the fit ends; until then speech drives the avatar through the generic prior and the
person's map (no personal adapter), and the default source is the video's own motion, replayed.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from avatar.errors import AvatarError
from avatar.folder import AvatarFolder

CHECK_S = 2.0  # seconds between looks at the folder


@dataclass
class Snapshot:
    """A model state of the watched fit, ready to render."""

    model: object  # AvatarModel, eval mode
    basis: object  # ExpressionBasis
    plate_residual: torch.Tensor | None
    label: str  # what the window says it shows
    final: bool  # the finished avatar (nothing newer will come)


class FitWatch:
    def __init__(self, folder: AvatarFolder):
        self.folder = folder
        self.seen: tuple | None = None  # the stamp of the state loaded last

    def stamp(self) -> tuple | None:
        """(what, modification time) of the newest model state in the folder; None before the first checkpoint."""
        from avatar.model.store import CONFIG, has_trained
        from avatar.motion.driver import DRIVER_META
        from avatar.train.checkpoint import STATE
        from avatar.train.run import checkpoint_dir

        if has_trained(self.folder) and (self.folder.model / DRIVER_META).is_file():  # the fit writes its driver last
            return ("trained", (self.folder.model / CONFIG).stat().st_mtime_ns)
        state = checkpoint_dir(self.folder) / STATE
        try:
            return ("checkpoint", state.stat().st_mtime_ns)
        except FileNotFoundError:  # no checkpoint yet, or one being replaced this moment
            return None

    def changed(self) -> bool:
        stamp = self.stamp()
        return stamp is not None and stamp != self.seen

    def wait(self, poll_s: float = CHECK_S, timeout_s: float | None = None) -> None:
        """Block until the folder holds a model state (saying so once on stderr)."""
        start = time.monotonic()
        if self.stamp() is None:
            print(f"waiting for the fit in {self.folder.root} to write its first checkpoint "
                  "(every train.checkpoint_minutes; Ctrl-C to stop)", file=sys.stderr, flush=True)
        while self.stamp() is None:
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                raise AvatarError(f"no checkpoint appeared in {self.folder.root} within {timeout_s:.0f} s; is a fit running there?")
            time.sleep(poll_s)

    def load(self, device: torch.device) -> Snapshot:
        """The newest model state (an `AvatarError` if it is damaged or being replaced: try again later)."""
        stamp = self.stamp()
        if stamp is None:
            raise AvatarError(f"{self.folder.root} has no checkpoint yet")
        snapshot = self._trained(device) if stamp[0] == "trained" else self._checkpoint(device)
        self.seen = stamp
        return snapshot

    def _trained(self, device: torch.device) -> Snapshot:
        from avatar.model.store import load_trained

        trained = load_trained(self.folder, device)
        return Snapshot(trained.model, trained.basis, trained.plate_residual, "the trained avatar", True)

    def _checkpoint(self, device: torch.device) -> Snapshot:
        from avatar.config import load_saved_config
        from avatar.model.registry import model_class
        from avatar.motion.code import ExpressionBasis
        from avatar.train.checkpoint import load_checkpoint
        from avatar.train.run import checkpoint_dir, run_config_path

        tensors, state = load_checkpoint(checkpoint_dir(self.folder))
        config, _ = load_saved_config(run_config_path(self.folder), "wait for the fit to write its run config")
        try:
            model = model_class(state["kind"]).from_tensors(
                {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, state["meta"], config.model, device)
        except (KeyError, RuntimeError) as exc:
            raise AvatarError(f"the checkpoint in {checkpoint_dir(self.folder)} does not match its run config ({exc})") from None
        basis = ExpressionBasis.from_arrays({k[len("basis/"):]: v.numpy() for k, v in tensors.items() if k.startswith("basis/")})
        residual = tensors.get("plate/residual")
        label = f"checkpoint at step {state.get('step', '?')} of {config.train.iterations}"
        return Snapshot(model.eval(), basis, None if residual is None else residual.to(device), label, False)


def watched(path: Path | str) -> AvatarFolder:
    """The folder `--watch` follows: it must exist and be (or become, while the fit preprocesses) an avatar folder."""
    root = Path(path)
    if not root.is_dir():
        raise AvatarError(f"{root} is not a folder; start `avatar fit VIDEO --out {root}` first, then watch it")
    return AvatarFolder(root)
