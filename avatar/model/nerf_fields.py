"""The neural fields of the NeRF avatar: density and colour at points, from hash-grid triplane features.

`HeadNerfField` lives in the head frame (centimetres) and is conditioned on the motion code by region:
the code is split into groups (mouth and jaw, eyes and brows, the rest), each group becomes a vector of
the first layer's width, and a gate computed from the point's features says how much of each group acts
there (ER-NeRF's region attention, as a per-point sigmoid gate), so the eyes' coefficients cannot open
the mouth and the lips' cannot move the brows.

Before the lookup, `ExpressionWarp` takes a point back to where it sits in the person's mean expression:
minus the displacement the frame's expression coefficients give the tracked landmarks near it (lips,
jaw, eyes, brows), interpolated between landmarks. The lips and jaw thus move geometrically, the way the
landmarks do, and the field only learns what a warp cannot show (teeth, the inside of the mouth, creases).

`TorsoNerfField` lives in camera space. A point is first taken back to the torso at rest: minus the
image shift the torso signal describes (`torso_image_shift`) and minus an offset linear in the head pose
and the signal (`TorsoField`, the Gaussian torso's deformation), then looked up in the canonical field.

Both return density (per centimetre, softplus) and colour (sigmoid), and count their FLOPs per sample.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from avatar.model.fields import TORSO_INPUTS, TorsoField, torso_image_shift
from avatar.ops import FieldLayers, HashTriplaneSpec, field_mlp, hash_triplane_encode, lookup_volume

CPU = torch.device("cpu")  # where the fields are built (`build` moves the avatar to its device)
DENSITY_SHIFT = -2.0  # softplus(-2) = 0.13 per cm: a fresh field is a faint fog the losses carve


def motion_groups(names: list[str], motion_dim: int) -> list[list[int]]:
    """Motion-code entries by region from the blendshape names (the expression coefficients after the
    blendshapes measure the face's shape and go with the mouth): [mouth, eyes, rest]."""
    mouth = [i for i, n in enumerate(names) if n.startswith(("mouth", "jaw", "cheek"))] + list(range(len(names), motion_dim))
    eyes = [i for i, n in enumerate(names) if n.startswith(("eye", "brow"))]
    rest = [i for i in range(len(names)) if i not in mouth and i not in eyes]
    return [group for group in (mouth, eyes, rest) if group]


def cell_centres(box_min, box_max, resolution: int, device: torch.device) -> Tensor:
    """[G^3, 3] centres of the cells of a G^3 grid over a box, flat index x fastest (volumes' [z, y, x] order)."""
    lo, hi = torch.tensor(box_min, device=device), torch.tensor(box_max, device=device)
    axis = (torch.arange(resolution, dtype=torch.float32, device=device) + 0.5) / resolution
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    return lo + torch.stack([x, y, z], -1).reshape(-1, 3) * (hi - lo)


class HeadCondition(NamedTuple):
    """What one frame's motion code makes of the head field: the regions' first-layer vectors and the
    expression warp's displacement volume."""

    vectors: Tensor  # [groups, width]
    warp: Tensor | None  # [3, G, G, G] centimetres, or None: no warp


class ExpressionWarp(nn.Module):
    """Displacements of the head frame's points for the expression coefficients (the motion code's tail):
    each landmark k moves by its own linear function of the coefficients (`modes` [P, K, 3], from the
    expression basis); a point moves by the landmarks' displacements weighted by a Gaussian of its distance
    to their mean positions (`anchors` [K, 3]), normalised where landmarks are dense and fading to nothing
    a few `sigma` away from them. Computed once on a grid over the box as a basis [3, P, G, G, G], so a
    frame's warp is one small contraction and a trilinear lookup per point."""

    def __init__(self, anchors: Tensor, modes: Tensor, box_min, box_max, resolution: int = 40, sigma: float = 1.0):
        super().__init__()
        self.box_min, self.box_max = tuple(map(float, box_min)), tuple(map(float, box_max))
        self.resolution, self.sigma = int(resolution), float(sigma)
        self.register_buffer("anchors", anchors.float().clone())
        self.register_buffer("modes", modes.float().clone())
        self.register_buffer("basis", self._basis(), persistent=False)

    @property
    def size(self) -> int:
        return len(self.modes)

    def _basis(self) -> Tensor:
        g = self.resolution
        centres = cell_centres(self.box_min, self.box_max, g, self.anchors.device)
        weights = torch.exp(-torch.cdist(centres, self.anchors).square() / (2 * self.sigma**2))  # [G^3, K]
        weights = weights / weights.sum(1, keepdim=True).clamp_min(1.0)
        basis = torch.einsum("nk,pkc->cpn", weights, self.modes)
        return basis.reshape(3, self.size, g, g, g).contiguous()

    def volume(self, coefficients: Tensor) -> Tensor:
        """[P] expression coefficients -> [3, G, G, G] displacement volume."""
        return torch.einsum("cpzyx,p->czyx", self.basis, coefficients)

    def flops(self) -> int:
        return 2 * 8 * 3


class _EncodedField(nn.Module):
    """Hash-grid triplane features of points in a box, a first layer, one hidden layer, 4 outputs."""

    def __init__(self, spec: HashTriplaneSpec, box_min, box_max, width: int, seed: int):
        super().__init__()
        self.spec = spec
        self.box_min, self.box_max = tuple(map(float, box_min)), tuple(map(float, box_max))
        self.resolutions = spec.resolutions()
        self.tables = nn.Parameter(spec.init_tables(generator=torch.Generator().manual_seed(seed)))
        self.position_in = nn.Linear(spec.out_features, width)
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, 4)
        nn.init.zeros_(self.out.bias)

    @property
    def width(self) -> int:
        return self.hidden.in_features

    def encode(self, points: Tensor) -> Tensor:
        return hash_triplane_encode(points, self.tables, self.resolutions, self.box_min, self.box_max)

    def layers(self, w_in: Tensor, b_in: Tensor, vectors: Tensor) -> FieldLayers:
        """The layers after the encoding: `w_in`, `b_in` the first layer's rows (the position layer and any gates'),
        `vectors` the rows the gates weigh into it ([0, width]: none)."""
        return FieldLayers(w_in, b_in, vectors, self.hidden.weight, self.hidden.bias, self.out.weight, self.out.bias)

    def flops(self) -> int:
        """Multiply-adds x 2 of one sample's forward pass, encoding interpolation included (4 corners per
        plane and level, 3 multiply-adds each per feature)."""
        width = self.hidden.in_features
        encode = self.spec.out_features * 4 * 3
        return 2 * (self.spec.out_features * width + width * width + width * 4) + encode


