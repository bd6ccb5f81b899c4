"""The NeRF avatar (`model.kind: nerf`): a head field in the head frame conditioned on the motion code and
a torso field in camera space conditioned on the head pose and the torso signal, ray-marched through
their occupancy grids and composited together along each ray, over the background.

One frame: every pixel's ray is taken into the head frame by the head pose and marched through the head
grid while it is marched as it is through the torso grid (`march_parts`: the two sample sets come merged in
depth order). Rays march in rounds of ROUND_SAMPLES samples until their transmittance runs out. A render
without gradients composites as it goes; a training render runs the rounds on density alone, then evaluates
with gradients only the samples the light reached. The renderer never sees audio.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

from avatar.camera import Camera
from avatar.model.fields import head_pose_features
from avatar.model.interface import PARTS, AvatarModel, Rendered, TrainingStrategy
from avatar.model.nerf_fields import ExpressionWarp, HeadNerfField, TorsoNerfField, cell_centres
from avatar.model.nerf_losses import distortion
from avatar.model.occupancy import OccupancyGrid, dilate
from avatar.ops import composite, march_parts
from avatar.ops.volume_ref import BIG, ray_box_ref

CPU = torch.device("cpu")
NEAR_CM = 1.0
EVAL_CHUNK = 1 << 18  # samples per field call without gradients (bounds a 512-pixel frame's memory)
EVAL_CHUNK_CPU = 1 << 14  # the same on a CPU: the layers' activations stay in its cache (nerf-preview's head field,
# 2 cores: 235 ns a sample in calls of 2^13-2^15 samples, 544 in calls of 2^18)
WARP_RESOLUTION = 48  # cells per side of the torso warp's cached basis
ROUND_SAMPLES = 16  # a round of marching gives every ray this many more samples (training: density only, cheap)
RENDER_ROUND_SAMPLES = 4  # the same when rendering: a ray's light runs out within a round and every sample after that
# point in the round is evaluated for nothing (512-pixel frames of a clip 04 avatar: 1.07M samples a frame in rounds of
# 2, 1.11M in rounds of 3, 1.18M in rounds of 4 (19 rounds), 1.25M in rounds of 6, 1.42M in rounds of 8; fewer
# samples a round cost more rounds of marching)
DARK = 1e-4  # transmittance below which a ray has stopped (training)
RENDER_DARK = 1e-3  # the same when rendering: what is left changes a pixel by at most 1/1000 (clip 04 held-out
# frames: 83 dB from the image at DARK, 14 % fewer samples)
MIN_WEIGHT = 1e-5  # samples that add less than this to their pixel are not trained
SHELL_FAINT = 0.01  # a frame keeps a cell next to a dense one where any of its test points has this much of the
# threshold's density (see `NerfAvatar._frame_grid`)


def _shell_offsets(device: torch.device) -> list[Tensor]:
    """The test points of a cell next to a dense one, in cells from its centre: the 26 points around the centre on a
    lattice of thirds, corners first, then edges, then faces (a cell that the first ones keep skips the rest)."""
    lattice = [(x, y, z) for z in (-1, 0, 1) for y in (-1, 0, 1) for x in (-1, 0, 1)]
    by_stage = [[o for o in lattice if sum(map(abs, o)) == k] for k in (3, 2, 1)]
    return [torch.tensor(stage, dtype=torch.float32, device=device) / 3 for stage in by_stage]


class Grids(NamedTuple):
    """The occupancy masks a frame marches through (and, for a trained avatar, the torso warp's basis)."""

    head: Tensor  # [G, G, G] bool, head frame
    torso: Tensor  # [G, G, G] bool, camera space
    torso_basis: Tensor | None = None  # [3, inputs, W, W, W] (`TorsoNerfField.warp_basis`)
    head_cells: Tensor | None = None  # [K, 3] centres of the head grid's set cells (a trained render tests them each frame)
    torso_cells: Tensor | None = None  # [K, 3] the same for the torso grid


@dataclass
class NerfRendered(Rendered):
    samples: dict[str, tuple[Tensor, Tensor]]  # part -> (points [N, 3] in its grid's space, weights [N]) (training)
    rays: tuple[Tensor, ...] | None = None  # (offsets, ray_ids, t, delta, weights) of the trained samples (training)


@dataclass
class _Part:
    """One part of the avatar as a frame's rays see it: the rays in its grid's space and its field there."""

    name: str
    origins: Tensor  # [R, 3]
    dirs: Tensor  # [R, 3]
    grid: Tensor  # [G, G, G] bool
    box: tuple[tuple[float, ...], tuple[float, ...]]
    field: Callable[[Tensor, bool], tuple[Tensor, Tensor | None]]  # (points, density_only) -> (density, colour)


class _Samples(NamedTuple):
    """Samples of several parts, merged in depth order along each ray (rays in order)."""

    offsets: Tensor  # [R + 1]
    ray_ids: Tensor  # [S]
    t: Tensor  # [S] interval starts
    delta: Tensor  # [S]
    points: Tensor  # [S, 3] in the space of the sample's part
    part: Tensor  # [S] index of the part

    def subset(self, keep: Tensor, rays: int, rows: Tensor | None = None) -> "_Samples":
        """The samples where `keep`, packed for `rays` rays; `rows` [R'] (increasing) renumbers ray r as rows[r]."""
        ray_ids = self.ray_ids[keep] if rows is None else rows[self.ray_ids[keep]]
        return _Samples(_offsets(ray_ids, rays), ray_ids, self.t[keep], self.delta[keep], self.points[keep], self.part[keep])

    @classmethod
    def empty(cls, rays: int, device: torch.device) -> "_Samples":
        index, value = torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, device=device)
        return cls(torch.zeros(rays + 1, dtype=torch.long, device=device), index, value, value,
                   torch.zeros(0, 3, device=device), index)


