"""Volume rendering for neural-field avatars: rays marched through an occupancy grid into packed
samples, samples composited along their rays (forward and backward), and values looked up in a volume
(the fields' warps).

Packed samples: the samples of ray r are rows offsets[r] .. offsets[r + 1] of every per-sample tensor,
in order along the ray (as nerfacc packs them). The torch twins are in :mod:`avatar.ops.volume_ref`;
the formulas are in `cuda_ext/csrc/volume.h`.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from avatar.ops import _backend, _extension
from avatar.ops._checks import check_finite, check_float, check_same_device, check_shape
from avatar.ops.volume_ref import composite_ref, lookup_volume_ref, march_parts_ref, march_rays_ref

MAX_CHANNELS = 8
MAX_PARTS = 4  # kMarchMaxParts in cuda_ext/csrc/volume.h


class RaySamples(NamedTuple):
    offsets: Tensor  # [R + 1] int64: ray r's samples are rows offsets[r]:offsets[r + 1]
    ray_ids: Tensor  # [S] int64
    t_begin: Tensor  # [S] where each interval starts along its ray
    t_end: Tensor  # [S]
    t_next: Tensor  # [R] where stepping stopped (march again from there); inf once the ray left the box

    @property
    def count(self) -> int:
        return len(self.ray_ids)


class PartSamples(NamedTuple):
    offsets: Tensor  # [R + 1] int64: ray r's samples are rows offsets[r]:offsets[r + 1], in depth order
    ray_ids: Tensor  # [S] int64
    t_begin: Tensor  # [S]
    t_end: Tensor  # [S]
    parts: Tensor  # [S] int64: the part each sample belongs to
    points: Tensor  # [S, 3] the interval's midpoint in its part's space
    t_next: Tensor  # [P, R] where each part's next sample starts (march again from there); BIG: none left


class Composite(NamedTuple):
    color: Tensor  # [R, C] sum of w_i c_i
    opacity: Tensor  # [R] 1 - transmittance after the last sample (= sum of w_i)
    weights: Tensor  # [S] w_i


def _check_march(op: str, grids: Sequence[Tensor], step: float, near: float, max_samples: int) -> None:
    """The arguments `march_rays` and `march_parts` share: occupancy grids, step, near and the sample cap."""
    for grid in grids:
        if grid.dim() != 3 or not grid.shape[0] == grid.shape[1] == grid.shape[2] or grid.shape[0] < 1:
            raise ValueError(f"{op}: `grid` must be [G, G, G], got {list(grid.shape)}")
        if grid.dtype not in (torch.bool, torch.uint8):
            raise ValueError(f"{op}: `grid` must be bool or uint8, got {grid.dtype}")
    if not (step > 0 and math.isfinite(step)) or not math.isfinite(near):
        raise ValueError(f"{op}: `step` must be positive and finite and `near` finite, got {step} and {near}")
    if not 1 <= int(max_samples) < 1 << 30:
        raise ValueError(f"{op}: `max_samples` must be in [1, 2^30), got {max_samples}")


def _box(op: str, box_min: Sequence[float], box_max: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    lo, hi = tuple(float(v) for v in box_min), tuple(float(v) for v in box_max)
    if len(lo) != 3 or len(hi) != 3 or not all(b > a for a, b in zip(lo, hi)) or not all(map(math.isfinite, lo + hi)):
        raise ValueError(f"{op}: `box_min` and `box_max` need three finite coordinates with box_max > box_min, "
                         f"got {lo} and {hi}")
    return lo, hi


@torch.no_grad()
def march_rays(
    origins: Tensor,  # [R, 3]
    dirs: Tensor,  # [R, 3] unit length
    grid: Tensor,  # [G, G, G] bool or uint8 occupancy over the box, indexed [z, y, x]
    box_min: Sequence[float],  # [3] lower corner of the box the grid covers
    box_max: Sequence[float],  # [3]
    step: float,  # interval length along each ray
    *,
    near: float = 0.0,  # no sample starts closer than this
    t_start: Tensor | None = None,  # [R] continue from here (a previous call's t_next); None: from the box
    t_stop: Tensor | None = None,  # [R] no interval starts at or beyond this (None: the box's far side)
    max_samples: int = 1 << 20,  # per ray; marching in rounds uses a few and continues from t_next
    backend: str | None = None,
) -> RaySamples:
    """Samples of rays through the occupied cells of the box: equal intervals of length `step` from where
    each ray enters the box (or `t_start`) until it leaves it (or reaches `t_stop`), kept where the cell holding the interval's midpoint is occupied.
    No gradients: sample positions are a choice, what is differentiable is the field at them."""
    op = "march_rays"
    check_shape(op, "origins", origins, (None, 3))
    check_shape(op, "dirs", dirs, (len(origins), 3))
    check_float(op, "origins", origins)
    check_float(op, "dirs", dirs)
    _check_march(op, [grid], step, near, max_samples)
    lo, hi = _box(op, box_min, box_max)
    if t_start is None:
        t_start = origins.new_full((len(origins),), -3.4e38)
    if t_stop is None:
        t_stop = origins.new_full((len(origins),), 3.4e38)
    check_shape(op, "t_start", t_start, (len(origins),))
    check_shape(op, "t_stop", t_stop, (len(origins),))
    device = check_same_device(op, {"origins": origins, "dirs": dirs, "grid": grid, "t_start": t_start, "t_stop": t_stop})
    check_finite(op, {"origins": origins, "dirs": dirs})
    which = _backend.resolve(op, backend, device, torch.promote_types(origins.dtype, dirs.dtype))
    if which == "torch":
        return RaySamples(*march_rays_ref(origins, dirs, t_start.to(origins.dtype), t_stop.to(origins.dtype), grid, lo, hi,
                                          float(step), float(near), int(max_samples)))
    f32 = [t.to(torch.float32).contiguous() for t in (origins, dirs, t_start, t_stop)]
    cells = grid.to(torch.uint8).contiguous()
    with torch.cuda.device_of(f32[0]):
        out = _extension.load().march_rays(*f32, cells, list(lo), list(hi), float(step), float(near), int(max_samples),
                                           _extension.stream_handle(f32[0]))
    return RaySamples(*out)


@torch.no_grad()
def march_parts(
    origins: Tensor,  # [P, R, 3] each ray in each part's space
    dirs: Tensor,  # [P, R, 3] unit length
    grids: Sequence[Tensor],  # P occupancy grids [G_p, G_p, G_p] (bool or uint8, indexed [z, y, x])
    boxes: Sequence[tuple[Sequence[float], Sequence[float]]],  # P (box_min, box_max) the grids cover
    step: float,
    *,
    near: float = 0.0,
    t_start: Tensor | None = None,  # [P, R] continue from here (a previous call's t_next); None: from each box
    t_stop: Tensor | None = None,  # [P, R] no interval of a part starts at or beyond this
    max_samples: int = 1 << 20,  # per ray, all parts together
    backend: str | None = None,
) -> PartSamples:
    """`march_rays` through several parts at once (up to 4: a head in its own frame and a torso in camera space),
    their samples merged in depth order along each ray (ties: the lower part first) and cut at `max_samples` a ray:
    marching in rounds, each round's samples are every sample in front of where the next round starts."""
    op = "march_parts"
    P = len(grids)
    if not 1 <= P <= MAX_PARTS or len(boxes) != P:
        raise ValueError(f"{op}: give 1 to {MAX_PARTS} grids and one box per grid, got {P} grids and {len(boxes)} boxes")
    check_shape(op, "origins", origins, (P, None, 3))
    check_shape(op, "dirs", dirs, tuple(origins.shape))
    check_float(op, "origins", origins)
    check_float(op, "dirs", dirs)
    _check_march(op, grids, step, near, max_samples)
    boxes = [_box(op, lo, hi) for lo, hi in boxes]
    R = origins.shape[1]
    t_start = origins.new_full((P, R), -3.4e38) if t_start is None else t_start
    t_stop = origins.new_full((P, R), 3.4e38) if t_stop is None else t_stop
    check_shape(op, "t_start", t_start, (P, R))
    check_shape(op, "t_stop", t_stop, (P, R))
    device = check_same_device(op, {"origins": origins, "dirs": dirs, "t_start": t_start, "t_stop": t_stop,
                                    **{f"grids[{p}]": g for p, g in enumerate(grids)}})
    check_finite(op, {"origins": origins, "dirs": dirs})
    which = _backend.resolve(op, backend, device, torch.promote_types(origins.dtype, dirs.dtype))
    if which == "torch":
        return PartSamples(*march_parts_ref(origins, dirs, t_start.to(origins.dtype), t_stop.to(origins.dtype), grids, boxes,
                                            float(step), float(near), int(max_samples)))
    f32 = [t.to(torch.float32).contiguous() for t in (origins, dirs, t_start, t_stop)]
    cells = [g.to(torch.uint8).contiguous() for g in grids]
    flat_boxes = [v for lo, hi in boxes for v in (*lo, *hi)]
    with torch.cuda.device_of(f32[0]):
        out = _extension.load().march_parts(*f32, cells, flat_boxes, float(step), float(near), int(max_samples),
                                            _extension.stream_handle(f32[0]))
    return PartSamples(*out)


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, offsets, sigma, delta, color):
        inputs = [t.detach().to(torch.float32).contiguous() for t in (sigma, delta, color)]
        offsets = offsets.contiguous()
        with torch.cuda.device_of(inputs[0]):
            out, opacity, weights = _extension.load().composite_fwd(offsets, *inputs, _extension.stream_handle(inputs[0]))
        ctx.save_for_backward(offsets, *inputs, out, opacity, weights)
        ctx.set_materialize_grads(False)
        return out, opacity, weights

    @staticmethod
    def backward(ctx, v_out, v_opacity, v_weights):
        offsets, sigma, delta, color, out, opacity, weights = ctx.saved_tensors
        v_out = torch.zeros_like(out) if v_out is None else v_out.to(torch.float32).contiguous()
        v_opacity = torch.zeros_like(opacity) if v_opacity is None else v_opacity.to(torch.float32).contiguous()
        channels = color.shape[1]
        if v_weights is not None:
            # A loss on the weights is a loss on one more channel whose value at sample i is v_weights[i]: the
            # kernel's g_i gains v_weights[i], and the ray's sum of w_k g_k gains sum_k w_k v_weights[k].
            v_weights = v_weights.to(torch.float32)
            rays = torch.repeat_interleave(torch.arange(len(out), device=out.device), offsets.diff())
            extra = out.new_zeros(len(out)).index_add_(0, rays, weights * v_weights)
            color = torch.cat([color, v_weights[:, None]], 1).contiguous()
            out = torch.cat([out, extra[:, None]], 1).contiguous()
            v_out = torch.cat([v_out, v_out.new_ones(len(out), 1)], 1).contiguous()
        with torch.cuda.device_of(sigma):
            v_sigma, v_color = _extension.load().composite_bwd(offsets, sigma, delta, color, out, opacity, v_out,
                                                               v_opacity, _extension.stream_handle(sigma))
        return None, v_sigma, None, v_color[:, :channels]