class HeadNerfField(_EncodedField):
    def __init__(self, spec: HashTriplaneSpec, box_min, box_max, groups: list[list[int]], motion_dim: int, width: int = 64,
                 warp: ExpressionWarp | None = None):
        super().__init__(spec, box_min, box_max, width, seed=1)
        self.groups = [list(map(int, g)) for g in groups]
        self.motion_dim = int(motion_dim)
        for k, group in enumerate(self.groups):
            self.register_buffer(f"group_{k}", torch.tensor(group, dtype=torch.long, device=CPU),
                                 persistent=False)
        self.gate = nn.Linear(spec.out_features, len(self.groups))
        self.motion_in = nn.ModuleList(nn.Linear(len(g), width, bias=False) for g in self.groups)
        self.warp = warp

    def condition(self, motion: Tensor) -> HeadCondition:
        """motion [D] -> what it does to the field: each region's vector [groups, width] added to the first
        layer, and the expression warp's volume (from the code's last entries, the expression coefficients)."""
        vectors = torch.stack([layer(motion[getattr(self, f"group_{k}")]) for k, layer in enumerate(self.motion_in)])
        warp = None if self.warp is None else self.warp.volume(motion[self.motion_dim - self.warp.size:])
        return HeadCondition(vectors, warp)

    def canonical(self, points: Tensor, condition: HeadCondition) -> Tensor:
        """Head-frame points of this frame -> where they are in the mean expression."""
        if condition.warp is None:
            return points
        return points - lookup_volume(condition.warp, points, self.box_min, self.box_max)

    def forward(self, points: Tensor, condition: HeadCondition, density_only: bool = False):
        # The position layer and the gates as one first layer: one product in the torch twin (a 3-output layer
        # alone on the encoding's transposed view cost more than the rest of the field), one pass in the kernel.
        layers = self.layers(torch.cat([self.position_in.weight, self.gate.weight]),
                             torch.cat([self.position_in.bias, self.gate.bias]), condition.vectors)
        return field_mlp(self.encode(self.canonical(points, condition)), layers, DENSITY_SHIFT, density_only)

    def flops(self) -> int:
        width = self.hidden.in_features
        warp = 0 if self.warp is None else self.warp.flops()
        return super().flops() + 2 * (self.spec.out_features * len(self.groups) + len(self.groups) * width) + warp