def _offsets(sorted_ray_ids: Tensor, rays: int) -> Tensor:
    counts = torch.bincount(sorted_ray_ids, minlength=rays)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _concat(rounds: list[_Samples], rays: int) -> _Samples:
    """Samples of successive rounds (each deeper along every ray than the last) as one depth-ordered pack."""
    ray_ids = torch.cat([r.ray_ids for r in rounds])
    order = torch.argsort(ray_ids, stable=True)
    ray_ids = ray_ids[order]
    rest = (torch.cat([getattr(r, name) for r in rounds])[order] for name in ("t", "delta", "points", "part"))
    return _Samples(_offsets(ray_ids, rays), ray_ids, *rest)


def _evaluate(parts: list[_Part], samples: _Samples, density_only: bool, head_flag: bool = True) -> tuple[Tensor, Tensor | None]:
    """(density [S], colour [S, 3] and, with `head_flag`, a fourth column: 1 for head samples; or None)."""
    n = len(samples.t)
    density = samples.t.new_zeros(n)
    colour = None if density_only else samples.t.new_zeros(n, 3 + head_flag)
    for k, part in enumerate(parts):
        mine = torch.nonzero(samples.part == k, as_tuple=True)[0]
        d, c = _chunked(part.field, samples.points[mine], density_only)
        density.index_copy_(0, mine, d)
        if not density_only:
            colour[:, :3].index_copy_(0, mine, c)
            if head_flag and part.name == "head":
                colour[mine, 3] = 1.0
    return density, colour


def _span(part: _Part, step: float) -> tuple[Tensor, Tensor]:
    """([R], [R]) where each ray's march through `part` begins and where it may stop: its stretch through the
    bounding box of the grid's set cells, the start moved back onto the steps the ray takes from `part.box` (BIG
    twice: the ray misses them). A frame's cells fill a part of the box; rays outside them are not stepped."""
    origins, dirs = part.origins, part.dirs
    missing = origins.new_full((len(origins),), BIG)
    cells = torch.nonzero(part.grid)  # [K, 3] as (z, y, x)
    if not len(cells):
        return missing, missing
    lo, hi = (torch.tensor(b, dtype=origins.dtype, device=origins.device) for b in part.box)
    size = (hi - lo) / part.grid.shape[0]
    first, last = lo + cells.amin(0).flip(0) * size, lo + (cells.amax(0).flip(0) + 1) * size
    t0, t1, hit = ray_box_ref(origins, dirs, first.tolist(), last.tolist())
    begin = torch.clamp_min(ray_box_ref(origins, dirs, *part.box)[0], NEAR_CM)
    start = begin + torch.floor((t0 - begin).clamp_min(0) / step) * step
    return torch.where(hit, start, missing), torch.where(hit, t1, missing)


