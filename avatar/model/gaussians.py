"""A set of 3D Gaussians as trainable tensors, and the optimiser surgery that densification needs.

Every attribute is one `nn.Parameter` with the Gaussians along dimension 0, optimised by its own Adam
parameter group; growing or shrinking the set edits those groups' moment estimates in place, so the
optimiser carries on as if the new Gaussians had always been there (with fresh moments).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

ATTRIBUTES = ("means", "quats", "log_scales", "opacity_logits", "colors")


class GaussianSet(nn.Module):
    def __init__(self, means: Tensor, quats: Tensor, log_scales: Tensor, opacity_logits: Tensor, colors: Tensor):
        super().__init__()
        self.means = nn.Parameter(means.float().contiguous())  # [N, 3]
        self.quats = nn.Parameter(quats.float().contiguous())  # [N, 4] (w, x, y, z), any norm
        self.log_scales = nn.Parameter(log_scales.float().contiguous())  # [N, 3]
        self.opacity_logits = nn.Parameter(opacity_logits.float().contiguous())  # [N]
        self.colors = nn.Parameter(colors.float().contiguous())  # [N, 3] logits of RGB

    def __len__(self) -> int:
        return self.means.shape[0]

    @classmethod
    def empty(cls, device: torch.device) -> "GaussianSet":
        return cls(*(torch.zeros(0, *shape, device=device) for shape in ((3,), (4,), (3,), (), (3,))))

    def tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in ATTRIBUTES}

    def param_groups(self, lrs: dict[str, float], prefix: str) -> list[dict]:
        return [{"params": [getattr(self, name)], "lr": lrs[name], "name": f"{prefix}.{name}"} for name in ATTRIBUTES]

    def resize_like(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Give every attribute the shape of a checkpoint's tensors before loading them."""
        for name in ATTRIBUTES:
            setattr(self, name, nn.Parameter(torch.zeros(shapes[name], device=getattr(self, name).device)))

    @torch.no_grad()
    def keep(self, mask: Tensor, optimizer: torch.optim.Optimizer | None) -> None:
        """Keep only the Gaussians where `mask` [N] is true."""
        for name in ATTRIBUTES:
            old = getattr(self, name)
            new = nn.Parameter(old.data[mask].clone())
            _swap_in_optimizer(optimizer, old, new, lambda state: state[mask])
            setattr(self, name, new)

    @torch.no_grad()
    def append(self, extra: dict[str, Tensor], optimizer: torch.optim.Optimizer | None) -> None:
        """Add Gaussians given as {attribute: [M, ...]} tensors, with zero optimiser moments."""
        for name in ATTRIBUTES:
            old = getattr(self, name)
            new = nn.Parameter(torch.cat([old.data, extra[name].to(old.dtype)]))
            _swap_in_optimizer(optimizer, old, new,
                               lambda state, m=len(extra[name]): torch.cat([state, state.new_zeros((m, *state.shape[1:]))]))
            setattr(self, name, new)


def _swap_in_optimizer(optimizer, old: nn.Parameter, new: nn.Parameter, edit) -> None:
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        for i, param in enumerate(group["params"]):
            if param is old:
                group["params"][i] = new
                state = optimizer.state.pop(old, None)
                if state:
                    optimizer.state[new] = {k: (edit(v) if torch.is_tensor(v) and v.dim() > 0 else v) for k, v in state.items()}
                return
