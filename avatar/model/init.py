"""Where the Gaussians start: on the person's head template, on a hair-and-skull shell around it, inside the
mouth and eyes, and on the torso seen in the frames, coloured from the video itself.

A good start is most of a fast fit on a CPU: the head's surface Gaussians begin where the face is and
with its colours, so training refines rather than discovers.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from avatar.face_mesh import LEFT_EYE, LIPS_INNER, RIGHT_EYE
from avatar.model.gaussians import GaussianSet

CPU = torch.device("cpu")
SHELL_CENTRE = np.array([0.0, 1.5, -3.0])  # centimetres, head frame: behind the face, a little above the nose
SHELL_RADII = np.array([8.2, 11.5, 10.0])


def _logit(p: float | np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` points uniformly on a triangle mesh, and the (outward) normal of the triangle each is on."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    cross = np.cross(b - a, c - a)
    area = np.linalg.norm(cross, axis=1)
    faces = rng.choice(len(triangles), size=count, p=area / area.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    points = a[faces] + u[:, None] * (b - a)[faces] + v[:, None] * (c - a)[faces]
    normals = cross[faces] / np.maximum(area[faces, None], 1e-9)
    normals *= np.sign(normals[:, 2:3] + 1e-9)  # the face looks towards +z
    return points, normals


def _fan(vertices: np.ndarray, loop: tuple[int, ...], depth: float) -> tuple[np.ndarray, np.ndarray]:
    """A closed landmark loop filled with a triangle fan, pushed `depth` cm behind the face."""
    ring = vertices[list(loop)]
    centre = ring.mean(0) - np.array([0, 0, depth])
    verts = np.concatenate([ring, centre[None]])
    n = len(ring)
    tris = np.array([[i, (i + 1) % n, n] for i in range(n)])
    return verts, tris


def head_points(template: np.ndarray, triangles: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (head frame, cm), normals and the area each stands for: 55 % on the face, 5 % inside the mouth
    and eyes, 40 % on a shell for hair, skull and ears."""
    n_face, n_holes = int(0.55 * count), int(0.05 * count)
    n_shell = count - n_face - n_holes
    face, face_n = sample_surface(template, triangles, n_face, rng)
    holes, holes_n = [], []
    for loop, depth, share in ((LIPS_INNER, 1.2, 0.6), (RIGHT_EYE, 0.3, 0.2), (LEFT_EYE, 0.3, 0.2)):
        verts, tris = _fan(template, loop, depth)
        p, nrm = sample_surface(verts, tris, max(1, int(share * n_holes)), rng)
        holes.append(p)
        holes_n.append(nrm)
    shell_dir = rng.normal(size=(n_shell * 3, 3))
    shell_dir /= np.linalg.norm(shell_dir, axis=1, keepdims=True)
    shell = SHELL_CENTRE + shell_dir * SHELL_RADII * rng.uniform(1.0, 1.12, (len(shell_dir), 1))
    # Drop shell points the face already covers (in front) and those below the jaw (that is neck: torso).
    front = (shell[:, 2] > SHELL_CENTRE[2] + 2.0) & (np.abs(shell[:, 0]) < 6.5) & (shell[:, 1] < 7.0)
    neck = shell[:, 1] < -6.0
    shell, shell_dir = shell[~front & ~neck][:n_shell], shell_dir[~front & ~neck][:n_shell]
    points = np.concatenate([face] + holes + [shell])
    normals = np.concatenate([face_n] + holes_n + [shell_dir])
    total_area = 0.0
    a, b, c = (template[triangles[:, k]] for k in range(3))
    total_area += np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() / 2
    total_area += 4 * np.pi * (SHELL_RADII.prod() ** (2 / 3)) * 0.75
    spacing = np.sqrt(total_area / len(points))
    return points, normals, np.full(len(points), spacing)