def _centres(grid: OccupancyGrid) -> Tensor:
    return cell_centres(grid.box_min, grid.box_max, grid.resolution, grid.density.device)


def _eval_chunk(device: torch.device) -> int:
    return EVAL_CHUNK_CPU if device.type == "cpu" else EVAL_CHUNK


def _chunked(fn, points: Tensor, density_only: bool):
    chunk = _eval_chunk(points.device)
    if torch.is_grad_enabled() or len(points) <= chunk:
        return fn(points, density_only)
    parts = [fn(points[i:i + chunk], density_only) for i in range(0, len(points), chunk)]
    density = torch.cat([p[0] for p in parts])
    return density, None if density_only else torch.cat([p[1] for p in parts])


class NerfAvatar(AvatarModel):
    kind = "nerf"
    stage_names = ("head", "torso", "joint")
    patch_size = 64

    def __init__(self, head: HeadNerfField, torso: TorsoNerfField, grid_resolution: int, step: float, rest_pose: Tensor):
        super().__init__()
        self.head_field, self.torso_field = head, torso
        self.head_grid = OccupancyGrid(head.box_min, head.box_max, grid_resolution)
        self.torso_grid = OccupancyGrid(torso.box_min, torso.box_max, grid_resolution)
        self.step = float(step)
        self.threshold = 0.01 / self.step  # density at which one step hides 1 % of what is behind it
        self.register_buffer("rest_pose", rest_pose.float().clone())

    # -- construction and storage ------------------------------------------------------------------

    @classmethod
    def build(cls, data, cfg, seed: int, device: torch.device) -> "NerfAvatar":
        from avatar.model.build import build_nerf_avatar

        return build_nerf_avatar(data, cfg, seed).to(device)

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], meta: dict, cfg, device: torch.device) -> "NerfAvatar":
        warp = None
        if "head_field.warp.anchors" in tensors:
            warp = ExpressionWarp(tensors["head_field.warp.anchors"], tensors["head_field.warp.modes"], *meta["head_box"],
                                  **meta["warp"])
        head = HeadNerfField(cfg.hash_spec(), meta["head_box"][0], meta["head_box"][1], meta["groups"],
                             int(meta["motion_dim"]), cfg.mlp_width, warp)
        torso = TorsoNerfField(cfg.hash_spec(), meta["torso_box"][0], meta["torso_box"][1], tensors["torso_field.torso_view"],
                               cfg.mlp_width)
        avatar = cls(head, torso, int(meta["grid_resolution"]), float(meta["step"]), tensors["rest_pose"])
        avatar.load_state_dict(tensors)
        return avatar.to(device)

    def meta(self) -> dict:
        head, torso = self.head_field, self.torso_field
        out = {"motion_dim": head.motion_dim, "groups": head.groups, "head_box": [list(head.box_min), list(head.box_max)],
               "torso_box": [list(torso.box_min), list(torso.box_max)], "grid_resolution": self.head_grid.resolution,
               "step": self.step}
        if head.warp is not None:
            out["warp"] = {"resolution": head.warp.resolution, "sigma": head.warp.sigma}
        return out

    def sizes(self) -> dict[str, int]:
        return {"head_cells": int(self.head_grid.occupied(self.threshold).sum()),
                "torso_cells": int(self.torso_grid.occupied(self.threshold).sum())}

    def flops_per_sample(self) -> dict[str, int]:
        """Forward FLOPs of one sample of each field."""
        return {"head": self.head_field.flops(), "torso": self.torso_field.flops()}

    # -- rendering ---------------------------------------------------------------------------------

    def grids(self, trained: bool) -> Grids:
        """Training marches every occupied cell; a trained avatar only those its training frames saw."""
        pick = (lambda g: g.visible(self.threshold)) if trained else (lambda g: g.occupied(self.threshold))
        return Grids(pick(self.head_grid), pick(self.torso_grid))

    def prepare(self) -> Grids:
        with torch.no_grad():
            grids = self.grids(trained=True)
            return grids._replace(torso_basis=self.torso_field.warp_basis(WARP_RESOLUTION),
                                  head_cells=_centres(self.head_grid)[grids.head.reshape(-1)],
                                  torso_cells=_centres(self.torso_grid)[grids.torso.reshape(-1)])

    @torch.no_grad()
    def _frame_grid(self, part: _Part, centres: Tensor) -> Tensor:
        """This frame's occupancy: the cells of `part.grid` (whose `centres` [K, 3] these are) where the frame's own
        density at the centre is above the threshold, and the cells next to those (26 neighbours) where it is above
        SHELL_FAINT of it at any of 26 points around the centre. The trained grids hold every cell any training frame
        needed; one frame needs fewer. The neighbours are what a test of centres alone misses: the surface a ray meets
        first crosses cells off their centres, strands of hair lie between centres. Taking every neighbour instead
        (512 frames, against the image of a march through all of `part.grid`): clip 04, 38 % more samples for the
        same image (68.3 against 67.5 dB, largest pixel change 0.053 against 0.056); clip 02, 33 % more (60.4 against
        59.9 dB, 0.27 both). The test points cost 26 density lookups a neighbour without density (about 60 ms a
        512 frame on 2 cores, against about 100 ms saved in the fields)."""
        density = _chunked(part.field, centres, True)[0]
        dense = torch.zeros_like(part.grid)
        dense[part.grid] = density > self.threshold
        # The neighbours are cells of `part.grid` too: their centres are among `centres` (in flat order).
        near = (dilate(dense, 1) & ~dense)[part.grid]
        shell, middle = torch.nonzero(part.grid.view(-1), as_tuple=True)[0][near], centres[near]
        lo, hi = (torch.tensor(b, device=centres.device) for b in part.box)
        cell = (hi - lo) / part.grid.shape[0]
        kept = dense.view(-1)  # the cells kept, flat (a view: setting it sets `dense`)
        for offsets in _shell_offsets(centres.device):
            points = (middle[:, None] + offsets * cell).reshape(-1, 3)
            faint = (_chunked(part.field, points, True)[0] > SHELL_FAINT * self.threshold).view(len(shell), len(offsets)).any(1)
            kept[shell[faint]] = True
            shell, middle = shell[~faint], middle[~faint]
        return dense

    def _parts(self, motion: Tensor, head_pose: Tensor, camera: Camera, torso: Tensor | None, moving_torso: bool,
               grids: Grids, parts: frozenset[str]) -> list[_Part]:
        origins, dirs = camera.rays()
        out = []
        if "head" in parts:
            rotation, translation = head_pose[:3, :3], head_pose[:3, 3]
            condition = self.head_field.condition(motion)
            out.append(_Part("head", ((origins - translation) @ rotation).contiguous(), (dirs @ rotation).contiguous(),
                             grids.head, (self.head_field.box_min, self.head_field.box_max),
                             lambda p, only: self.head_field(p, condition, only)))
        if "torso" in parts:
            pose = head_pose_features(head_pose, self.rest_pose) if moving_torso else None
            signal = (torso if torso is not None else origins.new_zeros(4)) if moving_torso else None
            volume = (self.torso_field.warp_volume(grids.torso_basis, pose, signal)
                      if grids.torso_basis is not None and moving_torso else None)
            out.append(_Part("torso", origins, dirs, grids.torso, (self.torso_field.box_min, self.torso_field.box_max),
                             lambda p, only: self.torso_field(p, pose, signal, only, volume)))
        return out

    def _march(self, parts: list[_Part], origins: Tensor, dirs: Tensor, starts: Tensor, stops: Tensor, samples: int):
        """One round: the parts' next `samples` samples along every ray (origins and dirs [P, R, 3] in each part's
        space), merged in depth order, empty space skipped, from `starts` [P, R], none at or beyond `stops`: what
        lies beyond them, in any part, waits for the next round. Returns the samples and where each part's next
        sample starts [P, R] (BIG: none left)."""
        out = march_parts(origins, dirs, [p.grid for p in parts], [p.box for p in parts], self.step, near=NEAR_CM,
                          t_start=starts, t_stop=stops, max_samples=samples)
        return _Samples(out.offsets, out.ray_ids, out.t_begin, out.t_end - out.t_begin, out.points, out.parts), out.t_next

    @torch.no_grad()
    def _rounds(self, parts: list[_Part], rays: int, colour: bool):
        """March every ray a few samples at a time (see `_march`), evaluating the fields as it goes, until its
        light runs out. Each round marches only the rays still going. Returns the composite colour [R, 3] (None
        unless `colour`), the opacity [R] and, unless `colour`, the samples that matter: those the light reaches
        with a weight of at least MIN_WEIGHT (what training evaluates again, with gradients), and the
        milliseconds spent marching, in the fields and compositing."""
        device = parts[0].origins.device
        per_round = RENDER_ROUND_SAMPLES if colour else ROUND_SAMPLES
        spans = [_span(p, self.step) for p in parts]
        hits = torch.stack([start < BIG for start, _ in spans]).any(0)
        live = torch.nonzero(hits, as_tuple=True)[0]  # the rays still going, by index
        origins, dirs = torch.stack([p.origins for p in parts]), torch.stack([p.dirs for p in parts])
        starts, stops = torch.stack([start[live] for start, _ in spans]), torch.stack([stop[live] for _, stop in spans])
        light = torch.ones(rays, device=device)
        lit = light[live]  # the live rays' transmittance
        out = torch.zeros(rays, 3, device=device) if colour else None
        kept = []
        timings = dict.fromkeys(("march", "fields", "composite"), 0.0)
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] += 1e3 * (now - clock)
            clock = now

        while len(live):
            samples, starts = self._march(parts, origins[:, live], dirs[:, live], starts, stops, per_round)
            lap("march")
            if len(samples.t):
                density, rgb = _evaluate(parts, samples, density_only=not colour, head_flag=False)
                lap("fields")
                values = rgb if colour else density.new_ones(len(density), 1)
                c = composite(samples.offsets, density, samples.delta, values)
                if colour:
                    out.index_add_(0, live, lit[:, None] * c.color)
                else:
                    kept.append(samples.subset(lit[samples.ray_ids] * c.weights >= MIN_WEIGHT, rays, live))
                lit = lit * (1 - c.opacity)
                lap("composite")
            light.index_copy_(0, live, lit)
            going = (lit >= (RENDER_DARK if colour else DARK)) & (starts < BIG).any(0)
            starts, stops = starts[:, going], stops[:, going]
            live, lit = live[going], lit[going]
        samples = None if colour else (_concat(kept, rays) if kept else _Samples.empty(rays, device))
        return out, 1 - light, samples, timings

    def render(self, motion: Tensor, head_pose: Tensor, camera: Camera, background: Tensor, *,
               torso: Tensor | None = None, stage: int | None = None, prepared: Grids | None = None,
               parts: frozenset[str] = PARTS) -> NerfRendered:
        """Stages: 0 the head and a still torso, 1 and on the torso follows the head pose and the torso signal."""
        training = torch.is_grad_enabled()
        start = time.perf_counter()
        grids = prepared if prepared is not None else self.grids(trained=not training)
        pieces = self._parts(motion, head_pose, camera, torso, stage is None or stage >= 1, grids, parts)
        rays, h, w = camera.width * camera.height, camera.height, camera.width
        plate = background.reshape(-1, 3) if background.dim() == 3 else background.reshape(1, 3)
        if not pieces:
            return NerfRendered(image=plate.expand(rays, 3).reshape(h, w, 3), alpha=plate.new_zeros(h, w),
                                head=plate.new_zeros(h, w) if training else None, samples={})
        if not training:
            cells_from = time.perf_counter()
            if grids.head_cells is not None:
                for piece in pieces:
                    piece.grid = self._frame_grid(piece, grids.head_cells if piece.name == "head" else grids.torso_cells)
            cells_ms = 1e3 * (time.perf_counter() - cells_from)
            colour, opacity, _, timings = self._rounds(pieces, rays, colour=True)
            timings["cells"] = cells_ms
            image = torch.addcmul(colour, (1 - opacity)[:, None], plate)
            timings["total"] = 1e3 * (time.perf_counter() - start)
            return NerfRendered(image=image.reshape(h, w, 3), alpha=opacity.reshape(h, w), head=None, samples={},
                                timings=timings)
        # Training: find the samples that matter without gradients, then evaluate only those with them.
        _, _, samples, _ = self._rounds(pieces, rays, colour=False)
        density, colour = _evaluate(pieces, samples, density_only=False)
        out = composite(samples.offsets, density, samples.delta, colour)
        image = torch.addcmul(out.color[:, :3], (1 - out.opacity)[:, None], plate)
        head = colour[:, 3].detach() > 0
        return NerfRendered(image=image.reshape(h, w, 3), alpha=out.opacity.reshape(h, w),
                            head=out.color[:, 3].reshape(h, w),
                            samples={"head": (samples.points[head], out.weights[head]),
                                     "torso": (samples.points[~head], out.weights[~head])},
                            rays=(samples.offsets, samples.ray_ids, samples.t, samples.delta, out.weights))

    # -- training ----------------------------------------------------------------------------------

    def param_groups(self, cfg) -> list[dict]:
        """The hash tables learn at 5 times the MLPs' rate, with Adam's second moment averaged over about 100 steps
        instead of 1000 (beta2 0.99; the reasoning: a table row gets a gradient only from the samples that hash to
        it, so a shorter average follows those sparse updates). Measured on clip 04 against beta2 0.999: the `nerf`
        recipe's `avatar eval` 32.38 dB against 31.99; `nerf-preview`'s benchmarks/heldout.py 32.28 against 32.12."""
        groups = []
        for name, field in (("head_field", self.head_field), ("torso_field", self.torso_field)):
            groups.append({"params": [field.tables], "lr": 5 * cfg.lr_field, "betas": (0.9, 0.99), "name": f"{name}.tables",
                           "decay": "exponential"})
            groups.append({"params": [p for n, p in field.named_parameters() if n != "tables"], "lr": cfg.lr_field,
                           "name": f"{name}.mlp", "decay": "exponential"})
        return groups

    def losses(self, rendered: NerfRendered, cfg) -> dict[str, tuple[Tensor, float]]:
        if rendered.rays is None or cfg.distortion_weight <= 0:
            return {}
        offsets, ray_ids, t, delta, weights = rendered.rays
        return {"distortion": (distortion(offsets, ray_ids, t, delta, weights), cfg.distortion_weight)}

    def strategy(self, train_cfg, model_cfg, data) -> TrainingStrategy:
        stages = np.array(train_cfg.stages, dtype=np.float64)
        last_stage_from = int(round(train_cfg.iterations * (1 - stages[-1] / stages.sum())))
        return OccupancyStrategy(self, data, last_stage_from)


