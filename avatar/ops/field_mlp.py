"""The NeRF fields' layers after the encoding, fused into one kernel wherever no gradient is taken (rendering,
training's search for the samples that matter, the occupancy updates).

A point's features go through a first layer (whose extra rows, when there are region vectors, gate them into
it: the head field's region attention), a hidden layer and a 4-output layer: density (softplus) and colour
(sigmoid). Without gradients the compiled kernel runs every layer of sixteen points at a time in vector
registers (AVX-512, or AVX2 pairs; on 2 cores 3.5-4 times faster than the same layers as torch products); with
gradients, or on the torch backend, the torch twin :func:`avatar.ops.field_mlp_ref.field_mlp_ref` runs.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from avatar.ops import _backend, _extension
from avatar.ops._checks import check_finite, check_float, check_same_device, check_shape
from avatar.ops.field_mlp_ref import FieldLayers, field_mlp_ref

OP = "field_mlp"
MAX_INPUTS, MAX_WIDTH, MAX_GROUPS = 256, 128, 8  # field_mlp.h's kFieldMax*


def _check_layers(features: Tensor, layers: FieldLayers) -> None:
    check_shape(OP, "features", features, (None, None))
    width = layers.w_hidden.shape[0] if layers.w_hidden.dim() == 2 else -1
    groups = layers.vectors.shape[0] if layers.vectors.dim() == 2 else -1
    inputs = features.shape[1]
    if not (1 <= inputs <= MAX_INPUTS and 1 <= width <= MAX_WIDTH and 0 <= groups <= MAX_GROUPS):
        raise ValueError(f"{OP}: needs 1..{MAX_INPUTS} features a point, a width of 1..{MAX_WIDTH} and 0..{MAX_GROUPS} "
                         f"region vectors, got {inputs}, {width} and {groups}")
    shapes = {"w_in": (width + groups, inputs), "b_in": (width + groups,), "vectors": (groups, width),
              "w_hidden": (width, width), "b_hidden": (width,), "w_out": (4, width), "b_out": (4,)}
    for name, shape in shapes.items():
        check_shape(OP, name, getattr(layers, name), shape)
        check_float(OP, name, getattr(layers, name))
    check_float(OP, "features", features)


def _check_finite_layers(layers: FieldLayers) -> None:
    """One reduction over every layer (a render calls this op a hundred times a frame), then the named check."""
    if not bool(torch.isfinite(torch.cat([t.detach().reshape(-1) for t in layers]).sum())):
        check_finite(OP, layers._asdict())


def field_mlp(
    features: Tensor,  # [N, inputs], any strides (the CPU encoding's transposed view is read in place)
    layers: FieldLayers,
    density_shift: float,  # added to the density output before its softplus
    density_only: bool = False,
    *,
    backend: str | None = None,  # auto | cpu | cuda | torch
) -> tuple[Tensor, Tensor | None]:
    """(density [N], colour [N, 3] or None when `density_only`). The layers are checked finite; the features are
    not (they come from the encoding, whose inputs are): a non-finite feature gives a non-finite output."""
    _check_layers(features, layers)
    if not math.isfinite(density_shift):
        raise ValueError(f"{OP}: `density_shift` must be finite, got {density_shift}")
    device = check_same_device(OP, {"features": features, **layers._asdict()})
    _check_finite_layers(layers)
    grad = torch.is_grad_enabled() and (features.requires_grad or any(t.requires_grad for t in layers))
    dtype = features.dtype
    for t in layers:
        dtype = torch.promote_types(dtype, t.dtype)
    which = "torch" if grad else _backend.resolve(OP, backend, device, dtype)
    if which == "torch":
        return field_mlp_ref(features, layers, density_shift, density_only)
    x = features if features.dtype == torch.float32 else features.float()
    weights = [t.detach().to(torch.float32).contiguous() for t in layers]
    with torch.cuda.device_of(x):
        density, colour = _extension.load().field_mlp_fwd(x, *weights, float(density_shift), bool(density_only),
                                                          _extension.stream_handle(x))
    return density, None if density_only else colour
