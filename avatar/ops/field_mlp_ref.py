"""Pure-torch twin of the NeRF fields' layers (`cuda_ext/csrc/field_mlp.h`): what training runs (with gradients)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class FieldLayers(NamedTuple):
    """The layers after a field's encoding, every matrix [out, in] (torch's Linear layout)."""

    w_in: Tensor  # [width + groups, inputs]: the position layer, then the region gates' rows
    b_in: Tensor  # [width + groups]
    vectors: Tensor  # [groups, width] the regions' first-layer vectors ([0, width]: no gate)
    w_hidden: Tensor  # [width, width]
    b_hidden: Tensor  # [width]
    w_out: Tensor  # [4, width]: density, then colour
    b_out: Tensor  # [4]


def field_mlp_ref(features: Tensor, layers: FieldLayers, density_shift: float,
                  density_only: bool = False) -> tuple[Tensor, Tensor | None]:
    width = layers.w_hidden.shape[0]
    both = F.linear(features, layers.w_in, layers.b_in)
    first = both[:, :width]
    if len(layers.vectors):
        first = torch.addmm(first, torch.sigmoid(both[:, width:]), layers.vectors)
    hidden = F.relu(F.linear(F.relu(first), layers.w_hidden, layers.b_hidden), inplace=True)
    if density_only:
        return F.softplus(hidden @ layers.w_out[0] + layers.b_out[0] + density_shift), None
    raw = F.linear(hidden, layers.w_out, layers.b_out)
    return F.softplus(raw[:, 0] + density_shift), torch.sigmoid(raw[:, 1:])