class OccupancyStrategy(TrainingStrategy):
    """Keeps the occupancy grids current: every `every` steps, the density of each cell under a random
    training frame's motion code, head pose and torso signal; from the last stage on, the largest weight
    each cell's samples had (what a trained avatar renders)."""

    def __init__(self, model: NerfAvatar, data, seen_from: int, every: int = 16):
        self.model, self.data, self.seen_from, self.every = model, data, seen_from, every

    def after_backward(self, rendered: NerfRendered, step: int) -> None:
        if step == self.seen_from:
            self.model.head_grid.seen.zero_()
            self.model.torso_grid.seen.zero_()
        if step >= self.seen_from:
            for name, grid in (("head", self.model.head_grid), ("torso", self.model.torso_grid)):
                points, weights = rendered.samples[name]
                grid.record(points.detach(), weights)

    @torch.no_grad()
    def after_step(self, step: int, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        if step % self.every:
            return
        train = self.data.train_ids
        index = int(train[int(torch.randint(len(train), (1,), generator=generator))])
        model = self.model
        condition = model.head_field.condition(self.data.motion[index])
        pose = head_pose_features(self.data.head_pose[index], model.rest_pose)
        signal = self.data.torso[index]
        chunk = _eval_chunk(signal.device)
        model.head_grid.update(lambda p: model.head_field(p, condition, True)[0], generator, chunk=chunk)
        model.torso_grid.update(lambda p: model.torso_field(p, pose, signal, True)[0], generator, chunk=chunk)