def colours_from_frames(points_cam: Tensor, normals_cam: Tensor, frames: list[tuple[Tensor, Tensor]], K: Tensor,
                        wanted: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Median colour of each point over the frames where it faces the camera and lands on a `wanted` label.

    points_cam [F, N, 3], normals_cam [F, N, 3] per frame; frames [(image [H, W, 3], labels [H, W])].
    Returns (colours [N, 3], fraction of frames where the point was seen [N]).
    """
    count, device = points_cam.shape[1], points_cam.device
    samples = torch.full((len(frames), count, 3), float("nan"), device=device)
    for f, (image, labels) in enumerate(frames):
        h, w = labels.shape
        uv = points_cam[f, :, :2] / points_cam[f, :, 2:3] * K[[0, 1], [0, 1]] + K[:2, 2]
        px = uv[:, 0].floor().long().clamp(0, w - 1)
        py = uv[:, 1].floor().long().clamp(0, h - 1)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        facing = (normals_cam[f] * -points_cam[f]).sum(1) > 0
        on_label = torch.zeros(count, dtype=torch.bool, device=device)
        for label in wanted:
            on_label |= labels[py, px] == label
        ok = inside & facing & on_label
        samples[f, ok] = image[py[ok], px[ok]]
    seen = (~torch.isnan(samples[..., 0])).float().mean(0)
    colours = torch.nanmedian(samples, dim=0).values
    colours = torch.where(torch.isnan(colours), torch.full_like(colours, 0.5), colours)
    return colours, seen


def _cpu_frame(data, index: int) -> tuple[Tensor, Tensor]:
    frame = data.frame(index)
    return frame.image.cpu(), frame.labels.cpu()


def _identity_quats(count: int) -> Tensor:
    return torch.tensor([1.0, 0, 0, 0], device=CPU).repeat(count, 1)


def initial_head(data, count: int, frames: list[int], rng: np.random.Generator) -> GaussianSet:
    """Head Gaussians on the CPU (initialisation is a one-off; the avatar moves to its device after)."""
    template = data.template.numpy().astype(np.float64)
    points, normals, spacing = head_points(template, data.triangles.numpy(), count, rng)
    pose = data.head_pose[frames].cpu()
    R, t = pose[:, :3, :3], pose[:, :3, 3]
    p = torch.from_numpy(points).float()
    n = torch.from_numpy(normals).float()
    cam = torch.einsum("fij,nj->fni", R, p) + t[:, None]
    cam_n = torch.einsum("fij,nj->fni", R, n)
    views = [_cpu_frame(data, i) for i in frames]
    colours, seen = colours_from_frames(cam, cam_n, views, data.intrinsics.cpu(), (2, 3))
    opacity = np.where(seen.numpy() > 0.3, 0.6, 0.1)
    return GaussianSet(
        means=p,
        quats=_identity_quats(len(p)),
        log_scales=torch.from_numpy(np.log(np.repeat(spacing[:, None] * 0.6, 3, 1))).float(),
        opacity_logits=torch.from_numpy(_logit(opacity)).float(),
        colors=torch.from_numpy(_logit(colours.numpy())).float(),
    )


def initial_torso(data, count: int, frames: list[int], rng: np.random.Generator) -> GaussianSet:
    """Camera-space Gaussians on the pixels labelled torso, a little behind the head (on the CPU)."""
    depth = float(data.head_pose[data.train_ids, 2, 3].median()) + 2.0
    K = data.intrinsics.cpu()
    pixels, colours, first_area = [], [], None
    for i in frames:
        image, labels = _cpu_frame(data, i)
        ys, xs = torch.nonzero(labels == 1, as_tuple=True)
        pixels.append(torch.stack([xs, ys], 1))
        colours.append(image[ys, xs])
        first_area = float(len(ys)) if first_area is None else first_area
    pixels_all, colours_all = torch.cat(pixels), torch.cat(colours)
    if len(pixels_all) == 0:
        return GaussianSet.empty(CPU)
    pick = torch.from_numpy(rng.choice(len(pixels_all), size=min(count, len(pixels_all)), replace=False))
    uv = pixels_all[pick].float() + torch.from_numpy(rng.random((len(pick), 2))).float()
    xy = (uv - K[:2, 2]) / K[[0, 1], [0, 1]] * depth
    means = torch.cat([xy, torch.full((len(pick), 1), depth, device=CPU)], 1)
    spacing_cm = np.sqrt(max(first_area, 1.0) / len(pick)) * depth / float(K[0, 0])
    return GaussianSet(
        means=means,
        quats=_identity_quats(len(pick)),
        log_scales=torch.full((len(pick), 3), float(np.log(spacing_cm * 0.8)), device=CPU),
        opacity_logits=torch.full((len(pick),), float(_logit(0.7)), device=CPU),
        colors=torch.from_numpy(_logit(colours_all[pick].numpy())).float(),
    )