class TorsoNerfField(_EncodedField):
    def __init__(self, spec: HashTriplaneSpec, box_min, box_max, torso_view: Tensor, width: int = 64):
        super().__init__(spec, box_min, box_max, width, seed=2)
        lo, hi = torch.tensor(self.box_min, device=CPU), torch.tensor(self.box_max, device=CPU)
        self.warp = TorsoField((lo + hi) / 2, float((hi - lo).max()) / 2)
        self.register_buffer("torso_view", torso_view.float().clone())

    def warp_basis(self, resolution: int) -> Tensor:
        """[3, TORSO_INPUTS, G, G, G] the warp's basis at the cell centres of a G^3 grid over the box ([z, y, x]):
        what a renderer computes once, so that each frame's warp is a volume lookup instead of an MLP per sample."""
        centres = cell_centres(self.box_min, self.box_max, resolution, self.torso_view.device)
        g = resolution
        return self.warp.basis(centres).reshape(g, g, g, 3, TORSO_INPUTS).permute(3, 4, 0, 1, 2).contiguous()

    def warp_volume(self, basis: Tensor, pose: Tensor | None, torso: Tensor | None) -> Tensor:
        """[3, G, G, G] one frame's whole offset (image shift and warp, as in `canonical`) at the cell centres of
        `basis` (from `warp_basis`): computed once a frame, then looked up at each sample (trilinear: the image
        shift blends the torso halves over centimetres, the cells are one)."""
        pose = basis.new_zeros(6) if pose is None else pose
        torso = basis.new_zeros(4) if torso is None else torso
        warp = torch.einsum("ckzyx,k->czyx", basis, torch.cat([pose.new_ones(1), pose, 20.0 * torso]))
        centres = cell_centres(self.box_min, self.box_max, basis.shape[-1], basis.device)
        shift = torso_image_shift(centres, torso, self.torso_view).T.reshape(warp.shape)
        return warp + shift

    def canonical(self, points: Tensor, pose: Tensor | None, torso: Tensor | None, volume: Tensor | None = None) -> Tensor:
        """Camera-space points [N, 3] -> where they are on the torso at rest (pose [6] from
        `head_pose_features`, torso [4] the torso signal; None: at rest). `volume` from `warp_volume`: the
        offset interpolated from it (trilinear) instead of evaluated at each point."""
        if volume is not None:
            return points - lookup_volume(volume, points, self.box_min, self.box_max)
        if pose is None and torso is None:
            return points
        pose = points.new_zeros(6) if pose is None else pose
        torso = points.new_zeros(4) if torso is None else torso
        return points - torso_image_shift(points, torso, self.torso_view) - self.warp(points, pose, torso)

    def forward(self, points: Tensor, pose: Tensor | None, torso: Tensor | None, density_only: bool = False,
                volume: Tensor | None = None):
        layers = self.layers(self.position_in.weight, self.position_in.bias, self.position_in.weight.new_zeros(0, self.width))
        return field_mlp(self.encode(self.canonical(points, pose, torso, volume)), layers, DENSITY_SHIFT, density_only)

    def flops(self) -> int:
        warp = sum(2 * layer.in_features * layer.out_features for layer in self.warp.layers if isinstance(layer, nn.Linear))
        return super().flops() + warp