def composite(
    offsets: Tensor,  # [R + 1] int64, as `march_rays` returns it
    sigma: Tensor,  # [S] density, >= 0
    delta: Tensor,  # [S] interval lengths
    color: Tensor,  # [S, C] values to composite (C <= 8), e.g. RGB and a part mask
    *,
    backend: str | None = None,
) -> Composite:
    """Front-to-back compositing of each ray's samples: w_i = T_i (1 - exp(-sigma_i delta_i)). Gradients
    flow from the colour, the opacity and the weights to `sigma` and `color` (the intervals are fixed)."""
    op = "composite"
    check_shape(op, "offsets", offsets, (None,))
    check_shape(op, "sigma", sigma, (None,))
    check_shape(op, "delta", delta, (len(sigma),))
    check_shape(op, "color", color, (len(sigma), None))
    if offsets.dtype != torch.int64 or len(offsets) < 1:
        raise ValueError(f"{op}: `offsets` must be a non-empty int64 tensor [R + 1], got {offsets.dtype} {list(offsets.shape)}")
    if not 1 <= color.shape[1] <= MAX_CHANNELS:
        raise ValueError(f"{op}: `color` needs 1..{MAX_CHANNELS} channels, got {color.shape[1]}")
    for name, t in (("sigma", sigma), ("delta", delta), ("color", color)):
        check_float(op, name, t)
    device = check_same_device(op, {"offsets": offsets, "sigma": sigma, "delta": delta, "color": color})
    check_finite(op, {"sigma": sigma, "delta": delta, "color": color})
    # One host read of the last offset: packs that do not end at S are a caller's bug, not a kernel's crash.
    if int(offsets[-1]) != len(sigma) or int(offsets[0]) != 0:
        raise ValueError(f"{op}: `offsets` must run from 0 to the number of samples ({len(sigma)}), "
                         f"got {int(offsets[0])} .. {int(offsets[-1])}")
    dtype = torch.promote_types(torch.promote_types(sigma.dtype, delta.dtype), color.dtype)
    which = _backend.resolve(op, backend, device, dtype)
    if which == "torch":
        return Composite(*composite_ref(offsets, sigma, delta, color))
    return Composite(*_Composite.apply(offsets, sigma, delta, color))


