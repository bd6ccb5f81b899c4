"""Speed of the compute kernels on 2 CPU cores at 512x512: prints ONE JSON object.

    python benchmarks/render.py [--repeats 10] [--threads 2] [--quick]

- raster_fwd_ms / raster_fwd_bwd_ms: rasterisation of 10k, 40k and 100k Gaussians laid out like a
  head (an ellipsoid shell of surface-aligned splats covering ~40 % of the frame, random opacities)
  forward, and forward + backward of a loss on image, alpha and depth;
- encode_deform_fwd_ms_40k: hash-grid triplane encoding of 40k canonical positions plus the fused
  deformation of 40k Gaussians (the per-frame work around the deformation MLP);
- speedup_vs_reference: each op's time with its torch reference divided by its kernel time,
  measured in the same run;
- blend_evaluations_per_frame_40k: Gaussian-pixel (lane) evaluations the forward blend performs;
- load_average: the machine's 1-minute load before and after, to judge the figures.

Medians of --repeats runs after a warm-up. Targets on 2 cores, 40k Gaussians: forward <= 20 ms,
forward + backward <= 80 ms; encoding + deformation forward <= 8 ms.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch

from avatar.ops import HashTriplaneSpec, deform_gaussians, hash_triplane_encode, rasterize_gaussians
from avatar.ops import _extension

WIDTH = HEIGHT = 512
COUNTS = (10_000, 40_000, 100_000)
HEAD_AXES = (0.08, 0.11, 0.095)  # half-widths of a head-sized ellipsoid, metres
# The deformation field's encoding: 12 levels from 16 to ~500 cells across the head's box.
TRIPLANE = HashTriplaneSpec(levels=12, features_per_level=2, log2_table_size=16, base_resolution=16,
                            growth_factor=1.37)
BOX_MIN, BOX_MAX = (-0.1, -0.13, -0.12), (0.1, 0.13, 0.12)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from avatar.ops.deform_ref import quat_multiply as qm

    return qm(a, b)


def head_scene(n: int, seed: int = 0, coverage: float = 0.4):
    """Gaussians on an ellipsoid shell seen from the front, sized to tile its surface."""
    g = torch.Generator().manual_seed(seed)
    axes = torch.tensor(HEAD_AXES)
    direction = torch.randn(n, 3, generator=g)
    means = direction / direction.norm(dim=1, keepdim=True) * axes
    normals = means / axes**2
    normals = normals / normals.norm(dim=1, keepdim=True)
    a, b, c = HEAD_AXES
    p = 1.6075  # Knud Thomsen's approximation of an ellipsoid's area
    area = 4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)
    spacing = math.sqrt(area / n)
    tangent = spacing * (0.5 + torch.rand(n, 2, generator=g))
    log_scales = torch.log(torch.cat([tangent, torch.full((n, 1), 0.15 * spacing)], 1))
    # Rotate z onto the surface normal, then spin randomly about it.
    z = torch.tensor([0.0, 0.0, 1.0]).expand(n, 3)
    axis = torch.cross(z, normals, dim=1)
    half = torch.atan2(axis.norm(dim=1, keepdim=True), (normals * z).sum(1, keepdim=True)) / 2
    axis = axis / axis.norm(dim=1, keepdim=True).clamp(min=1e-8)
    to_normal = torch.cat([torch.cos(half), axis * torch.sin(half)], 1)
    spin = torch.rand(n, generator=g) * math.pi
    zeros = torch.zeros(n)
    quats = quat_multiply(to_normal, torch.stack([torch.cos(spin / 2), zeros, zeros, torch.sin(spin / 2)], 1))
    opacity_logits = torch.randn(n, generator=g) * 1.5 + 1.0
    colors = torch.rand(n, 3, generator=g)
    focal = 1000.0
    distance = focal * math.sqrt(math.pi * a * b / (coverage * WIDTH * HEIGHT))
    viewmat = torch.eye(4)
    viewmat[2, 3] = distance
    K = torch.tensor([[focal, 0.0, WIDTH / 2], [0.0, focal, HEIGHT / 2], [0.0, 0.0, 1.0]])
    return means, quats, log_scales, opacity_logits, colors, viewmat, K


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def raster_fns(scene, backend: str):
    means, quats, log_scales, logits, colors, viewmat, K = scene
    leaves = [t.clone().requires_grad_(True) for t in scene]

    def forward():
        with torch.no_grad():
            rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, WIDTH, HEIGHT, backend=backend)

    def forward_backward():
        out = rasterize_gaussians(*leaves, WIDTH, HEIGHT, backend=backend)
        (out.image.sum() + out.alpha.sum() + out.depth.sum()).backward()

    return forward, forward_backward


def blend_evaluations(scene) -> int:
    """Gaussian-pixel evaluations of the forward blend: 16 per (Gaussian, 2x8-pixel block) pair the
    kernel evaluates, i.e. every block the Gaussian's ellipse reaches in each of its tiles, up to
    the Gaussian that saturates the block (mirrors ellipse_block_mask in cuda_ext/csrc/bounds.h)."""
    ext = _extension.load()
    means, quats, log_scales, logits, colors, viewmat, K = scene
    m2, conics, depths, opac, radii = ext.project_fwd(means, quats, log_scales, logits, viewmat, K, WIDTH, HEIGHT,
                                                      0.01, 1e10, 0.3)
    _, _, _, _, last, sorted_ids, _, tile_offsets, tile_entries, _ = ext.blend_fwd(m2, conics, opac, depths, colors,
                                                                                   radii, None, WIDTH, HEIGHT, True)
    tiles_x = WIDTH // 16
    counts = (tile_offsets[1:] - tile_offsets[:-1]).long()
    tile = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    g = sorted_ids.long()[tile_entries.long()]
    x0, y0 = (tile % tiles_x) * 16.0, (tile // tiles_x) * 16.0
    mx, my = m2[g, 0:1].double(), m2[g, 1:2].double()
    a, b, c = conics[g, 0:1].double(), conics[g, 1:2].double(), conics[g, 2:3].double()
    cutoff = torch.log(255 * opac[g].double())[:, None] + 1e-3
    dy = (y0[:, None] + torch.arange(16.0) + 0.5).double() - my
    disc = 2 * a * cutoff - (a * c - b * b) * dy * dy
    root = disc.clamp(min=0).sqrt()
    lo, hi = mx - b * dy / a - root / a, mx - b * dy / a + root / a
    halves = []
    for h in range(2):
        first, last_col = x0[:, None] + 8 * h + 0.5, x0[:, None] + 8 * h + 7.5
        rows = (disc >= 0) & (hi >= first) & (lo <= last_col)  # [M, 16 rows]
        halves.append(rows.reshape(-1, 8, 2).any(-1))  # [M, 8 row pairs]
    reaches = torch.stack(halves, -1).reshape(-1, 16)  # block b = 2 * pair + half
    # Last Gaussian blended into each block, per tile: [tiles, 16 blocks].
    lt = last.reshape(HEIGHT // 16, 8, 2, tiles_x, 2, 8).permute(0, 3, 1, 4, 2, 5).reshape(-1, 16, 16).amax(-1)
    position = torch.arange(g.numel()) - tile_offsets[tile].long()
    evaluated = reaches & (position[:, None] <= lt[tile] + 1)
    return int(evaluated.sum()) * 16


def encode_deform_fns(n: int, backend: str):
    g = torch.Generator().manual_seed(1)
    tables = TRIPLANE.init_tables(generator=g)
    scene = head_scene(n)
    means, quats, log_scales = scene[0], scene[1], scene[2]
    d_means = torch.randn(n, 3, generator=g) * 1e-3
    d_quats = torch.tensor([1.0, 0, 0, 0]) + 0.05 * torch.randn(n, 4, generator=g)
    d_log_scales = torch.randn(n, 3, generator=g) * 0.05
    angle = 0.2
    rotation = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    translation = torch.tensor([0.01, -0.02, 0.5])
    res = TRIPLANE.resolutions()

    def encode():
        with torch.no_grad():
            return hash_triplane_encode(means, tables, res, BOX_MIN, BOX_MAX, backend=backend)

    def deform():
        with torch.no_grad():
            return deform_gaussians(means, quats, log_scales, d_means, d_quats, d_log_scales, rotation, translation,
                                    backend=backend)

    def both():
        encode()
        deform()

    return encode, deform, both


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, reference timed on 10k only")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else args.repeats
    if _extension.load() is None:
        print(json.dumps({"error": f"kernels unavailable: {_extension.failure_reason()}"}))
        return 1

    load_before = os.getloadavg()[0]
    result: dict = {
        "image": [WIDTH, HEIGHT],
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "raster_fwd_ms": {},
        "raster_fwd_bwd_ms": {},
    }
    scenes = {n: head_scene(n) for n in COUNTS}
    for n, scene in scenes.items():
        forward, forward_backward = raster_fns(scene, "cpu")
        result["raster_fwd_ms"][str(n)] = round(median_ms(forward, repeats), 2)
        result["raster_fwd_bwd_ms"][str(n)] = round(median_ms(forward_backward, repeats), 2)

    encode, deform, both = encode_deform_fns(40_000, "cpu")
    result["encode_deform_fwd_ms_40k"] = round(median_ms(both, repeats * 3), 3)
    result["encode_fwd_ms_40k"] = round(median_ms(encode, repeats * 3), 3)
    result["deform_fwd_ms_40k"] = round(median_ms(deform, repeats * 3), 3)

    # Speed-ups over the torch references, same scenes, same run. The rasteriser's reference is
    # slow enough that one timed run (after a warm-up) is plenty.
    n_ref = 10_000 if args.quick else 40_000
    fwd_ref, fwd_bwd_ref = raster_fns(scenes[n_ref], "torch")
    fwd_k, fwd_bwd_k = raster_fns(scenes[n_ref], "cpu")
    t_ref_encode, t_ref_deform, _ = encode_deform_fns(40_000, "torch")
    speedup = {
        "rasterize_gaussians": median_ms(fwd_ref, 1, warmup=1) / median_ms(fwd_k, repeats),
        "rasterize_gaussians_fwd_bwd": median_ms(fwd_bwd_ref, 1, warmup=1) / median_ms(fwd_bwd_k, repeats),
        "hash_triplane_encode": median_ms(t_ref_encode, repeats) / median_ms(encode, repeats * 3),
        "deform_gaussians": median_ms(t_ref_deform, repeats) / median_ms(deform, repeats * 3),
    }
    result["speedup_vs_reference"] = {k: round(v, 1) for k, v in speedup.items()}
    result["speedup_reference_gaussians"] = n_ref
    evaluations = blend_evaluations(scenes[40_000])
    result["blend_evaluations_per_frame_40k"] = evaluations
    result["blend_evaluations_per_pixel_40k"] = round(evaluations / (WIDTH * HEIGHT), 1)
    result["load_average"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
