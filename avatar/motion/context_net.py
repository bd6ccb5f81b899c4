"""The temporal network of the learned prior and the personal adapter: 1D convolutions over video frames that
see a fixed window of audio features around each frame.

The window is `CONTEXT` frames in all, `future` of them after the frame (its look-ahead) and the rest before.
Offline the window is centred (±8 frames, ±0.32 s at 25 fps); the live path uses the same layers with a
look-ahead of `LIVE_FUTURE` frames, so a live frame never needs audio more than that ahead of it. The ends of
a sequence repeat the first and last frame.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

KERNELS = (9, 5)  # the second dilated by 2
CONTEXT = (KERNELS[0] - 1) + 2 * (KERNELS[1] - 1)  # 16 frames besides the frame itself
OFFLINE_FUTURE = CONTEXT // 2  # ±8 frames: 0.32 s either side at 25 fps
LIVE_FUTURE = 3  # 0.12 s at 25 fps: the live path's look-ahead


class ContextNet(nn.Module):
    def __init__(self, inputs: int, outputs: int, future: int = OFFLINE_FUTURE, width: int = 64, dropout: float = 0.1):
        super().__init__()
        if not 0 <= future <= CONTEXT:
            raise ValueError(f"a look-ahead of {future} frames: it must be within 0..{CONTEXT}")
        self.past, self.future = CONTEXT - future, future
        self.layers = nn.Sequential(
            nn.Conv1d(inputs, width, KERNELS[0]), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(width, width, KERNELS[1], dilation=2), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(width, outputs, 1),
        )
        nn.init.zeros_(self.layers[-1].weight)  # starts as no correction
        nn.init.zeros_(self.layers[-1].bias)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(inputs, outputs, width): what rebuilds it from a state dict."""
        return self.layers[0].in_channels, self.layers[-1].out_channels, self.layers[0].out_channels

    def forward(self, x: Tensor) -> Tensor:
        """x [B, T, inputs] -> [B, T, outputs]; output t sees inputs t - past .. t + future."""
        padded = F.pad(x.transpose(1, 2), (self.past, self.future), mode="replicate")
        return self.layers(padded).transpose(1, 2)

    @classmethod
    def from_state(cls, state: dict[str, Tensor], future: int) -> "ContextNet":
        net = cls(state["layers.0.weight"].shape[1], state["layers.6.weight"].shape[0], future, state["layers.0.weight"].shape[0])
        net.load_state_dict(state)
        return net.eval()


def run(net: ContextNet, x) -> np.ndarray:
    """The net over one sequence [T, inputs] (numpy or tensor), without gradients: [T, outputs] numpy."""
    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=torch.float32)[None])[0].numpy()