def lookup_volume(
    volume: Tensor,  # [C, G, G, G] values at the cell centres of a G^3 grid over the box, indexed [z, y, x]
    points: Tensor,  # [N, 3]
    box_min: Sequence[float],
    box_max: Sequence[float],
    *,
    backend: str | None = None,
) -> Tensor:
    """[N, C] trilinear interpolation of the volume at the points; beyond the outermost cell centres, the
    border's values (torch's `grid_sample`, align_corners=False, border padding). Differentiable through
    the torch twin: when a gradient is needed, that is what runs."""
    op = "lookup_volume"
    if volume.dim() != 4 or not volume.shape[1] == volume.shape[2] == volume.shape[3] or volume.shape[1] < 1:
        raise ValueError(f"{op}: `volume` must be [C, G, G, G], got {list(volume.shape)}")
    check_shape(op, "points", points, (None, 3))
    check_float(op, "volume", volume)
    check_float(op, "points", points)
    lo, hi = _box(op, box_min, box_max)
    device = check_same_device(op, {"volume": volume, "points": points})
    check_finite(op, {"volume": volume, "points": points})
    grad = torch.is_grad_enabled() and (volume.requires_grad or points.requires_grad)
    which = "torch" if grad else _backend.resolve(op, backend, device, torch.promote_types(volume.dtype, points.dtype))
    if which == "torch":
        return lookup_volume_ref(volume, points, lo, hi)
    inputs = [t.to(torch.float32).contiguous() for t in (volume, points)]
    with torch.cuda.device_of(inputs[1]):
        return _extension.load().lookup_volume(*inputs, list(lo), list(hi), _extension.stream_handle(inputs[1]))
