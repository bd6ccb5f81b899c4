"""Hash-grid triplane encoding: the public op, its configuration and autograd glue.

A point inside an axis-aligned box is projected on the xy, yz and xz planes; each plane has a
multi-resolution 2D grid (dense at coarse levels, hashed into a fixed-size table at fine ones),
interpolated bilinearly, and the features of every plane and level are concatenated. The torch
twin is :func:`avatar.ops.hash_triplane_ref.hash_triplane_encode_ref`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from avatar.ops import _backend, _extension
from avatar.ops._checks import check_finite, check_float, check_same_device, check_shape
from avatar.ops.hash_triplane_ref import hash_triplane_encode_ref

OP = "hash_triplane_encode"
MAX_LEVELS = 32
MAX_FEATURES = 8


@dataclass(frozen=True)
class HashTriplaneSpec:
    """Shape of a hash-grid triplane; the tables themselves are a tensor the caller owns. No defaults here:
    an avatar's settings are the `model.hash_*` fields of its config (`ModelConfig.hash_spec()`)."""

    levels: int  # resolution levels per plane (at most 32)
    features_per_level: int  # features stored per grid vertex (at most 8)
    log2_table_size: int  # each (plane, level) table has 2**log2_table_size rows; finer levels are hashed
    base_resolution: int  # cells per side at the coarsest level
    growth_factor: float  # resolution ratio between consecutive levels

    def __post_init__(self) -> None:
        if not 1 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"HashTriplaneSpec: levels must be in [1, {MAX_LEVELS}], got {self.levels}")
        if not 1 <= self.features_per_level <= MAX_FEATURES:
            raise ValueError(f"HashTriplaneSpec: features_per_level must be in [1, {MAX_FEATURES}], "
                             f"got {self.features_per_level}")
        if not 1 <= self.log2_table_size <= 30:
            raise ValueError(f"HashTriplaneSpec: log2_table_size must be in [1, 30], got {self.log2_table_size}")
        if self.base_resolution < 1 or self.growth_factor < 1.0:
            raise ValueError("HashTriplaneSpec: base_resolution must be >= 1 and growth_factor >= 1")

    @property
    def table_size(self) -> int:
        return 1 << self.log2_table_size

    @property
    def out_features(self) -> int:
        return 3 * self.levels * self.features_per_level

    def resolutions(self) -> list[int]:
        """Cells per side at each level: floor(base * growth**level)."""
        return [int(math.floor(self.base_resolution * self.growth_factor**level)) for level in range(self.levels)]

    def table_shape(self) -> tuple[int, int, int, int]:
        return (3, self.levels, self.table_size, self.features_per_level)

    def init_tables(self, *, scale: float = 1e-4, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None) -> Tensor:
        """Uniform(-scale, scale) float32 tables of :meth:`table_shape` (small, as instant-ngp does)."""
        where = generator.device if generator is not None else torch.device("cpu")
        t = (torch.rand(self.table_shape(), generator=generator, dtype=torch.float32, device=where) * 2 - 1) * scale
        return t if device is None else t.to(device)


class _HashTriplaneEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, points, tables, resolutions, box_min, box_max):
        p = points.detach().to(torch.float32).contiguous()
        t = tables.detach().to(torch.float32).contiguous()
        ctx.save_for_backward(p, t)
        ctx.config = (list(resolutions), list(box_min), list(box_max))
        with torch.cuda.device_of(p):
            return _extension.load().hash_triplane_fwd(p, t, *ctx.config, _extension.stream_handle(p))

    @staticmethod
    def backward(ctx, v_features):
        p, t = ctx.saved_tensors
        need_points, need_tables = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        with torch.cuda.device_of(p):
            v_tables, v_points = _extension.load().hash_triplane_bwd(
                p, t, *ctx.config, v_features.to(torch.float32).contiguous(), need_tables, need_points,
                _extension.stream_handle(p))
        return (v_points if need_points else None), (v_tables if need_tables else None), None, None, None


def hash_triplane_encode(
    points: Tensor,  # [N, 3]
    tables: Tensor,  # [3, L, T, F] (T a power of two)
    resolutions: Sequence[int],  # [L] cells per side, e.g. HashTriplaneSpec.resolutions()
    box_min: Sequence[float],  # [3] lower corner of the encoded box
    box_max: Sequence[float],  # [3] upper corner
    *,
    backend: str | None = None,  # auto | cpu | cuda | torch
) -> Tensor:
    """Encodes points: features [N, 3 * L * F], plane-major (xy, yz, xz), then level, then feature.

    Points outside the box are clamped onto it (and get no position gradient there). Gradients
    flow to `tables` and to `points`. On the CPU kernels the result is a transposed view of a
    feature-major buffer (each table's lookups are written contiguously); linear layers consume
    it without a copy, and `.contiguous()` gives a row-major copy when one is needed.
    """
    check_shape(OP, "points", points, (None, 3))
    check_shape(OP, "tables", tables, (3, None, None, None))
    check_float(OP, "points", points)
    check_float(OP, "tables", tables)
    _, levels, table_size, features = tables.shape
    if not (1 <= levels <= MAX_LEVELS and 1 <= features <= MAX_FEATURES):
        raise ValueError(f"{OP}: `tables` needs 1..{MAX_LEVELS} levels and 1..{MAX_FEATURES} features, "
                         f"got shape {list(tables.shape)}")
    if table_size < 1 or table_size & (table_size - 1):
        raise ValueError(f"{OP}: `tables` rows per level must be a power of two, got {table_size}")
    resolutions = tuple(int(r) for r in resolutions)
    if len(resolutions) != levels or any(r < 1 or r >= 1 << 24 for r in resolutions):
        raise ValueError(f"{OP}: `resolutions` needs {levels} values in [1, 2^24), got {list(resolutions)}")
    box_min, box_max = tuple(float(v) for v in box_min), tuple(float(v) for v in box_max)
    if len(box_min) != 3 or len(box_max) != 3 or not all(hi > lo for lo, hi in zip(box_min, box_max)):
        raise ValueError(f"{OP}: `box_min` and `box_max` need three coordinates with box_max > box_min, "
                         f"got {box_min} and {box_max}")
    if not all(math.isfinite(v) for v in box_min + box_max):
        raise ValueError(f"{OP}: `box_min` and `box_max` must be finite")
    device = check_same_device(OP, {"points": points, "tables": tables})
    check_finite(OP, {"points": points, "tables": tables})
    dtype = torch.promote_types(points.dtype, tables.dtype)
    which = _backend.resolve(OP, backend, device, dtype)
    if which == "torch":
        return hash_triplane_encode_ref(points, tables, resolutions, box_min, box_max)
    return _HashTriplaneEncode.apply(points, tables, resolutions, box_min, box_max)
